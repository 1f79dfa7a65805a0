"""Webhook events: parsing documented bodies, reply routing, and hostile input."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._paths import FIXTURES
from yunhu_stream import Recipient
from yunhu_stream.errors import YunhuError
from yunhu_stream.events import (
    KNOWN_EVENT_TYPES,
    ButtonReportEvent,
    Event,
    EventParseError,
    FollowEvent,
    GroupMemberEvent,
    MessageEvent,
    SettingEvent,
    ShortcutMenuEvent,
    UnknownEvent,
    parse_event,
)

ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def parsed(name: str) -> Event:
    return parse_event((FIXTURES / name).read_bytes())


def without(data: dict[str, Any], path: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    del node[last]
    return data


def replaced(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


class TestDocumentedEvents:
    def test_every_fixture_parses(self) -> None:
        """Every documented sample body parses without error, keeping the raw object."""
        assert len(ALL_FIXTURES) >= 15
        for name in ALL_FIXTURES:
            event = parsed(name)
            assert event.raw == load(name), name
            assert event.event_id == load(name)["header"]["eventId"]

    def test_group_text_message(self) -> None:
        """A group text message exposes sender, chat, message and its text."""
        event = parsed("message_group_text.json")
        assert isinstance(event, MessageEvent)
        assert event.event_type == "message.receive.normal"
        assert event.event_time == 1761214759404
        assert event.time == datetime(2025, 10, 23, 10, 19, 19, 404000, tzinfo=timezone.utc)
        assert event.sender.id == "7756242"
        assert event.sender.nickname == "小明"
        assert event.sender.user_level == "member"
        assert event.chat.id == "307149245"
        assert event.chat.type == "group"
        assert event.message.msg_id == "930a7bad5d8144c5b25bc161031bb82b"
        assert event.message.content_type == "text"
        assert event.message.send_time == 1761214759381
        assert event.text == "早上好"
        assert event.is_group

    def test_plain_message_is_not_a_command(self) -> None:
        """commandId 0 and an empty commandName mean "no command"."""
        event = parsed("message_group_text.json")
        assert isinstance(event, MessageEvent)
        assert not event.is_command
        assert event.command_id is None
        assert event.command_name is None

    def test_empty_parent_id_means_no_quote(self) -> None:
        """parentId "" becomes None, a real parentId is kept."""
        plain = parsed("message_group_text.json")
        quoting = parsed("message_group_image_reply.json")
        assert isinstance(plain, MessageEvent)
        assert isinstance(quoting, MessageEvent)
        assert plain.message.parent_id is None
        assert quoting.message.parent_id == "930a7bad5d8144c5b25bc161031bb82b"

    def test_instruction_is_a_command(self) -> None:
        """An instruction event is a command with its name and id."""
        event = parsed("message_instruction_private.json")
        assert isinstance(event, MessageEvent)
        assert event.is_command
        assert event.command_name == "help"
        assert event.command_id == 2103
        assert event.text == "/help streaming"
        assert not event.is_group

    def test_instruction_fields_fill_in_for_missing_command_fields(self) -> None:
        """instructionId/instructionName are used when commandId/commandName are absent."""
        data = without(load("message_instruction_private.json"), "event.message.commandId")
        data = without(data, "event.message.commandName")
        event = parse_event(data)
        assert isinstance(event, MessageEvent)
        assert (event.command_id, event.command_name) == (2103, "help")

    def test_non_text_content_has_empty_text(self) -> None:
        """Images and forms have text "" and keep their content as received."""
        image = parsed("message_group_image_reply.json")
        form = parsed("message_instruction_group_form.json")
        assert isinstance(image, MessageEvent)
        assert isinstance(form, MessageEvent)
        assert image.text == ""
        assert image.message.content["imageWidth"] == 512
        assert form.text == ""
        assert form.message.content["formJson"]["loktny"]["value"] == "北京"

    def test_mentions_are_listed(self) -> None:
        """content.at becomes a tuple of user ids."""
        event = parsed("message_group_mention.json")
        assert isinstance(event, MessageEvent)
        assert event.message.at == ("37090343",)
        assert event.text.startswith("@流式助手\u200b")

    def test_follow_events(self) -> None:
        """bot.followed and bot.unfollowed are FollowEvents told apart by .followed."""
        followed = parsed("bot_followed.json")
        unfollowed = parsed("bot_unfollowed.json")
        assert isinstance(followed, FollowEvent)
        assert isinstance(unfollowed, FollowEvent)
        assert followed.followed
        assert not unfollowed.followed
        assert followed.user_id == "7756242"
        assert followed.nickname == "小明"
        assert followed.time_ms == 1702050342998
        assert followed.avatar_url.startswith("https://")

    def test_group_member_events(self) -> None:
        """group.join and group.leave are GroupMemberEvents told apart by .joined."""
        join = parsed("group_join.json")
        leave = parsed("group_leave.json")
        assert isinstance(join, GroupMemberEvent)
        assert isinstance(leave, GroupMemberEvent)
        assert join.joined
        assert not leave.joined
        assert (join.chat_id, join.user_id) == ("307149245", "8812345")

    def test_button_report(self) -> None:
        """A button report carries the message, the clicking user and the value."""
        event = parsed("button_report_private.json")
        assert isinstance(event, ButtonReportEvent)
        assert event.msg_id == "7a6b5c4d3e2f41a0b9c8d7e6f5a4b3c2"
        assert event.user_id == "7756242"
        assert event.value == "more"
        assert (event.recv_type, event.recv_id) == ("bot", "37090343")

    def test_shortcut_menu(self) -> None:
        """A shortcut menu event carries the menu entry and who pressed it."""
        event = parsed("shortcut_menu_group.json")
        assert isinstance(event, ShortcutMenuEvent)
        assert event.menu_id == "VO9SDAQ9"
        assert (event.menu_type, event.menu_action) == (1, 1)
        assert event.sender_id == "7756242"
        assert event.bot_id == "37090343"

    def test_unknown_event_type_is_kept(self) -> None:
        """An event type the library does not know becomes an UnknownEvent holding its
        event object (bot.setting is known now: a newer type made up here instead)."""
        body = json.loads((FIXTURES / "bot_setting.json").read_text(encoding="utf-8"))
        body["header"]["eventType"] = "bot.something.newer"
        event = parse_event(body)
        assert type(event) is UnknownEvent
        assert event.event_type == "bot.something.newer"
        assert event.data["groupId"] == "307149245"
        assert "bot.something.newer" not in KNOWN_EVENT_TYPES

    def test_bot_setting_is_a_typed_open_event(self) -> None:
        """The recorded bot.setting body parses as SettingEvent, its raw event kept."""
        event = parsed("bot_setting.json")
        assert isinstance(event, SettingEvent)
        assert event.settings["lpvcvy"]["value"] is True
        assert event.data["groupName"] == "流式测试群"

    def test_events_are_immutable_hashable_values(self) -> None:
        """Events are frozen, hashable, and equal when parsed from the same body."""
        first = parsed("message_group_text.json")
        second = parsed("message_group_text.json")
        assert first == second
        assert hash(first) == hash(second)
        with pytest.raises(AttributeError):
            first.event_id = "other"  # type: ignore[misc]

    def test_repr_leaves_out_the_raw_body(self) -> None:
        """repr shows the fields, not the whole raw JSON."""
        text = repr(parsed("group_join.json"))
        assert "GroupMemberEvent(" in text
        assert "raw=" not in text

    def test_accepts_str_bytes_and_mappings(self) -> None:
        """The same body parses identically from bytes, str and a dict."""
        raw = (FIXTURES / "group_join.json").read_bytes()
        assert parse_event(raw) == parse_event(raw.decode()) == parse_event(json.loads(raw))

    def test_numeric_ids_become_strings(self) -> None:
        """An id sent as a JSON number is accepted and turned into a string."""
        data = replaced(load("group_join.json"), "event.userId", 8812345)
        event = parse_event(data)
        assert isinstance(event, GroupMemberEvent)
        assert event.user_id == "8812345"

    def test_missing_optional_fields_get_defaults(self) -> None:
        """Fields that routing does not need may be absent."""
        data = load("message_group_text.json")
        for path in (
            "version",
            "event.sender.senderNickname",
            "event.sender.senderUserLevel",
            "event.message.sendTime",
            "event.message.parentId",
            "event.message.content",
        ):
            data = without(data, path)
        event = parse_event(data)
        assert isinstance(event, MessageEvent)
        assert event.sender.nickname == ""
        assert event.message.send_time == event.event_time
        assert event.text == ""


class TestReplyRecipient:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("message_group_text.json", Recipient.group("307149245")),
            ("message_group_mention.json", Recipient.group("307149245")),
            ("message_instruction_group_form.json", Recipient.group("307149245")),
            ("message_private_text.json", Recipient.user("7756242")),
            ("message_instruction_private.json", Recipient.user("7756242")),
            ("bot_followed.json", Recipient.user("7756242")),
            ("bot_unfollowed.json", Recipient.user("7756242")),
            ("group_join.json", Recipient.group("307149245")),
            ("group_leave.json", Recipient.group("307149245")),
            ("button_report_group.json", Recipient.group("307149245")),
            ("button_report_private.json", Recipient.user("7756242")),
            ("shortcut_menu_group.json", Recipient.group("307149245")),
            ("shortcut_menu_private.json", Recipient.user("7756242")),
        ],
    )
    def test_reply_goes_where_the_event_came_from(self, name: str, expected: Recipient) -> None:
        """reply_recipient and Recipient.coerce(event) both name the chat to answer in."""
        event = parsed(name)
        assert event.reply_recipient == expected
        assert Recipient.coerce(event) == expected

    def test_private_button_never_replies_to_the_bot_id(self) -> None:
        """In a private chat recvId is the bot itself, so the reply goes to the clicker."""
        event = parsed("button_report_private.json")
        assert isinstance(event, ButtonReportEvent)
        assert event.reply_recipient.id == event.user_id != event.recv_id

    def test_button_with_recv_type_user_replies_to_the_clicker(self) -> None:
        """recvType "user" is treated as a private chat with the user who clicked."""
        data = replaced(load("button_report_private.json"), "event.recvType", "user")
        assert parse_event(data).reply_recipient == Recipient.user("7756242")

    def test_unknown_event_has_no_reply_target(self) -> None:
        """An UnknownEvent raises ValueError naming its type; coerce refuses it too."""
        data = replaced(load("bot_setting.json"), "header.eventType", "bot.newer")
        event = parse_event(data)
        with pytest.raises(ValueError, match=r"'bot\.newer' event has no chat"):
            _ = event.reply_recipient
        with pytest.raises(ValueError, match=r"bot\.newer"):
            Recipient.coerce(event)

    def test_unknown_chat_type_cannot_be_replied_to(self) -> None:
        """A chat type other than group/bot/user raises instead of guessing."""
        data = replaced(load("message_group_text.json"), "event.chat.chatType", "channel")
        event = parse_event(data)
        with pytest.raises(ValueError, match="unknown chat type 'channel'"):
            _ = event.reply_recipient


class TestMalformedBodies:
    @pytest.mark.parametrize(
        ("name", "path"),
        [
            ("message_group_text.json", "header"),
            ("message_group_text.json", "header.eventId"),
            ("message_group_text.json", "header.eventType"),
            ("message_group_text.json", "header.eventTime"),
            ("message_group_text.json", "event"),
            ("message_group_text.json", "event.sender"),
            ("message_group_text.json", "event.sender.senderId"),
            ("message_group_text.json", "event.chat"),
            ("message_group_text.json", "event.chat.chatId"),
            ("message_group_text.json", "event.chat.chatType"),
            ("message_group_text.json", "event.message"),
            ("message_group_text.json", "event.message.msgId"),
            ("message_group_text.json", "event.message.contentType"),
            ("group_join.json", "event.chatId"),
            ("group_join.json", "event.chatType"),
            ("bot_followed.json", "event.userId"),
            ("button_report_group.json", "event.msgId"),
            ("button_report_group.json", "event.recvId"),
            ("button_report_group.json", "event.recvType"),
            ("button_report_group.json", "event.userId"),
            ("shortcut_menu_group.json", "event.menuId"),
            ("shortcut_menu_group.json", "event.chatId"),
            ("shortcut_menu_group.json", "event.senderId"),
        ],
    )
    def test_missing_required_field_is_named(self, name: str, path: str) -> None:
        """A missing required field raises EventParseError naming its path."""
        with pytest.raises(EventParseError) as info:
            parse_event(without(load(name), path))
        assert str(info.value) == f"{path}: missing"
        assert info.value.path == path
        assert info.value.reason == "missing"

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            ("header", [], "header: expected an object, got array"),
            ("header.eventId", {"a": 1}, "header.eventId: expected a string, got object"),
            ("header.eventId", "  ", "header.eventId: must not be empty"),
            ("header.eventId", True, "header.eventId: expected a string, got boolean"),
            ("header.eventTime", "soon", "header.eventTime: expected an integer, got string"),
            ("header.eventTime", 1.5, "header.eventTime: expected an integer, got number"),
            ("event", "hello", "event: expected an object, got string"),
            ("event.sender", None, "event.sender: expected an object, got null"),
            ("event.sender.senderId", 1.0, "event.sender.senderId: expected a string, got number"),
            ("event.chat.chatId", "", "event.chat.chatId: must not be empty"),
            ("event.message.content", [1], "event.message.content: expected an object, got array"),
            (
                "event.message.commandId",
                "x",
                "event.message.commandId: expected an integer, got string",
            ),
        ],
    )
    def test_wrong_type_is_named(self, path: str, value: object, message: str) -> None:
        """A field of the wrong type raises EventParseError saying what was expected."""
        with pytest.raises(EventParseError) as info:
            parse_event(replaced(load("message_group_text.json"), path, value))
        assert str(info.value) == message

    def test_integer_fields_accept_digit_strings(self) -> None:
        """An integer sent as a string of digits is accepted."""
        data = replaced(load("message_group_text.json"), "header.eventTime", "1761214759404")
        assert parse_event(data).event_time == 1761214759404

    def test_error_is_a_value_error_and_a_yunhu_error(self) -> None:
        """EventParseError belongs to the library's tree and to ValueError."""
        assert issubclass(EventParseError, YunhuError)
        assert issubclass(EventParseError, ValueError)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "body: not valid JSON"),
            (b"hello", "body: not valid JSON"),
            (b'{"header": ', "body: not valid JSON"),
            (b"\xff\xfe{}", "body: not UTF-8"),
            ("caf\udce9".encode("utf-8", "surrogatepass"), "body: not UTF-8"),
            (b"[]", "body: expected a JSON object, got array"),
            (b'[{"header": {}}]', "body: expected a JSON object, got array"),
            (b'"text"', "body: expected a JSON object, got string"),
            (b"42", "body: expected a JSON object, got integer"),
            (b"null", "body: expected a JSON object, got null"),
            (b'{"header": NaN}', "body: not valid JSON"),
            (b'{"header": Infinity}', "body: not valid JSON"),
            (b"{}", "header: missing"),
        ],
    )
    def test_bodies_that_are_not_events(self, body: bytes, message: str) -> None:
        """Bodies that are not UTF-8 JSON objects raise EventParseError about the body."""
        with pytest.raises(EventParseError) as info:
            parse_event(body)
        assert str(info.value).startswith(message)

    def test_deeply_nested_json(self) -> None:
        """JSON nested far past the recursion limit is rejected, not a crash."""
        body = b'{"header": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        with pytest.raises(EventParseError, match="body: JSON nested too deeply"):
            parse_event(body)

    def test_huge_integer_literal(self) -> None:
        """A 10,000-digit number is refused as invalid JSON, not a crash."""
        body = b'{"header": {"eventTime": ' + b"9" * 10_000 + b"}}"
        with pytest.raises(EventParseError, match="body: not valid JSON"):
            parse_event(body)

    def test_unsupported_input_type(self) -> None:
        """Anything but a mapping, bytes or str is a TypeError naming what was passed."""
        with pytest.raises(TypeError, match="not int"):
            parse_event(42)  # type: ignore[arg-type]

    def test_unknown_event_needs_only_the_header(self) -> None:
        """An unknown event type parses even when it has no event object."""
        data = without(replaced(load("bot_setting.json"), "header.eventType", "bot.newer"),
                       "event")
        event = parse_event(data)
        assert isinstance(event, UnknownEvent)
        assert event.data is None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


class TestArbitraryInput:
    @settings(max_examples=300, deadline=None)
    @given(body=st.binary(max_size=200))
    def test_random_bytes_never_escape_as_other_errors(self, body: bytes) -> None:
        """Random bytes either parse or raise EventParseError, nothing else."""
        with contextlib.suppress(EventParseError):
            parse_event(body)

    @settings(max_examples=300, deadline=None)
    @given(
        name=st.sampled_from(ALL_FIXTURES),
        path_index=st.integers(min_value=0),
        value=_json_values,
    )
    def test_any_field_replaced_by_any_json(self, name: str, path_index: int, value: Any) -> None:
        """Any field of a real body replaced by any JSON value parses or raises EventParseError."""
        data = load(name)
        paths = list(_paths(data))
        path = paths[path_index % len(paths)]
        mutated = replaced(data, path, value)
        try:
            event = parse_event(json.dumps(mutated))
        except EventParseError as exc:
            error: EventParseError | None = exc
        else:
            error = None
        if error is not None:
            assert error.path
            return
        try:
            recipient = event.reply_recipient
        except ValueError:
            return
        assert recipient.type in ("user", "group")


def _paths(node: Any, prefix: str = "") -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if "." in key or not key:
                continue
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _paths(value, path)
