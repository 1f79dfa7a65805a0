"""pytest plugin: an ``emulator`` fixture for testing YunHu bots.

Installed with the package (entry point ``pytest11``), so any project that depends on
``yunhu-stream`` gets it. Async tests need anyio's pytest plugin on the asyncio backend::

    import pytest
    from yunhu_stream import Bot

    pytestmark = pytest.mark.anyio

    async def test_reply(emulator):
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.send("group:1", "hi")
        assert emulator.chat("group", "1")[-1].text == "hi"
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .emulator import Emulator

__all__ = ["emulator"]


@pytest.fixture
async def emulator(anyio_backend: object) -> AsyncIterator[Emulator]:
    """A started :class:`~yunhu_stream.emulator.Emulator` with a random token, closed after."""
    name = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]  # type: ignore[index]
    if name != "asyncio":
        pytest.skip(f"the YunHu emulator runs on asyncio (aiohttp), not {name!r}")
    async with Emulator() as emu:
        yield emu
