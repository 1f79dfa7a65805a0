"""yunhu_stream.testing's webhook-body builders: YunHu's shapes, parsed to the right event."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from tests._paths import FIXTURES
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import BotApp
from yunhu_stream.emulator import Emulator
from yunhu_stream.events import (
    ButtonReportEvent,
    FollowEvent,
    MessageEvent,
    ShortcutMenuEvent,
    parse_event,
)
from yunhu_stream.testing import (
    DEFAULT_AVATAR_URL,
    DEFAULT_BOT_ID,
    DEFAULT_USER_ID,
    button_event,
    follow_event,
    menu_event,
    message_event,
)

pytestmark = pytest.mark.anyio



def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def shape(value: Any) -> Any:
    """The keys and value types of a JSON value, without the values themselves."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def with_avatar(body: dict[str, Any]) -> dict[str, Any]:
    """A fixture message with ``senderAvatarUrl``, which real events carry (and
    nonebot-adapter-yunhu requires) but the documented example leaves out."""
    body["event"]["sender"]["senderAvatarUrl"] = DEFAULT_AVATAR_URL
    return body


class TestShapes:
    """Each builder's body has exactly the fields and types of the event YunHu sends."""

    @pytest.mark.parametrize(
        ("built", "name"),
        [
            (lambda: message_event("早上好", chat="group:307149245"), "message_group_text.json"),
            (lambda: message_event("/help streaming", chat="user:7756242", command="help"),
             "message_instruction_private.json"),
        ],
        ids=["group-message", "private-command"],
    )
    def test_message_matches_the_documented_body(self, built: Any, name: str) -> None:
        """A message body has the fixture's fields and types, plus senderAvatarUrl."""
        assert shape(built()) == shape(with_avatar(fixture(name)))

    @pytest.mark.parametrize(
        ("built", "name"),
        [
            (lambda: button_event("more", chat="user:7756242"), "button_report_private.json"),
            (lambda: button_event("ok", chat="group:1"), "button_report_group.json"),
            (lambda: follow_event(), "bot_followed.json"),
            (lambda: follow_event(followed=False), "bot_unfollowed.json"),
            (lambda: menu_event("S5VCMYU4", chat="user:7756242"), "shortcut_menu_private.json"),
            (lambda: menu_event("VO9SDAQ9", chat="group:1"), "shortcut_menu_group.json"),
        ],
        ids=["button-private", "button-group", "followed", "unfollowed",
             "menu-private", "menu-group"],
    )
    def test_other_events_match_the_documented_body(self, built: Any, name: str) -> None:
        """Button, follow and menu bodies have the fixture's fields and types."""
        assert shape(built()) == shape(fixture(name))

    def test_private_message_uses_the_bot_as_chat(self) -> None:
        """A private message has chatType bot and the bot's id as chatId, as YunHu sends it."""
        event = message_event("hi", chat="user:42", bot_id="900")["event"]
        assert event["chat"] == {"chatId": "900", "chatType": "bot"}
        assert (event["message"]["chatId"], event["message"]["chatType"]) == ("900", "bot")
        assert event["sender"]["senderId"] == "42"

    def test_bodies_survive_a_json_round_trip(self) -> None:
        """Every body is plain JSON: dumping and loading it gives the same dict."""
        for body in (message_event("你好", at=["1"]), button_event("v"), follow_event(),
                     menu_event("M")):
            assert json.loads(json.dumps(body)) == body

    def test_each_call_gets_fresh_ids(self) -> None:
        """Two calls give different event and message ids (so dedup never drops one)."""
        first, second = message_event("a"), message_event("a")
        assert first["header"]["eventId"] != second["header"]["eventId"]
        assert first["event"]["message"]["msgId"] != second["event"]["message"]["msgId"]

    def test_given_ids_and_time_are_used(self) -> None:
        """event_id, msg_id and time_ms end up in the header and the message."""
        body = message_event("a", event_id="e-1", msg_id="m-1", time_ms=1_700_000_000_000)
        assert body["header"] == {"eventId": "e-1", "eventType": "message.receive.normal",
                                  "eventTime": 1_700_000_000_000}
        assert body["event"]["message"]["msgId"] == "m-1"
        assert body["event"]["message"]["sendTime"] == 1_700_000_000_000


class TestParsing:
    """parse_event turns each body into the matching event, replying to the chat asked for."""

    def test_group_message(self) -> None:
        """A group message parses to a MessageEvent that replies to the group."""
        event = parse_event(message_event("早上好", chat="group:123", sender_id="55",
                                          sender_nickname="小红", sender_level="owner"))
        assert isinstance(event, MessageEvent)
        assert event.event_type == "message.receive.normal"
        assert event.text == "早上好" and event.is_group and not event.is_command
        assert (event.sender.id, event.sender.nickname, event.sender.user_level) == (
            "55", "小红", "owner")
        assert event.reply_recipient == Recipient.group("123")

    def test_private_message_replies_to_the_sender(self) -> None:
        """A private message parses with chat type bot and replies to the user, not the bot."""
        event = parse_event(message_event("hi", chat=Recipient.user("42")))
        assert isinstance(event, MessageEvent)
        assert (event.chat.type, event.chat.id) == ("bot", DEFAULT_BOT_ID)
        assert event.sender.id == "42"
        assert event.reply_recipient == Recipient.user("42")

    def test_command_in_a_private_chat(self) -> None:
        """A command is an instruction event carrying its name and id."""
        event = parse_event(message_event("/help streaming", chat="user:42",
                                          command="help", command_id=2103))
        assert isinstance(event, MessageEvent)
        assert event.event_type == "message.receive.instruction"
        assert event.is_command
        assert (event.command_name, event.command_id) == ("help", 2103)
        assert event.text == "/help streaming"
        assert event.reply_recipient == Recipient.user("42")

    def test_command_in_a_group_has_a_default_id(self) -> None:
        """A group command without command_id gets id 1 and replies to the group."""
        event = parse_event(message_event("", chat="group:9", command="ping"))
        assert isinstance(event, MessageEvent)
        assert (event.command_name, event.command_id) == ("ping", 1)
        assert event.reply_recipient == Recipient.group("9")

    def test_mentions_quotes_and_other_content(self) -> None:
        """at, parent_id, content_type and extra content fields reach the parsed message."""
        event = parse_event(message_event(
            "", content_type="image", content={"imageUrl": "https://x/y.png"},
            at=["37090343"], parent_id="p-1",
        ))
        assert isinstance(event, MessageEvent)
        assert event.message.content_type == "image"
        assert event.message.content["imageUrl"] == "https://x/y.png"
        assert event.message.at == ("37090343",)
        assert event.message.parent_id == "p-1"

    def test_private_button_replies_to_who_clicked(self) -> None:
        """A private button report names the bot in recvId and replies to the clicker."""
        event = parse_event(button_event("more", chat="user:42", msg_id="m-9"))
        assert isinstance(event, ButtonReportEvent)
        assert (event.recv_type, event.recv_id, event.user_id) == ("bot", DEFAULT_BOT_ID, "42")
        assert (event.value, event.msg_id) == ("more", "m-9")
        assert event.reply_recipient == Recipient.user("42")

    def test_group_button_replies_to_the_group(self) -> None:
        """A button clicked in a group replies to the group; the clicker defaults."""
        event = parse_event(button_event("ok", chat="group:7"))
        assert isinstance(event, ButtonReportEvent)
        assert event.user_id == DEFAULT_USER_ID
        assert event.reply_recipient == Recipient.group("7")

    @pytest.mark.parametrize("followed", [True, False])
    def test_follow_replies_to_the_user(self, followed: bool) -> None:
        """bot.followed / bot.unfollowed parse to a FollowEvent replying to the user."""
        event = parse_event(follow_event("42", followed=followed, nickname="小红"))
        assert isinstance(event, FollowEvent)
        assert event.followed is followed
        assert (event.user_id, event.nickname, event.chat_id) == ("42", "小红", DEFAULT_BOT_ID)
        assert event.reply_recipient == Recipient.user("42")

    @pytest.mark.parametrize(
        ("chat", "expected"),
        [("group:7", Recipient.group("7")), ("user:42", Recipient.user("42"))],
    )
    def test_menu_replies_to_the_chat(self, chat: str, expected: Recipient) -> None:
        """A shortcut-menu press replies to the group, or to who pressed it in private."""
        event = parse_event(menu_event("VO9SDAQ9", chat=chat))
        assert isinstance(event, ShortcutMenuEvent)
        assert event.menu_id == "VO9SDAQ9" and event.bot_id == DEFAULT_BOT_ID
        assert event.reply_recipient == expected


class TestValidation:
    """Bad arguments fail at once with an error naming the argument and what is accepted."""

    @pytest.mark.parametrize(
        ("call", "error", "match"),
        [
            (lambda: message_event(b"hi"), TypeError, "text must be a str"),  # type: ignore[arg-type]
            (lambda: message_event("hi", chat="room:1"), ValueError, "accepted"),
            (lambda: message_event("hi", chat=123), ValueError,  # type: ignore[arg-type]
             "chat must be a Recipient or a string 'group:ID' or 'user:ID'"),
            (lambda: message_event("hi", chat="user:42", sender_id="43"), ValueError,
             "a private chat is with the user who acts in it"),
            (lambda: message_event("hi", sender_id=""), ValueError,
             "sender_id must be a non-empty string"),
            (lambda: message_event("hi", sender_id=7756242), ValueError,  # type: ignore[arg-type]
             "sender_id must be a non-empty string"),
            (lambda: message_event("hi", content_type="sticker"), ValueError,
             "content_type must be one of 'text'"),
            (lambda: message_event("hi", sender_level="admin"), ValueError,
             "sender_level must be one of 'owner'"),
            (lambda: message_event("hi", command_id=3), ValueError,
             "command_id needs a command name"),
            (lambda: message_event("hi", command="help", command_id=0), ValueError,
             "command_id must be an int >= 1"),
            (lambda: message_event("hi", command=" help"), ValueError, "command must be"),
            (lambda: message_event("hi", at="37090343"), ValueError,
             "at must be a sequence of user ids"),
            (lambda: message_event("hi", content=["x"]), TypeError,  # type: ignore[arg-type]
             "content must be a mapping"),
            (lambda: message_event("hi", time_ms=-1), ValueError, "time_ms must be an int >= 0"),
            (lambda: message_event("hi", event_id=""), ValueError, "event_id must be"),
            (lambda: button_event(1), TypeError, "value must be a str"),  # type: ignore[arg-type]
            (lambda: button_event("v", chat="user:1", user_id="2"), ValueError,
             "user_id='2'"),
            (lambda: follow_event(""), ValueError, "user_id must be a non-empty string"),
            (lambda: follow_event("1", followed="yes"), ValueError,  # type: ignore[arg-type]
             "followed must be True or False"),
            (lambda: menu_event("M", menu_type=-1), ValueError, "menu_type must be an int >= 0"),
            (lambda: menu_event("M", bot_id=" 1"), ValueError, "bot_id must be"),
        ],
    )
    def test_bad_argument_is_named(self, call: Any, error: type[Exception], match: str) -> None:
        """The error's type and message say which argument was wrong and what is accepted."""
        with pytest.raises(error, match=match):
            call()


class TestAgainstARunningBot:
    """The bodies drive a real webhook server, whose replies land in the right chat."""

    async def test_private_command_and_group_message_are_answered_where_they_belong(
        self, emulator: Emulator
    ) -> None:
        """A private command is answered to the user, a group message in the group."""
        app = BotApp(emulator.token, base_url=emulator.base_url)

        @app.on_command("help")
        async def help_(event: MessageEvent, bot: Bot) -> None:
            await bot.send(event, f"help for {event.sender.id}")

        @app.on_message()
        async def echo(event: MessageEvent, bot: Bot) -> None:
            await bot.send(event, f"echo: {event.text}")

        url = await app.start()
        try:
            async with aiohttp.ClientSession() as http:
                for body in (message_event("/help", chat="user:42", command="help"),
                             message_event("早", chat="group:9")):
                    async with http.post(url, json=body) as resp:
                        assert resp.status == 200
            private = await emulator.wait_for_message("user", "42")
            group = await emulator.wait_for_message("group", "9")
        finally:
            await app.stop()
        assert private.text == "help for 42"
        assert group.text == "echo: 早"
        assert emulator.chat("user", DEFAULT_BOT_ID) == []


class TestImport:
    """Scripts can use the builders without pytest installed."""

    async def test_imports_without_pytest(self) -> None:
        """With pytest unimportable, the module imports, builds bodies, and has no fixture."""
        code = ("import sys; sys.modules['pytest'] = None\n"
                "import yunhu_stream.testing as t\n"
                "assert not hasattr(t, 'emulator') and 'emulator' not in t.__all__\n"
                "print(t.message_event('x')['header']['eventType'])\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "message.receive.normal"
