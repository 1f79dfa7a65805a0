"""Stream a short answer into YunHu, token by token, and watch the chunks arrive.

Without ``YUNHU_TOKEN`` it streams into the embedded emulator and prints each
chunk as the server receives it. With ``YUNHU_TOKEN`` (and ``YUNHU_TO``, e.g.
``user:7058262``) it streams to the real service instead.

    python examples/stream_hello.py
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

ANSWER = "你好！This reply is **streamed** into YunHu as it is written, token by token. 🚀"


def tokens(text: str) -> list[str]:
    """Split like an LLM would: short runs of characters."""
    return [text[i : i + 4] for i in range(0, len(text), 4)]


async def stream(bot: Bot, to: str) -> None:
    async with bot.stream(to=to, content_type="markdown") as s:
        for token in tokens(ANSWER):
            await s.write(token)
            await asyncio.sleep(0.05)  # the pace of a model producing tokens
    print("message:", json.dumps(s.message_info.to_dict() if s.message_info else None))


async def watch(emu: Emulator, started: float) -> None:
    """Print every chunk the emulator receives, as it arrives."""
    record = await emu.wait_for_stream()
    seen = 0
    while True:
        await emu.wait_until(lambda n=seen: len(record.chunks) > n or record.done)
        for chunk in record.chunks[seen:]:
            text = chunk.data.decode("utf-8", "replace")
            print(f"  +{(chunk.t - started) * 1000:7.1f} ms  {len(chunk.data):3d} B  {text!r}")
        seen = len(record.chunks)
        if record.done and seen == len(record.chunks):
            state = "completed" if record.completed else "cut off"
            print(f"stream {state} after {len(record.chunks)} chunks")
            return


async def main() -> None:
    if os.environ.get("YUNHU_TOKEN"):
        async with Bot() as bot:
            await stream(bot, os.environ.get("YUNHU_TO", "user:7058262"))
        return
    async with Emulator() as emu, Bot(emu.token, base_url=emu.base_url) as bot:
        print(f"emulator at {emu.url} (set YUNHU_TOKEN to stream to YunHu instead)")
        started = time.monotonic()
        watcher = asyncio.ensure_future(watch(emu, started))
        await stream(bot, "user:7058262")
        await watcher


if __name__ == "__main__":
    asyncio.run(main())
