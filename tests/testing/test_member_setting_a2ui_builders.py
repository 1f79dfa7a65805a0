"""The builders for group.join/leave, bot.setting and a2ui.button.report, and the shortcut
menu's ``sendTime`` in seconds (as in YunHu's documented example)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.testing.test_event_builders import fixture, shape
from yunhu_stream import Recipient
from yunhu_stream.events import A2UIButtonEvent, GroupMemberEvent, SettingEvent, parse_event
from yunhu_stream.testing import a2ui_event, group_event, menu_event, setting_event


class TestShapes:
    @pytest.mark.parametrize(
        ("built", "name"),
        [
            (lambda: group_event("307149245", "8812345"), "group_join.json"),
            (lambda: group_event("307149245", joined=False), "group_leave.json"),
            (lambda: setting_event({"lpvcvy": {"id": "lpvcvy", "type": "switch",
                                               "label": "启用流式回复", "value": True}}),
             "bot_setting.json"),
        ],
        ids=["join", "leave", "setting"],
    )
    def test_bodies_match_the_recorded_ones(self, built: Any, name: str) -> None:
        """Join, leave and setting bodies have the fixture's fields and types."""
        assert shape(built()) == shape(fixture(name))

    def test_menu_send_time_is_in_seconds(self) -> None:
        """sendTime of bot.shortcut.menu is seconds, eventTime milliseconds."""
        body = menu_event("M", time_ms=1_700_000_000_123)
        assert body["header"]["eventTime"] == 1_700_000_000_123
        assert body["event"]["sendTime"] == 1_700_000_000

    def test_setting_json_is_a_json_string(self) -> None:
        """settingJson is sent as a string holding the form, as YunHu does."""
        form = {"a": {"id": "a", "type": "input", "label": "名字", "value": "小明"}}
        assert json.loads(setting_event(form)["event"]["settingJson"]) == form

    def test_a2ui_fields(self) -> None:
        """An a2ui.button.report carries the action, the component, the form and who pressed it;
        a private chat is reported with recvType bot and the bot's id."""
        body = a2ui_event("submit", chat="user:42", form_context={"x": 1},
                          component_id="btn", bot_id="900")
        event = body["event"]
        assert body["header"]["eventType"] == "a2ui.button.report"
        assert (event["actionName"], event["sourceComponentId"], event["formContext"]) == (
            "submit", "btn", {"x": 1})
        assert (event["recvId"], event["recvType"], event["userId"]) == ("900", "bot", "42")


class TestParsing:
    def test_join_and_leave_parse_as_group_member_events(self) -> None:
        """parse_event reads them as GroupMemberEvent, replying to the group."""
        for joined in (True, False):
            event = parse_event(group_event("55", "7", joined=joined))
            assert isinstance(event, GroupMemberEvent) and event.joined is joined
            assert event.reply_recipient == Recipient.group("55")

    def test_setting_parses_as_a_typed_open_event(self) -> None:
        """bot.setting becomes a SettingEvent with the form decoded and the raw event kept."""
        form = {"a": {"id": "a", "type": "switch", "label": "x", "value": True}}
        body = setting_event(form, chat="group:55")
        event = parse_event(body)
        assert isinstance(event, SettingEvent)
        assert (event.settings, event.group_id, event.data) == (form, "55", body["event"])
        assert event.reply_recipient == Recipient.group("55")

    def test_a2ui_parses_as_a_typed_open_event(self) -> None:
        """a2ui.button.report becomes an A2UIButtonEvent replying like a button report."""
        body = a2ui_event("submit", chat="user:42", form_context={"k": "v"})
        event = parse_event(body)
        assert isinstance(event, A2UIButtonEvent)
        assert (event.action_name, event.form_context, event.user_id) == (
            "submit", {"k": "v"}, "42")
        assert event.reply_recipient == Recipient.user("42")
        assert event.data == body["event"]


class TestValidation:
    @pytest.mark.parametrize(
        ("call", "error", "needle"),
        [
            (lambda: group_event(""), ValueError, "group_id must be"),
            (lambda: group_event("1", joined="yes"), ValueError, "joined must be True or False"),
            (lambda: setting_event([1]), TypeError, "settings must be a mapping"),
            (lambda: setting_event({}, chat="channel:1"), ValueError, "channel:1"),
            (lambda: a2ui_event(1), TypeError, "action_name must be a str"),
            (lambda: a2ui_event("a", form_context=[1]), TypeError, "form_context"),
            (lambda: a2ui_event("a", chat="user:1", user_id="2"), ValueError, "private chat"),
        ],
    )
    def test_bad_arguments_say_what_is_accepted(
        self, call: Any, error: type[Exception], needle: str
    ) -> None:
        """Each wrong argument raises naming it."""
        with pytest.raises(error, match=needle):
            call()
