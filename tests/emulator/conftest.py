"""Fixtures of the emulator tests: a fresh emulator and a raw aiohttp client session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from yunhu_stream.emulator import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
