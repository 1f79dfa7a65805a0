"""An existing aiohttp.web application that also answers YunHu webhooks, via ``setup()``.

The app keeps its own routes (``GET /healthz``, ``POST /announce``); ``setup()`` adds
``POST /yunhu`` and owns the Bot through the app's cleanup context, so the app's
routes reach it as ``request.app[BOT_KEY]``.

Run it for real::

    YUNHU_TOKEN=... python examples/aiohttp_app.py --port 8080

Run it offline: ``--demo`` serves the app on loopback against the YunHu emulator,
posts one sample event, prints the streamed reply, and exits::

    python examples/aiohttp_app.py --demo
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import aiohttp
from aiohttp import web

from yunhu_stream import Bot
from yunhu_stream.app import BOT_KEY, setup
from yunhu_stream.events import MessageEvent
from yunhu_stream.testing import message_event

# A private message as YunHu would POST it: chatType "bot", the bot's id as chatId.
SAMPLE_EVENT = message_event(
    "what does this bot do?",
    chat="user:7756242", sender_nickname="小明", sender_level="owner",
    event_id="demo-0002", msg_id="demo-msg-0002",
)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def announce(request: web.Request) -> web.Response:
    """``POST /announce?group=ID`` with a text body: the app's own use of the Bot."""
    group = request.query.get("group", "")
    text = await request.text()
    if not group or not text:
        raise web.HTTPBadRequest(text="need ?group=ID and a text body")
    info = await request.app[BOT_KEY].send(f"group:{group}", text)
    return web.json_response({"msgId": info.msg_id})


def build_app(token: str | None = None, base_url: str | None = None) -> web.Application:
    """The application: its own routes, plus the YunHu webhook."""
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/announce", announce)
    dp = setup(app, token, base_url=base_url, path="/yunhu")

    @dp.on_message(chat_type="bot")
    async def private(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(to=event, content_type="markdown") as s:
            await s.write(f"**Hi {event.sender.nickname}!** ")
            for piece in ("I stream ", "answers ", "as they ", "are written."):
                await s.write(piece)
                await asyncio.sleep(0.05)  # stand-in for a model producing tokens

    @dp.on_message(chat_type="group")
    async def group(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(to=event) as s:
            await s.write("Noted: ")
            await s.write(event.text or f"[{event.message.content_type}]")

    return app


async def demo() -> None:
    """Serve the app against the emulator, post one sample event, print the reply."""
    from yunhu_stream.emulator import Emulator

    async with Emulator() as emu:
        runner = web.AppRunner(build_app(emu.token, emu.base_url))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            base = f"http://{host}:{port}"
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/yunhu", json=SAMPLE_EVENT) as resp:
                    print(f"POST /yunhu answered {resp.status}: {await resp.json()}")
                async with http.get(f"{base}/healthz") as resp:
                    print(f"GET /healthz answered {resp.status}: {await resp.json()}")
            stream = await emu.wait_for_stream()
            await stream.wait_done()
            print(f"streamed reply to user 7756242 in {len(stream.chunks)} chunks:")
        finally:
            await runner.cleanup()  # waits for running handlers, then closes the Bot
        [reply] = emu.chat("user", "7756242")
        print(f"  {reply.content_type}: {reply.text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run offline against the emulator")
    parser.add_argument("--host", default="0.0.0.0", help="address to serve on")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.demo:
        asyncio.run(demo())
    else:
        logging.basicConfig(level=logging.INFO)  # a deployment wants the library's events
        web.run_app(build_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
