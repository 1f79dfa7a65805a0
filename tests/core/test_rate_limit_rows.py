"""docs/reliability.md, "Rate limits": 100 replies started in the same instant, with the Bot's
defaults, against a YunHu that answers 1007 beyond 10 requests per second per endpoint."""

from __future__ import annotations

import asyncio

import pytest

from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


async def test_100_replies_started_at_once_at_10_per_second_get_no_1007() -> None:
    """Every reply arrives whole and the emulator never had to refuse one (it would answer
    1007 to the 11th request in any second); the Bot's own limiter spread them out."""
    async with Emulator(rate_limit=10) as emu, Bot(emu.token, base_url=emu.base_url) as bot:

        async def reply(i: int) -> None:
            async with bot.stream(to=f"user:{i}") as s:
                await s.write(f"reply {i}")
                await s.write(" done")

        await asyncio.gather(*(reply(i) for i in range(100)))
        assert emu.rate_limited == 0
        texts = sorted(m.text for key in emu.chats() for m in emu.chat(*key))
        assert texts == sorted(f"reply {i} done" for i in range(100))
