"""One LLM answer streamed at once into a YunHu chat, a WebSocket chat and a web page.

``tee`` splits the answer into three readers; each one streams it to its destination
as it is produced: ``Bot.stream`` (YunHu's send-stream), ``WsChat.stream`` (the
WebSocket chat protocol: ``stream`` frames, then the whole text) and ``sse_response``
(Server-Sent Events for a browser's ``EventSource``).

``--demo`` runs everything on loopback in one process — the YunHu emulator, the
WebSocket chat server, the page — streams one answer, and prints what each
destination received::

    python examples/three_destinations.py --demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator
from yunhu_stream.sse import SSEParser, TeeIterator, sse_response, tee
from yunhu_stream.wschat import WsChat, WsChatServer, WsMessage

ANSWER = "好的！这是**一个**回答：它同时流向云湖、WebSocket 聊天和网页。"


async def llm_answer(delay: float = 0.01) -> AsyncIterator[str]:
    """A stand-in for a model's stream: the answer, a few characters at a time."""
    for i in range(0, len(ANSWER), 3):
        await asyncio.sleep(delay)
        yield ANSWER[i : i + 3]


async def to_yunhu(bot: Bot, deltas: TeeIterator[str]) -> str:
    async with bot.stream(to="group:demo", content_type="markdown") as s:
        await s.pipe(deltas)
    return s.text


async def to_wschat(chat: WsChat, deltas: TeeIterator[str]) -> str:
    async with chat.stream(to="user:alice") as s:
        await s.pipe(deltas)
    return s.text


async def read_page(url: str) -> str:
    """What a browser's EventSource at ``url`` would receive, joined."""
    parser, text = SSEParser(), []
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        async for chunk in resp.content.iter_any():
            for event in parser.feed(chunk):
                if event.event == "delta":
                    text.append(json.loads(event.data))
    return "".join(text)


async def demo() -> int:
    to_chat, to_ws, to_page = tee(llm_answer(), 3)

    async def answer(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, to_page)

    page = web.Application()
    page.router.add_get("/answer", answer)
    runner = web.AppRunner(page, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    page_url = f"http://127.0.0.1:{runner.addresses[0][1]}/answer"
    try:
        async with Emulator() as emu, WsChatServer() as server, Bot(
            emu.token, base_url=emu.base_url
        ) as bot, WsChat(server.url, token=server.issue_token("bot")) as chat, WsChat(
            server.url, token=server.issue_token("alice")
        ) as alice:
            events = alice.events()
            received = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0)
            yunhu, ws, seen_on_page = await asyncio.gather(
                to_yunhu(bot, to_chat), to_wschat(chat, to_ws), read_page(page_url))
            event = await received
            while not isinstance(event, WsMessage):
                event = await anext(events)
            in_chat = emu.chat("group", "demo")[-1].text
            print(f"YunHu chat (group:demo): {in_chat}")
            print(f"WebSocket chat (alice):  {event.content}")
            print(f"web page (SSE):          {seen_on_page}")
            same = in_chat == event.content == seen_on_page == yunhu == ws == ANSWER
            print("all three got the whole answer" if same else "MISMATCH")
            return 0 if same else 1
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run everything on loopback")
    args = parser.parse_args()
    if not args.demo:
        parser.print_help()
        return 2
    return asyncio.run(demo())


if __name__ == "__main__":
    sys.exit(main())
