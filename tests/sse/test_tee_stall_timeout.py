"""tee()'s stall_timeout: a consumer that stops reading is dropped and told; without one,
a slow consumer only slows the others (the never-reading browser behind sse_response is in
test_slow_clients.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest
from structlog.testing import capture_logs

from yunhu_stream.errors import StreamBrokenError
from yunhu_stream.sse import tee

pytestmark = pytest.mark.anyio


async def _drain(items: AsyncIterator[int]) -> list[int]:
    return [x async for x in items]


class TestTeeStallTimeout:
    async def test_a_consumer_that_stops_reading_is_dropped_and_told(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for i in range(100):
                yield i

        fast, stuck = tee(numbers(), 2, max_buffer=4, stall_timeout=0.2)
        assert await anext(stuck) == 0  # reads once, then stops
        with capture_logs() as logs, anyio.fail_after(30):
            got = [item async for item in fast]
        assert got == list(range(100))
        with pytest.raises(StreamBrokenError, match="dropped"):
            await anext(stuck)
        assert [e["consumer"] for e in logs if e["event"] == "tee_reader_dropped"] == [2]

    async def test_without_a_stall_timeout_a_slow_consumer_only_slows(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for i in range(20):
                yield i

        a, b = tee(numbers(), 2, max_buffer=2)
        with anyio.fail_after(30):
            first = [await anext(a) for _ in range(2)]  # a runs max_buffer ahead of b
            assert first == [0, 1] and b.buffered == 2
            with anyio.move_on_after(0.3) as waited:
                await anext(a)  # no further: the source waits for b
            assert waited.cancelled_caught
            rest_a, all_b = await asyncio.gather(_drain(a), _drain(b))
            assert rest_a == list(range(2, 20)) and all_b == list(range(20))
