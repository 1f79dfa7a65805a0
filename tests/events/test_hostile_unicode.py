"""Hostile Unicode in webhook events (issue 12, finding 4), end to end through a BotApp.

A lone surrogate is legal in JSON (``"\\ud800"``) but no UTF-8 request can carry it back
to YunHu; RTL overrides and NUL can be carried, but must not reach a log raw. Each case is
posted to a real BotApp answering through the emulator on loopback.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anyio
import pytest
import structlog

from tests._paths import FIXTURES
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import BotApp
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import APIError, ConfigurationError, EventParseError, YunhuError
from yunhu_stream.events import MessageEvent, parse_event

pytestmark = pytest.mark.anyio

LONE = "\ud800-dup"
RTL = "evil\u202etxt.exe"
NUL = "id\x00tail"


def message_body() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "message_group_text.json").read_bytes())
    return data


def set_path(data: dict[str, Any], path: str, value: str) -> None:
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value


# Every required (routing) field of a message event, and of the other event kinds.
# eventId is not among them: it routes no reply, so such an event is answered (logged
# escaped); tests/app/test_hostile_unicode.py covers that case.
MESSAGE_FIELDS = [
    "header.eventType",
    "event.sender.senderId",
    "event.chat.chatId",
    "event.chat.chatType",
    "event.message.msgId",
    "event.message.contentType",
]
OTHER_FIELDS = [
    ("bot_followed.json", "event.userId"),
    ("bot_followed.json", "event.chatId"),
    ("button_report_group.json", "event.recvId"),
    ("button_report_group.json", "event.msgId"),
    ("group_join.json", "event.userId"),
    ("shortcut_menu_group.json", "event.chatId"),
    ("shortcut_menu_group.json", "event.menuId"),
]


class LogSink(logging.Handler):
    """Collects the library's standard-library log lines as the app would print them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.stream.write(line + "\n")  # strict UTF-8: a raw lone surrogate would raise here
        self.lines.append(line)


@pytest.fixture
def sink() -> Iterator[LogSink]:
    handler = LogSink()
    root = logging.getLogger("yunhu_stream")
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture
async def app_url(emulator: Emulator) -> AsyncIterator[str]:
    app = BotApp(emulator.token, base_url=emulator.base_url)

    @app.on_message()
    async def reply(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(to=event) as s:
            await s.write("answer to ")
            await s.write(event.text or "?")

    url = await app.start()
    yield url
    await app.stop()


async def post(url: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(data).encode()  # ensure_ascii: a lone surrogate travels as \ud800
    with anyio.fail_after(10):
        async with aiohttp.ClientSession() as client, client.post(url, data=raw) as resp:
            return resp.status, await resp.json()


class TestLoneSurrogates:
    @pytest.mark.parametrize("field", MESSAGE_FIELDS)
    def test_parse_event_refuses_a_lone_surrogate_in_a_routing_field(self, field: str) -> None:
        data = message_body()
        set_path(data, field, LONE)
        with pytest.raises(EventParseError) as caught:
            parse_event(json.dumps(data))
        assert caught.value.path == field
        assert "lone surrogate" in caught.value.reason
        str(caught.value).encode("utf-8")  # the message itself is printable

    @pytest.mark.parametrize(("fixture", "field"), OTHER_FIELDS)
    def test_other_event_kinds_refuse_it_too(self, fixture: str, field: str) -> None:
        data = json.loads((FIXTURES / fixture).read_bytes())
        set_path(data, field, "\udfff1")
        with pytest.raises(EventParseError, match="lone surrogate"):
            parse_event(data)

    def test_a_lone_surrogate_in_free_text_is_kept(self) -> None:
        """Only routing fields are strict: a nickname or the message text parse."""
        data = message_body()
        data["event"]["sender"]["senderNickname"] = LONE
        data["event"]["message"]["content"]["text"] = LONE
        event = parse_event(json.dumps(data))
        assert isinstance(event, MessageEvent)
        assert event.sender.nickname == LONE

    @pytest.mark.parametrize("field", ["event.chat.chatId", "event.sender.senderId",
                                       "event.message.msgId"])
    async def test_webhook_answers_400_naming_the_field(
        self, app_url: str, emulator: Emulator, sink: LogSink, field: str
    ) -> None:
        data = message_body()
        set_path(data, field, LONE)
        status, answer = await post(app_url, data)
        assert status == 400
        assert answer["ok"] is False
        assert field in answer["error"] and "lone surrogate" in answer["error"]
        assert emulator.chats() == []
        # The rejection was logged, and printably.
        assert any(line.startswith("webhook_rejected") and "400" in line for line in sink.lines)

    async def test_the_app_keeps_answering_after_hostile_events(
        self, app_url: str, emulator: Emulator
    ) -> None:
        for field in MESSAGE_FIELDS:
            data = message_body()
            set_path(data, field, LONE)
            status, _ = await post(app_url, data)
            assert status == 400
        status, _ = await post(app_url, message_body())
        assert status == 200
        reply = await emulator.wait_for_message(
            Recipient.group("307149245"), predicate=lambda m: not m.streaming
        )
        assert reply.text == "answer to 早上好"


class TestEncodableButHostile:
    @pytest.mark.parametrize("value", [RTL, NUL])
    @pytest.mark.parametrize("field", ["header.eventId", "event.chat.chatId"])
    async def test_reply_arrives_and_logs_are_escaped(
        self, app_url: str, emulator: Emulator, sink: LogSink, field: str, value: str
    ) -> None:
        data = message_body()
        set_path(data, field, value)
        status, answer = await post(app_url, data)
        assert status == 200
        assert answer["status"] == "accepted"
        chat = Recipient.group(data["event"]["chat"]["chatId"])
        reply = await emulator.wait_for_message(chat, predicate=lambda m: not m.streaming)
        assert reply.text == "answer to 早上好"
        with anyio.fail_after(5):
            while not any(line.startswith("stream_closed") for line in sink.lines):
                await anyio.sleep(0.01)
        logged = "\n".join(sink.lines)
        assert value not in logged  # never raw
        escaped = value.replace("\u202e", "\\u202e").replace("\x00", "\\u0000")
        assert escaped in logged


class TestRecipient:
    @pytest.mark.parametrize("ident", [LONE, "\udfff", "12\udc80"])
    def test_unencodable_id_is_a_configuration_error(self, ident: str) -> None:
        for make in (Recipient.user, Recipient.group):
            with pytest.raises(ConfigurationError, match="lone surrogate") as caught:
                make(ident)
            str(caught.value).encode("utf-8")
        with pytest.raises(ConfigurationError):
            Recipient.parse(f"group:{ident}")

    def test_encodable_ids_are_accepted(self) -> None:
        assert Recipient.group(RTL).id == RTL
        assert Recipient.user(NUL).id == NUL

    async def test_bot_stream_refuses_before_sending(self, emulator: Emulator) -> None:
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            with pytest.raises(ConfigurationError, match="lone surrogate"):
                bot.stream(to=f"group:{LONE}")
            with pytest.raises(ConfigurationError, match="lone surrogate"):
                bot.stream(to="group:1", at=[LONE])
            with pytest.raises(ConfigurationError, match="lone surrogate"):
                bot.stream(to="group:1", buttons=[{"text": LONE, "actionType": 2,
                                                   "value": "v"}])
            with pytest.raises(ConfigurationError, match="lone surrogate"):
                await bot.send("group:1", "hi", parent_id=LONE)
        assert emulator.chats() == []


class TestLoggingCannotBreakDelivery:
    async def test_surrogate_in_log_context_and_a_raising_handler(
        self, emulator: Emulator
    ) -> None:
        """The issue's failure: event_id bound into the log context held a lone surrogate,
        so every log call raised and the reply died. Now the value is escaped, a handler
        that raises is contained, and a failed close raises the typed error with .text."""

        class Exploding(logging.Handler):
            calls = 0

            def emit(self, record: logging.LogRecord) -> None:
                Exploding.calls += 1
                raise RuntimeError("this handler always fails")

        handler = Exploding(logging.DEBUG)
        root = logging.getLogger("yunhu_stream")
        old = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            with structlog.contextvars.bound_contextvars(event_id=LONE, chat=RTL + NUL):
                async with Bot(emulator.token, base_url=emulator.base_url) as bot:
                    async with bot.stream(to=Recipient.group(RTL)) as s:
                        await s.write("first reply")
                    assert s.message_info is not None

                    emulator.faults.reject(1002, when="after_body")
                    s2 = bot.stream(to=Recipient.group(RTL), max_message_bytes=None)
                    await s2.write("second reply")
                    with pytest.raises(YunhuError) as caught:
                        await s2.close()
        finally:
            root.removeHandler(handler)
            root.setLevel(old)
        assert Exploding.calls > 0  # the handler really was called, and failed
        assert isinstance(caught.value, APIError)
        assert not isinstance(caught.value, UnicodeError)
        assert caught.value.text == "second reply"
        texts = [m.text for m in emulator.chat(Recipient.group(RTL))]
        assert texts[0] == "first reply"
