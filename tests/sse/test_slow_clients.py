"""A browser that keeps the connection open but never reads (issue 12, finding 6).

Three readers of one answer: the chat, a silent browser with tiny socket buffers on both
ends, and a browser that reads.

``tee()`` one answer into a chat (the emulator) and into ``sse_response()`` for two
browsers on loopback: one reads, one never does. Before, the silent one held the
whole tee, and so the chat reply, for ever; now it is dropped after ``write_timeout``
and the chat reply and the reading browser get everything.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from yunhu_stream import Bot, Recipient
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import ConfigurationError
from yunhu_stream.sse import SSEParser, sse_response, tee

pytestmark = pytest.mark.anyio

CHAT = Recipient.group("slow-readers")
PIECE = "0123456789abcdef" * 64  # 1 KiB
PIECES = 2048  # 2 MiB in all: far more than the socket buffers the silent reader has


async def answer() -> AsyncIterator[str]:
    for i in range(PIECES):
        if i % 64 == 0:
            await asyncio.sleep(0)
        yield PIECE


async def never_reading_client(port: int, path: str) -> socket.socket:
    """A raw connection with a tiny receive buffer that asks for the stream, then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


class TestNeverReadingBrowser:
    async def test_silent_browser_is_dropped_and_the_chat_and_reader_get_everything(
        self, emulator: Emulator
    ) -> None:
        page_consumers: asyncio.Queue[AsyncIterator[str]] = asyncio.Queue()
        chat_done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async with Bot(emulator.token, base_url=emulator.base_url) as bot:

            async def to_chat(source: AsyncIterator[str]) -> None:
                async with bot.stream(to=CHAT) as s:
                    await s.pipe(source)
                chat_done.set_result(s.text)

            async def page(request: web.Request) -> web.StreamResponse:
                sock = request.transport.get_extra_info("socket") if request.transport else None
                if sock is not None:  # small server-side buffer too: the stall comes soon
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                return await sse_response(request, await page_consumers.get(),
                                          write_timeout=0.5, keepalive=None)

            web_app = web.Application()
            web_app.router.add_get("/answer", page)
            runner = web.AppRunner(web_app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            chat_side, silent_side, reading_side = tee(answer(), 3, max_buffer=16)
            page_consumers.put_nowait(silent_side)
            page_consumers.put_nowait(reading_side)
            try:
                with capture_logs() as logs:
                    silent = await never_reading_client(port, "/answer")
                    await anyio.sleep(0.1)  # let the silent one take its consumer first
                    chat_task = asyncio.create_task(to_chat(chat_side))
                    parser = SSEParser()
                    deltas: list[str] = []
                    with anyio.fail_after(60):  # a hang here is the bug
                        async with aiohttp.ClientSession() as client, \
                                client.get(f"http://127.0.0.1:{port}/answer") as resp:
                            async for chunk in resp.content.iter_any():
                                for ev in parser.feed(chunk):
                                    if ev.event == "delta":
                                        deltas.append(json.loads(ev.data))
                        text = await chat_done
                        await chat_task
                    silent.close()
            finally:
                await runner.cleanup()
        whole = PIECE * PIECES
        assert text == whole  # the chat reply completed
        assert "".join(deltas) == whole  # and the reading browser got it all
        [message] = emulator.chat(CHAT)
        assert message.text == whole and not message.streaming
        dropped = [e for e in logs if e["event"] == "sse_reader_dropped"]
        assert len(dropped) == 1
        finished = sorted(e["outcome"] for e in logs if e["event"] == "sse_relay_finished")
        assert finished == ["disconnected", "done"]

    def test_write_timeout_is_checked(self) -> None:
        async def one() -> AsyncIterator[str]:
            yield "x"

        with pytest.raises(ConfigurationError, match="write_timeout"):
            asyncio.run(sse_response(None, one(), write_timeout=0))  # type: ignore[arg-type]
