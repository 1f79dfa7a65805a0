"""Disconnects: a reply interrupted by one is finished after reconnecting, shown once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from tests._support import free_port, serving
from yunhu_stream.errors import ConnectError, HTTPStatusError
from yunhu_stream.wschat import WsChat, WsChatServer, WsErrorEvent, WsMessage, WsStreamPiece

pytestmark = pytest.mark.anyio


async def next_message(events: Any) -> WsMessage:
    while True:
        event = await asyncio.wait_for(anext(events), 10)
        if isinstance(event, WsMessage):
            return event


class TestServerRestart:
    async def test_a_restart_mid_stream_ends_with_the_full_text_delivered_once(self) -> None:
        server = WsChatServer()
        await server.start()
        try:
            async with WsChat(server.url, token=server.issue_token("bot")) as bot, WsChat(
                server.url, token=server.issue_token("bob")) as bob:
                events = bob.events()
                first = asyncio.ensure_future(anext(events))
                await asyncio.sleep(0)
                s = bot.stream(to="user:bob")
                await s.write("before the restart, ")
                assert isinstance(await asyncio.wait_for(first, 10), WsStreamPiece)
                await server.stop()
                await s.write("while it was down, ")  # kept in the stream's buffer
                await server.start()
                await s.write("and after.")
                info = await s.close()
                final = await next_message(events)
                await bot.send("user:bob", "marker")
                assert (await next_message(events)).content == "marker"  # no second copy
                assert final.content == "before the restart, while it was down, and after."
                assert final.msg_id == info.msg_id  # type: ignore[union-attr]
                assert bot.connects >= 2 and bob.connects >= 2
        finally:
            await server.aclose()

    async def test_groups_are_joined_again_after_a_reconnect(self) -> None:
        server = WsChatServer()
        await server.start()
        try:
            async with WsChat(server.url, token=server.issue_token("a")) as a:
                await a.join("g1")
                await server.stop()
                server_members_before = server.members("g1")
                await server.start()
                for _ in range(200):
                    if a.connected and a.connects == 2:
                        break
                    await asyncio.sleep(0.02)
                await a.send("user:z", "ping")  # acked: the rejoin went first
                assert server_members_before == {"a"} and server.members("g1") == {"a"}
        finally:
            await server.aclose()


class TestLostAck:
    async def test_a_final_frame_whose_ack_was_lost_is_sent_again_once(self) -> None:
        """The first connection drops right after the final frame (no ack); the client
        sends it again on the next connection, with the same msgId."""
        finals: list[dict[str, Any]] = []
        connections = 0

        async def chat(request: web.Request) -> web.WebSocketResponse:
            nonlocal connections
            connections += 1
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for msg in ws:
                frame = json.loads(msg.data)
                if frame.get("extra", {}).get("done"):
                    finals.append(frame)
                    if connections == 1:
                        await ws.close()  # gone before the ack
                        break
                    await ws.send_str(json.dumps({"type": "ack", "msg": frame["msg"]}))
            return ws

        app = web.Application()
        app.router.add_get("/chat", chat)
        async with serving(app) as base:
            url = base.replace("http://", "ws://") + "/chat"
            async with (
                WsChat(url, token="t", reconnect_max_wait=5) as bot,
                bot.stream(to="user:bob") as s,
            ):
                await s.write("the whole answer")
        assert connections == 2
        assert [f["msg"]["content"] for f in finals] == ["the whole answer"] * 2
        assert finals[0]["msg"]["msgId"] == finals[1]["msg"]["msgId"] == s.message_info.msg_id  # type: ignore[union-attr]

    async def test_a_final_frame_that_arrives_twice_is_one_event(self) -> None:
        final = {"type": "single", "source": "bot", "target": "bob", "msgType": "text",
                 "extra": {"seq": 1, "done": True, "streamed": True},
                 "msg": {"msgId": "m1", "timestamp": 1, "content": "once"}}
        other = {**final, "msg": {"msgId": "m2", "timestamp": 2, "content": "next"}}

        async def chat(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            for frame in (final, final, other):
                await ws.send_str(json.dumps(frame))
            async for _ in ws:
                pass
            return ws

        app = web.Application()
        app.router.add_get("/chat", chat)
        async with serving(app) as base:
            url = base.replace("http://", "ws://") + "/chat"
            chat_client = WsChat(url, token="t")
            events = chat_client.events()
            first = asyncio.ensure_future(anext(events))
            async with chat_client:
                got = [await asyncio.wait_for(first, 10), await next_message(events)]
        assert [e.content for e in got] == ["once", "next"]  # type: ignore[union-attr]


class TestBadServers:
    async def test_a_malformed_frame_from_the_server_is_an_error_event(self) -> None:
        async def chat(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_str("{broken")
            await ws.send_str(json.dumps({"type": "single", "source": "x", "target": "me",
                                          "msg": {"msgId": "1", "content": "fine"}}))
            async for _ in ws:
                pass
            return ws

        app = web.Application()
        app.router.add_get("/chat", chat)
        async with serving(app) as base:
            url = base.replace("http://", "ws://") + "/chat"
            chat_client = WsChat(url, token="t")
            events = chat_client.events()
            first = asyncio.ensure_future(anext(events))
            async with chat_client:
                bad = await asyncio.wait_for(first, 10)
                good = await next_message(events)
                assert chat_client.connected
        assert isinstance(bad, WsErrorEvent) and "not JSON" in bad.reason
        assert bad.raw == "{broken"
        assert good.content == "fine"

    async def test_a_refused_token_fails_at_once_without_the_token_in_the_error(
        self, server: WsChatServer
    ) -> None:
        secret = "not-a-valid-token-1234567890"
        with pytest.raises(HTTPStatusError) as info:
            async with WsChat(server.url, token=secret):
                pass
        assert info.value.status == 401
        assert secret not in str(info.value) and secret not in repr(info.value)
        assert str(info.value) == "wschat: HTTP 401: 'Invalid response status'"
        assert info.value.endpoint == "wschat" and info.value.body == "Invalid response status"

    async def test_nothing_listening_is_a_connect_error_after_the_retries(self) -> None:
        url = f"ws://127.0.0.1:{free_port()}/chat"
        with pytest.raises(ConnectError) as info:
            async with WsChat(url, token="secret-token-xyz", reconnect_attempts=2,
                              reconnect_max_wait=1):
                pass
        assert "secret-token-xyz" not in str(info.value)
        assert str(info.value).startswith("wschat: ClientConnectorError: Cannot connect to ")
        assert info.value.endpoint == "wschat"

    async def test_a_stream_fails_with_its_text_when_the_server_never_comes_back(self) -> None:
        server = WsChatServer()
        await server.start()
        async with WsChat(server.url, token=server.issue_token("bot"), reconnect_attempts=2,
                          reconnect_max_wait=0.5) as bot:
            s = bot.stream(to="user:bob")
            await s.write("kept ")
            await server.aclose()
            await s.write("in the error")
            with pytest.raises(ConnectError) as info:
                await s.close()
        assert info.value.text == "kept in the error"


class TestTokenApi:
    async def test_fetch_token_gets_one_and_a_wrong_secret_is_an_api_error(
        self, server: WsChatServer
    ) -> None:
        token = await WsChat.fetch_token(server.base_url, app_key="demo-key",
                                         app_secret="demo-secret", user_id=42)
        assert server.user_of(token) == "42"
        from yunhu_stream.errors import APIError

        with pytest.raises(APIError) as info:
            await WsChat.fetch_token(server.base_url, app_key="demo-key",
                                     app_secret="wrong-secret-abc", user_id=42)
        assert "wrong-secret-abc" not in str(info.value)

    async def test_the_repr_hides_the_token(self, server: WsChatServer) -> None:
        token = server.issue_token("bot")
        async with WsChat(server.url, token=token) as chat:
            assert token not in repr(chat)
            assert token not in repr(chat.stream(to="user:x"))
        with pytest.raises(ValueError, match="ws:"):
            WsChat("http://127.0.0.1:1/chat", token="t")
