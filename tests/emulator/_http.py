"""Raw-HTTP helpers for the emulator tests: they pin the wire behaviour independently of
the library's own client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from yunhu_stream.emulator import Emulator, StreamRecord


class Body:
    """A chunked request body the test feeds piece by piece."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def send(self, data: bytes | str) -> None:
        self._queue.put_nowait(data.encode() if isinstance(data, str) else data)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def fail(self) -> None:
        """Make the client abort the request mid-body."""
        self._queue.put_nowait(RuntimeError("client gave up"))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def stream_url(
    emu: Emulator,
    *,
    token: str | None = None,
    recv_id: str = "123",
    recv_type: str = "group",
    content_type: str = "text",
) -> str:
    return (
        f"{emu.base_url}/bot/send-stream?token={token or emu.token}&recvId={recv_id}"
        f"&recvType={recv_type}&contentType={content_type}"
    )


async def post_stream(session: aiohttp.ClientSession, url: str, body: Any) -> dict[str, Any]:
    async with session.post(url, data=body, headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def post_json(
    session: aiohttp.ClientSession,
    emu: Emulator,
    endpoint: str,
    payload: Any,
    *,
    token: str | None = None,
) -> dict[str, Any]:
    path = endpoint if "/" in endpoint else f"bot/{endpoint}"
    url = f"{emu.base_url}/{path}?token={token or emu.token}"
    async with session.post(url, json=payload) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def get_messages(
    session: aiohttp.ClientSession, emu: Emulator, **params: str
) -> dict[str, Any]:
    query = {"token": emu.token, **params}
    async with session.get(f"{emu.base_url}/bot/messages", params=query) as resp:
        result: dict[str, Any] = await resp.json()
        return result


async def one_shot(
    session: aiohttp.ClientSession, emu: Emulator, text: str, **kw: str
) -> dict[str, Any]:
    body = Body()
    body.send(text)
    body.end()
    return await post_stream(session, stream_url(emu, **kw), body)


async def open_stream(
    session: aiohttp.ClientSession, emu: Emulator, first: str | bytes, n: int = 1
) -> tuple[Body, asyncio.Task[dict[str, Any]], StreamRecord]:
    """Start a stream, send its first piece, and return once the server has it."""
    body = Body()
    task = asyncio.create_task(post_stream(session, stream_url(emu), body))
    body.send(first)
    record = await emu.wait_for_stream(n)
    await record.wait_for_chunks(1)
    return body, task, record


async def expect_disconnect(task: asyncio.Task[Any]) -> None:
    with pytest.raises(aiohttp.ClientError):
        await task


async def next_event(resp: aiohttp.ClientResponse) -> tuple[str, Any]:
    """Read one SSE event (name, parsed data), skipping comments and retry lines."""
    name, data = "message", []
    with anyio.fail_after(10):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise EOFError("the event stream ended")
            line = line.rstrip("\n")
            if line == "" and data:
                return name, json.loads("\n".join(data))
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


async def event_where(resp: aiohttp.ClientResponse, check: Any) -> dict[str, Any]:
    """Read message events until one satisfies check(data)."""
    while True:
        name, data = await next_event(resp)
        if name == "message" and check(data):
            result: dict[str, Any] = data
            return result
