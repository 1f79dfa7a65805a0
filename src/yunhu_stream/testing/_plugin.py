"""The pytest plugin: the ``emulator`` fixture (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..emulator import Emulator


@pytest.fixture
async def emulator(anyio_backend: object) -> AsyncIterator[Emulator]:
    """A started :class:`~yunhu_stream.emulator.Emulator` with a random token, closed after."""
    name = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]  # type: ignore[index]
    if name != "asyncio":
        pytest.skip(f"the YunHu emulator runs on asyncio (aiohttp), not {name!r}")
    async with Emulator() as emu:
        yield emu
