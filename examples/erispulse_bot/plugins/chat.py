"""Answer every message with a streamed reply, piece by piece."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ErisPulse import BaseModule, message
from ErisPulse.loaders import ModuleLoadStrategy

from yunhu_stream.integrations.erispulse import stream


async def generate_answer(question: str) -> AsyncIterator[str]:
    """Stands in for a language model: yields an answer a few characters at a time."""
    answer = f"你说的是「{question}」。这条回复是一段一段流式写出来的，不是一次发完的。"
    for start in range(0, len(answer), 6):
        await asyncio.sleep(0.05)  # a model takes time per token
        yield answer[start:start + 6]


class Main(BaseModule):
    def __init__(self, sdk: Any = None) -> None:
        self.sdk = sdk

    @staticmethod
    def get_load_strategy() -> ModuleLoadStrategy:
        return ModuleLoadStrategy(lazy_load=False)

    async def on_load(self, event: dict[str, Any]) -> bool:
        @message.on_message()
        async def answer(event: Any) -> None:
            # Group messages are answered in the group, private ones to the sender.
            async with stream(event) as s:
                await s.pipe(generate_answer(event.get_text()))

        return True

    async def on_unload(self, event: dict[str, Any]) -> bool:
        return True
