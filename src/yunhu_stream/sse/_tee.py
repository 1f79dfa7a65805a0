"""``tee()``: one async stream read once, delivered to n independent consumers."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

from .. import _validate as validate
from .._exceptions import StreamBrokenError
from .._log import get_logger

__all__ = ["TeeIterator", "tee"]

T = TypeVar("T")

log = get_logger("sse")

_Entry = tuple[Literal["item", "end", "error"], Any]


def tee(
    source: AsyncIterable[T], n: int = 2, *, max_buffer: int = 64,
    stall_timeout: float | None = None,
) -> tuple[TeeIterator[T], ...]:
    """Split ``source`` into ``n`` async iterators that each yield every item, in order.

    Buffering policy: the source is read by one background task (started by the
    first ``__anext__`` on any consumer), at most ``max_buffer`` items ahead of the
    slowest open consumer. When an open consumer holds ``max_buffer`` unread
    items, reading pauses until it takes one: a slow consumer slows the source
    and, through it, the other consumers; nothing is ever dropped and memory
    stays bounded. A consumer that is closed (``aclose()``, ``async with``, or
    garbage-collected) stops counting. When every consumer is closed, reading
    stops and the source is closed (its ``aclose()``).

    An exception raised by the source reaches every open consumer, after the
    items that came before it (the same exception object, raised in each).

    Args:
        source: Any async iterable; its ``__anext__`` always runs in the one
            background task, so generators holding task-bound state are safe.
        n: Number of consumers, 1 or more.
        max_buffer: Most unread items one consumer may hold, 1 or more.
        stall_timeout: Seconds the source may wait for a consumer holding
            ``max_buffer`` unread items; that consumer is then dropped (its next read
            raises ``StreamBrokenError``, logged as ``tee_reader_dropped``) and the
            others carry on. ``None`` (default): wait for it for ever.

    Returns:
        A tuple of ``n`` :class:`TeeIterator`.

    Raises:
        TypeError: ``source`` is not an async iterable.
        ValueError: ``n`` or ``max_buffer`` is not a positive int.
    """
    if not isinstance(source, AsyncIterable):
        raise TypeError(f"tee() takes an async iterable, not {type(source).__name__}")
    validate.integer("n", n, minimum=1)
    validate.integer("max_buffer", max_buffer, minimum=1)
    validate.optional_seconds("stall_timeout", stall_timeout)
    shared = _Shared(aiter(source), n, max_buffer, stall_timeout)
    return tuple(TeeIterator(shared, i) for i in range(n))


class _Shared:
    """The state every consumer of one tee shares. Holds no reference to the consumers."""

    def __init__(
        self, iterator: AsyncIterator[Any], n: int, max_buffer: int,
        stall_timeout: float | None = None,
    ) -> None:
        self.iterator = iterator
        self.max_buffer = max_buffer
        self.stall_timeout = stall_timeout
        self.dropped: set[int] = set()  # consumers that stalled: only their error is left
        self.queues: list[deque[_Entry] | None] = [deque() for _ in range(n)]
        self.ready = [asyncio.Event() for _ in range(n)]
        self.space = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.source_closed = False
        self.finished = False  # the reader task has stopped reading (end, error or cancel)

    def open_queues(self) -> list[deque[_Entry]]:
        return [q for i, q in enumerate(self.queues) if q is not None and i not in self.dropped]

    def start(self) -> None:
        if self.task is None and not self.source_closed:
            self.task = asyncio.get_running_loop().create_task(
                self._pump(), name="yunhu_stream.tee"
            )

    def push(self, entry: _Entry) -> None:
        for i, queue in enumerate(self.queues):
            if queue is not None and i not in self.dropped:
                queue.append(entry)
                self.ready[i].set()

    async def _pump(self) -> None:
        ended = False
        try:
            async for item in self.iterator:
                self.push(("item", item))
                while any(len(q) >= self.max_buffer for q in self.open_queues()):
                    self.space.clear()
                    if self.stall_timeout is None:
                        await self.space.wait()
                        continue
                    try:
                        await asyncio.wait_for(self.space.wait(), self.stall_timeout)
                    except asyncio.TimeoutError:
                        self.drop_stalled()
                if not self.open_queues():
                    return
            ended = True
            self.push(("end", None))
        except Exception as exc:
            ended = True
            self.push(("error", exc))
        finally:
            self.finished = True
            if not ended and self.open_queues():
                # Cancelled from outside (loop shutdown): do not leave consumers waiting.
                self.push(("error", StreamBrokenError("tee: the source reader was cancelled")))
            await self.close_source()

    def drop_stalled(self) -> None:
        """Drop every consumer still holding ``max_buffer`` unread items."""
        for i, queue in enumerate(self.queues):
            if queue is None or i in self.dropped or len(queue) < self.max_buffer:
                continue
            log.warning("tee_reader_dropped", consumer=i + 1, stall_timeout_s=self.stall_timeout)
            self.dropped.add(i)
            self.queues[i] = deque([("error", StreamBrokenError(
                f"tee: consumer {i + 1} held {self.max_buffer} unread items for "
                f"{self.stall_timeout:g} s and was dropped"))])
            self.ready[i].set()

    async def close_source(self) -> None:
        if self.source_closed:
            return
        self.source_closed = True
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            await aclose()

    def detach(self, index: int) -> bool:
        """Forget consumer ``index``. Returns True if it was the last open one."""
        if self.queues[index] is None:
            return False
        self.queues[index] = None
        self.space.set()
        if self.open_queues():
            return False
        if self.task is not None and not self.finished:
            self.task.cancel()
        return True


class TeeIterator(AsyncIterator[T], Generic[T]):
    """One consumer of :func:`tee`. Close it when you stop reading early.

    Supports ``async with`` (closing on exit) and ``aclose()``, which is idempotent.
    After the end, an error or ``aclose()``, iteration stops (``StopAsyncIteration``).
    """

    def __init__(self, shared: _Shared, index: int) -> None:
        self._shared = shared
        self._index = index
        # A consumer dropped without aclose() must not hold the others back forever.
        weakref.finalize(self, shared.detach, index).atexit = False

    def __repr__(self) -> str:
        state = (
            "closed" if self._shared.queues[self._index] is None else f"{self.buffered} buffered"
        )
        return f"<TeeIterator {self._index + 1} of {len(self._shared.queues)}: {state}>"

    @property
    def buffered(self) -> int:
        """Items read from the source and not yet taken by this consumer."""
        queue = self._shared.queues[self._index]
        return len(queue) if queue is not None else 0

    def __aiter__(self) -> TeeIterator[T]:
        return self

    async def __anext__(self) -> T:
        shared = self._shared
        queue = shared.queues[self._index]
        if queue is None:
            raise StopAsyncIteration
        shared.start()
        ready = shared.ready[self._index]
        while not queue:
            ready.clear()
            await ready.wait()
        kind, value = queue.popleft()
        shared.space.set()
        if kind == "item":
            return value  # type: ignore[no-any-return]  # items are the source's T
        shared.detach(self._index)
        if kind == "error":
            raise value
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop consuming; the last consumer to close closes the source and waits for it."""
        shared = self._shared
        if not shared.detach(self._index):
            return
        if shared.task is None:
            await shared.close_source()
        else:
            await asyncio.wait({shared.task})

    async def __aenter__(self) -> TeeIterator[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
