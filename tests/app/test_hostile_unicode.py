"""Hostile Unicode in the ids that route no reply, and odd but encodable chat ids.

JSON allows a lone surrogate (``"\\ud800"``); Python decodes it into a str that cannot be
encoded. In an id that routes nothing (``eventId``, the ignored ``message.chatId``) the event
is answered and replied to, its logs escaped. Routing ids with one get a 400: that, and
``Recipient``'s refusal, are tested in tests/events/test_hostile_unicode.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests._paths import FIXTURES
from tests.app._webhook import GROUP, StartApp, echo, finished, post
from yunhu_stream import Recipient
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

LONE = "\ud800-x"
BASE = json.loads((FIXTURES / "message_group_text.json").read_bytes())
# Ids that route no reply: a lone surrogate in one must not stop it.
ID_FIELDS = [
    "header.eventId",
    "event.message.chatId",  # not read: the chat comes from event.chat
]


def with_value(path: str, value: object) -> bytes:
    data = json.loads(json.dumps(BASE))
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return json.dumps(data).encode()  # ensure_ascii: the surrogate travels as \\ud800


class TestLoneSurrogates:
    @pytest.mark.parametrize("path", ID_FIELDS)
    async def test_such_an_id_gets_200_and_its_reply(
        self, path: str, start_app: StartApp, client: aiohttp.ClientSession,
        emulator: Emulator,
    ) -> None:
        _, url = await start_app(echo)
        with capture_logs():
            status, answer = await post(client, url, with_value(path, LONE))
        assert status == 200, answer
        reply = await emulator.wait_for_message(GROUP, predicate=finished)
        assert reply.text == "echo: 早上好"

    async def test_the_logs_of_such_an_event_stay_printable(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """With standard logging on, the event's log lines are written, escaped."""
        _, url = await start_app(echo)
        with caplog.at_level(logging.DEBUG, logger="yunhu_stream"):
            status, _ = await post(client, url, with_value("header.eventId", LONE))
            await emulator.wait_for_message(GROUP, predicate=finished)
        assert status == 200
        text = "\n".join(record.getMessage() for record in caplog.records)
        text.encode("utf-8")  # every line can be written out
        assert "\\ud800-x" in text


class TestOverridesAndControls:
    @pytest.mark.parametrize("chat_id", ["\u202e307149245", "3071\u200f49245", "30714\x009245"])
    async def test_an_odd_but_encodable_chat_id_is_answered_and_logged_escaped(
        self, chat_id: str, start_app: StartApp, client: aiohttp.ClientSession,
        emulator: Emulator, caplog: pytest.LogCaptureFixture,
    ) -> None:
        _, url = await start_app(echo)
        body = with_value("event.chat.chatId", chat_id)
        body = json.dumps({**json.loads(body), "event": {
            **json.loads(body)["event"],
            "message": {**json.loads(body)["event"]["message"], "chatId": chat_id},
        }}).encode()
        with caplog.at_level(logging.DEBUG, logger="yunhu_stream"):
            status, _ = await post(client, url, body)
            reply = await emulator.wait_for_message(Recipient.group(chat_id),
                                                    predicate=finished)
        assert status == 200 and reply.text == "echo: 早上好"
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert chat_id not in logged  # the raw control/override never reaches a log line
