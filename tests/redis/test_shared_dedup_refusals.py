"""Shared dedup and refusals: an event the webhook refused (busy) is not taken for seen."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from tests.redis._support import RedisServer, redis_server
from yunhu_stream import Bot
from yunhu_stream.app import Dispatcher
from yunhu_stream.emulator import Emulator
from yunhu_stream.events import MessageEvent, parse_event
from yunhu_stream.testing import message_event

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def test_a_busy_refusal_lets_the_redelivery_run(
    redis: RedisServer, emulator: Emulator
) -> None:
    release = asyncio.Event()
    dp = Dispatcher(max_handlers=1)

    @dp.on_message()
    async def slow(event: MessageEvent, bot: Bot) -> None:
        await release.wait()

    def event(event_id: str) -> MessageEvent:
        body = json.dumps(message_event("hi", chat="group:1", event_id=event_id)).encode()
        parsed = parse_event(body)
        assert isinstance(parsed, MessageEvent)
        return parsed

    weird = "\ud800-lone"  # a lone surrogate: Redis keys are digests, so it works
    async with Bot(emulator.token, base_url=emulator.base_url, redis=redis.url) as bot:
        assert await dp.handle(event("first"), bot) == "accepted"
        assert await dp.handle(event(weird), bot) == "busy"
        release.set()
        await emulator.wait_until(lambda: dp.stats.running == 0, what="handler done")
        assert await dp.handle(event(weird), bot) == "accepted"  # not a duplicate
        assert await dp.handle(event(weird), bot) == "duplicate"
        await dp.aclose()
