"""WsChatApp: a bot on the WebSocket chat, and the three-destination example."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from tests._paths import EXAMPLES
from tests._support import child_env
from tests.wschat.conftest import Connect
from yunhu_stream.errors import ConfigurationError
from yunhu_stream.wschat import WsChat, WsChatApp, WsChatServer, WsMessage

pytestmark = pytest.mark.anyio


async def next_message(events: Any) -> WsMessage:
    while True:
        event = await asyncio.wait_for(anext(events), 10)
        if isinstance(event, WsMessage):
            return event


class TestWsChatApp:
    async def test_a_handler_streams_a_reply_to_the_sender_and_to_the_group(
        self, server: WsChatServer, connect: Connect
    ) -> None:
        app = WsChatApp(server.url, token=server.issue_token("bot"), groups=["g1"])

        @app.on_message(msg_type="text")
        async def echo(event: WsMessage, chat: WsChat) -> None:
            async with app.stream(to=event) as s:
                await s.write("echo: ")
                await s.write(event.content)

        alice = await connect("alice")
        await alice.join("g1")
        events = alice.events()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        async with app:
            await alice.send("user:bot", "你好")
            reply = await first
            while not isinstance(reply, WsMessage):
                reply = await anext(events)
            assert (reply.content, reply.source, reply.chat_type) == ("echo: 你好", "bot", "single")
            assert reply.streamed
            await alice.send("group:g1", "hi group")
            in_group = await next_message(events)
            assert (in_group.content, in_group.chat_type, in_group.target) == (
                "echo: hi group", "group", "g1")
        assert app.handled == 2 and app.failed == 0

    async def test_a_failing_handler_is_counted_and_the_app_goes_on(
        self, server: WsChatServer, connect: Connect
    ) -> None:
        app = WsChatApp(server.url, token=server.issue_token("bot"))
        calls = []

        @app.on_message()
        async def flaky(event: WsMessage, chat: WsChat) -> None:
            calls.append(event.content)
            if event.content == "boom":
                raise RuntimeError("handler bug")
            await chat.send(event, "ok")

        alice = await connect("alice")
        events = alice.events()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        async with app:
            await alice.send("user:bot", "boom")
            await alice.send("user:bot", "fine")
            answer = await first
            assert isinstance(answer, WsMessage) and answer.content == "ok"
        assert calls == ["boom", "fine"] and app.failed == 1

    async def test_bad_options_are_named(self, server: WsChatServer) -> None:
        with pytest.raises(ConfigurationError, match="max_handlers"):
            WsChatApp(server.url, token="t", max_handlers=0)
        app = WsChatApp(server.url, token="t")
        with pytest.raises(ConfigurationError, match="chat_type"):
            app.on_message(chat_type="channel")


class TestExample:
    def test_one_answer_reaches_yunhu_a_websocket_chat_and_a_page(self) -> None:
        out = subprocess.run(
            [sys.executable, str(EXAMPLES / "three_destinations.py"), "--demo"],
            capture_output=True, text=True, timeout=120, check=False, env=child_env(),
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[-1] == "all three got the whole answer"
        answers = {line.split("): ", 1)[1].strip() for line in lines[:3]}
        assert len(answers) == 1 and "云湖" in answers.pop()
