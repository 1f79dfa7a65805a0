"""Fixtures for the WebSocket chat tests: a real server on loopback and users on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from yunhu_stream.wschat import WsChat, WsChatServer

Connect = Callable[..., Awaitable[WsChat]]
Raw = Callable[[str], Awaitable[aiohttp.ClientWebSocketResponse]]


@pytest.fixture
async def server() -> AsyncIterator[WsChatServer]:
    async with WsChatServer() as srv:
        yield srv


@pytest.fixture
async def connect(server: WsChatServer) -> AsyncIterator[Connect]:
    """``await connect("alice")``: an open WsChat for that user (closed after the test)."""
    async with AsyncExitStack() as stack:

        async def open_chat(user: str, **options: Any) -> WsChat:
            chat = WsChat(server.url, token=server.issue_token(user), **options)
            return await stack.enter_async_context(chat)

        yield open_chat


@pytest.fixture
async def raw(server: WsChatServer) -> AsyncIterator[Raw]:
    """``await raw("bob")``: a bare aiohttp WebSocket for that user, as any client has."""
    async with aiohttp.ClientSession() as session, AsyncExitStack() as stack:

        async def open_raw(user: str) -> aiohttp.ClientWebSocketResponse:
            ws = await session.ws_connect(f"{server.url}?token={server.issue_token(user)}")
            stack.push_async_callback(ws.close)
            return ws

        yield open_raw


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every frame ``ws`` receives, up to and including the first for which ``done``."""
    out = []
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        out.append(frame)
        if done(frame):
            return out


def is_final(frame: dict[str, Any]) -> bool:
    return frame.get("type") in ("single", "group") and frame.get("msgType") != "stream"
