"""A browser that keeps the SSE connection open but never reads is dropped; the chat
reply fed from the same model stream (through tee) completes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._support import serving
from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import StreamBrokenError
from yunhu_stream.sse import sse_response, tee

pytestmark = pytest.mark.anyio

PIECE = "流" * 3000 + "\n"  # ~9 KB
PIECES = 1200  # ~10.8 MB: far more than loopback socket buffers hold


async def model() -> AsyncIterator[str]:
    for _ in range(PIECES):
        yield PIECE
        await asyncio.sleep(0)


async def never_reading_client(port: int) -> socket.socket:
    """Connect, send the GET, then never read a byte (a stuck tab, a paused proxy)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


class TestReaderThatNeverReads:
    async def test_it_is_dropped_and_the_chat_reply_completes(
        self, emulator: Emulator
    ) -> None:
        to_chat, to_page = tee(model(), 2, max_buffer=8)
        relay_done = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await sse_response(request, to_page, write_timeout=0.5)
            finally:
                relay_done.set()

        app = web.Application()
        app.router.add_get("/sse", handler)
        with capture_logs() as logs, anyio.fail_after(60):  # fail, not hang, if it stalls
            async with serving(app) as base:
                sock = await never_reading_client(int(base.rsplit(":", 1)[1]))
                try:
                    async with Bot(emulator.token, base_url=emulator.base_url) as bot:
                        async with bot.stream(to="group:1") as s:
                            await s.pipe(to_chat)
                        await asyncio.wait_for(relay_done.wait(), 10)
                finally:
                    sock.close()
        assert s.text == PIECE * PIECES
        assert emulator.chat("group", "1")[-1].text == PIECE * PIECES
        dropped = [e for e in logs if e["event"] == "sse_reader_dropped"]
        assert len(dropped) == 1 and 0 < dropped[0]["deltas"] < PIECES
        finished = [e for e in logs if e["event"] == "sse_relay_finished"]
        assert finished and finished[0]["outcome"] == "disconnected"


async def _drain(items: AsyncIterator[int]) -> list[int]:
    return [x async for x in items]


class TestTeeStallTimeout:
    async def test_a_consumer_that_stops_reading_is_dropped_and_told(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for i in range(100):
                yield i

        fast, stuck = tee(numbers(), 2, max_buffer=4, stall_timeout=0.2)
        assert await anext(stuck) == 0  # reads once, then stops
        with capture_logs() as logs, anyio.fail_after(30):
            got = [item async for item in fast]
        assert got == list(range(100))
        with pytest.raises(StreamBrokenError, match="dropped"):
            await anext(stuck)
        assert [e["consumer"] for e in logs if e["event"] == "tee_reader_dropped"] == [2]

    async def test_without_a_stall_timeout_a_slow_consumer_only_slows(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for i in range(20):
                yield i

        a, b = tee(numbers(), 2, max_buffer=2)
        with anyio.fail_after(30):
            first = [await anext(a) for _ in range(2)]  # a runs max_buffer ahead of b
            assert first == [0, 1] and b.buffered == 2
            with anyio.move_on_after(0.3) as waited:
                await anext(a)  # no further: the source waits for b
            assert waited.cancelled_caught
            rest_a, all_b = await asyncio.gather(_drain(a), _drain(b))
            assert rest_a == list(range(2, 20)) and all_b == list(range(20))
