"""tee() gives every consumer every item, in order, with bounded buffering."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yunhu_stream.errors import StreamBrokenError
from yunhu_stream.sse import TeeIterator, tee

pytestmark = pytest.mark.anyio


class Source:
    """An async generator source that records how far it was read and whether it closed."""

    def __init__(self, items: list[object], *, fail_with: Exception | None = None) -> None:
        self.items = items
        self.fail_with = fail_with
        self.pulled = 0
        self.closed = False
        self.tasks: set[asyncio.Task[object] | None] = set()

    async def __call__(self) -> AsyncIterator[object]:
        try:
            for item in self.items:
                self.tasks.add(asyncio.current_task())
                await checkpoint()
                self.pulled += 1
                yield item
            if self.fail_with is not None:
                raise self.fail_with
        finally:
            self.closed = True


async def drain(it: TeeIterator[object]) -> list[object]:
    return [item async for item in it]


class TestDelivery:
    async def test_every_consumer_gets_every_item_in_order(self) -> None:
        """Three consumers read concurrently and each sees the whole sequence."""
        source = Source(list(range(200)))
        consumers = tee(source(), 3, max_buffer=4)
        results: list[list[object]] = [[], [], []]

        async def run(i: int) -> None:
            results[i] = await drain(consumers[i])

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(run, i)
        assert results == [list(range(200))] * 3
        assert source.closed

    async def test_source_is_read_in_one_task(self) -> None:
        """Every __anext__ of the source runs in the same task, whoever asks."""
        source = Source(list(range(20)))
        a, b = tee(source(), 2, max_buffer=2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, a)
            tg.start_soon(drain, b)
        assert len(source.tasks) == 1

    async def test_source_error_reaches_every_consumer_after_items(self) -> None:
        """An exception from the source is raised in each consumer after the items before it."""
        boom = ValueError("model failed")
        a, b = tee(Source(["x", "y"], fail_with=boom)(), 2)
        for consumer in (a, b):
            got = []
            with pytest.raises(ValueError, match="model failed") as info:
                async for item in consumer:
                    got.append(item)
            assert got == ["x", "y"]
            assert info.value is boom
            with pytest.raises(StopAsyncIteration):
                await anext(consumer)

    async def test_cancelled_read_loses_nothing(self) -> None:
        """Cancelling a consumer's pending read neither loses the item nor breaks the source."""
        gate = asyncio.Event()

        async def slow() -> AsyncIterator[str]:
            await gate.wait()
            yield "only"

        a, b = tee(slow(), 2)
        with anyio.move_on_after(0):
            await anext(a)  # cancelled while the source is still waiting
        gate.set()
        assert await drain(a) == ["only"]
        assert await drain(b) == ["only"]

    @given(
        items=st.lists(st.integers(), max_size=30),
        schedule=st.lists(st.integers(0, 2), max_size=120),
        max_buffer=st.integers(1, 5),
    )
    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    async def test_any_read_order(
        self, items: list[int], schedule: list[int], max_buffer: int
    ) -> None:
        """Whatever order consumers read in, each gets the items in order, buffers stay bounded."""
        consumers = tee(Source(list(items))(), 3, max_buffer=max_buffer)
        got: list[list[object]] = [[], [], []]
        ended = [False, False, False]
        with anyio.fail_after(10):
            for i in schedule:
                others_full = any(
                    c.buffered >= max_buffer for j, c in enumerate(consumers) if j != i
                )
                if ended[i] or (consumers[i].buffered == 0 and others_full):
                    continue  # this read would wait for a slower consumer: not in this order
                try:
                    got[i].append(await anext(consumers[i]))
                except StopAsyncIteration:
                    ended[i] = True
                assert all(c.buffered <= max_buffer for c in consumers)

            async def finish(i: int) -> None:
                got[i].extend(await drain(consumers[i]))

            async with anyio.create_task_group() as tg:
                for i in range(3):
                    tg.start_soon(finish, i)
        assert got == [items] * 3


class TestBackpressure:
    async def test_reading_pauses_at_max_buffer(self) -> None:
        """With one consumer idle, the source is read exactly max_buffer items ahead."""
        source = Source(list(range(100)))
        fast, idle = tee(source(), 2, max_buffer=3)
        assert [await anext(fast) for _ in range(3)] == [0, 1, 2]
        await wait_all_tasks_blocked()
        assert source.pulled == 3
        assert idle.buffered == 3
        assert await anext(idle) == 0
        await wait_all_tasks_blocked()
        assert source.pulled == 4
        await fast.aclose()
        await idle.aclose()

    async def test_closed_consumer_no_longer_holds_back(self) -> None:
        """After one consumer closes, the other reads to the end."""
        source = Source(list(range(50)))
        a, b = tee(source(), 2, max_buffer=2)
        await b.aclose()
        assert await drain(a) == list(range(50))
        assert repr(b).endswith("closed>")

    async def test_dropped_consumer_no_longer_holds_back(self) -> None:
        """A consumer garbage-collected without aclose() stops counting."""
        source = Source(list(range(50)))
        a, b = tee(source(), 2, max_buffer=2)
        del b
        gc.collect()
        assert await drain(a) == list(range(50))


class TestClosing:
    async def test_closing_all_consumers_closes_the_source(self) -> None:
        """When the last consumer closes, the source's aclose() runs before aclose() returns."""
        source = Source(list(range(100)))
        a, b = tee(source(), 2, max_buffer=2)
        await anext(a)
        await a.aclose()
        assert not source.closed
        async with b:
            await anext(b)
        assert source.closed
        with pytest.raises(StopAsyncIteration):
            await anext(b)

    async def test_closing_unstarted_tee_closes_the_source(self) -> None:
        """Consumers closed before any read still close the source iterator."""
        closed = []

        class Iterator:
            def __aiter__(self) -> Iterator:
                return self

            async def __anext__(self) -> int:
                return 1

            async def aclose(self) -> None:
                closed.append(True)

        (only,) = tee(Iterator(), 1)
        await only.aclose()
        await only.aclose()
        assert closed == [True]

    async def test_cancelled_reader_task_fails_consumers_instead_of_hanging(self) -> None:
        """If the reader task is cancelled from outside, waiting consumers get StreamBrokenError."""

        async def never() -> AsyncIterator[int]:
            await asyncio.Event().wait()
            yield 1

        a, b = tee(never(), 2)
        waiting = asyncio.ensure_future(anext(b))  # starts the reader, then waits
        await wait_all_tasks_blocked()
        reader = next(t for t in asyncio.all_tasks() if t.get_name() == "yunhu_stream.tee")
        reader.cancel()
        for pending in (anext(a), waiting):
            with pytest.raises(StreamBrokenError, match="reader was cancelled"):
                await pending


class TestArguments:
    @pytest.mark.parametrize(("n", "max_buffer"), [(0, 1), (2, 0), (True, 1), (2, 1.5)])
    def test_bad_sizes(self, n: object, max_buffer: object) -> None:
        """n and max_buffer must be positive ints."""
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            tee(Source([])(), n, max_buffer=max_buffer)  # type: ignore[arg-type]

    def test_not_async_iterable(self) -> None:
        """A plain list is refused with TypeError."""
        with pytest.raises(TypeError, match="async iterable"):
            tee([1, 2], 2)  # type: ignore[arg-type]
