"""A worker process for tests/redis: one Bot on a shared token, sharing Redis.

``stream BASE_URL COUNT CHAT``: prints ``ready``, waits for ``go`` on stdin, streams
COUNT replies at once, prints one JSON line (errors, finish time) and exits.
``app BASE_URL``: serves a BotApp on a free loopback port whose handler replies to each
message after the delay its text names (``sleep 0.5 e1``); prints its URL as JSON;
stops at EOF.
The token and Redis come from YUNHU_TOKEN / YUNHU_REDIS_URL, as in a deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from yunhu_stream import Bot
from yunhu_stream.app import BotApp
from yunhu_stream.events import MessageEvent


async def stream(base_url: str, count: int, chat: str) -> None:
    async with Bot(base_url=base_url) as bot:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        errors: list[str] = []

        async def one(i: int) -> None:
            try:
                async with bot.stream(f"user:{chat}") as s:
                    await s.write(f"reply {i}")
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(type(exc).__name__)

        await asyncio.gather(*(one(i) for i in range(count)))
        print(json.dumps({"errors": errors, "finished": time.time()}), flush=True)


async def app(base_url: str) -> None:
    options = {}
    if os.environ.get("YUNHU_TEST_CHAT_ORDER"):
        from yunhu_stream.redis import RedisStore

        options["redis"] = RedisStore(chat_order=True)  # the URL from YUNHU_REDIS_URL
    bot_app = BotApp(base_url=base_url, bot_options=options)

    @bot_app.on_message()
    async def reply(event: MessageEvent, bot: Bot) -> None:
        _, delay, name = event.text.split()
        await asyncio.sleep(float(delay))
        async with bot.stream(event) as s:
            await s.write(f"reply to {name}")

    async with bot_app:
        print(json.dumps({"url": bot_app.url}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)


if __name__ == "__main__":
    if sys.argv[1] == "stream":
        asyncio.run(stream(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(app(sys.argv[2]))
