"""Fixtures for the bot-app tests: an HTTP client and a BotApp factory against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.app._webhook import StartApp
from yunhu_stream.app import (
    BotApp,
)
from yunhu_stream.emulator import Emulator


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def start_app(emulator: Emulator) -> AsyncIterator[StartApp]:
    """Build a BotApp against the emulator, let the test register handlers, start it."""
    apps: list[BotApp] = []

    async def start(register: Callable[[BotApp], None], **options: Any) -> tuple[BotApp, str]:
        app = BotApp(emulator.token, base_url=emulator.base_url, **options)
        register(app)
        apps.append(app)
        return app, await app.start()

    yield start
    for app in apps:
        await app.stop()
