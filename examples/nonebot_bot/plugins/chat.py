"""Answer every text message with a streamed reply, piece by piece."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nonebot import on_message, require
from nonebot.adapters.yunhu import Bot, MessageEvent

require("yunhu_stream.integrations.nonebot")
from yunhu_stream.integrations.nonebot import stream  # noqa: E402 - after require()

chat = on_message(priority=10)


async def generate_answer(question: str) -> AsyncIterator[str]:
    """Stands in for a language model: yields an answer a few characters at a time."""
    answer = f"你说的是「{question}」。这条回复是一段一段流式写出来的，不是一次发完的。"
    for start in range(0, len(answer), 6):
        await asyncio.sleep(0.05)  # a model takes time per token
        yield answer[start:start + 6]


@chat.handle()
async def _(bot: Bot, event: MessageEvent) -> None:
    # Group messages are answered in the group, private ones to the sender.
    async with stream(bot, event) as s:
        await s.pipe(generate_answer(event.get_plaintext()))
