"""Client-side rate limiting: at most N requests per second to each endpoint."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Slot:
    """One request's place in a limiter's window.

    The slot is stamped when it is granted; :meth:`sent` stamps it again when the
    request's bytes actually leave (a stream's first chunk), so a slow connect
    cannot let two windows' worth of requests arrive within one.
    """

    __slots__ = ("_on_sent", "at")

    def __init__(self, at: float, on_sent: Callable[[], None] | None = None) -> None:
        self.at = at
        self._on_sent = on_sent  # a shared limiter re-stamps its own copy of the slot

    def sent(self) -> None:
        """The request leaves now: count it from here."""
        self.at = asyncio.get_running_loop().time()
        if self._on_sent is not None:
            self._on_sent()


class RateLimiter:
    """At most ``rate`` requests in any window of ``per`` seconds, first come first served.

    A sliding window (not a token bucket), so no burst exceeds what the server
    allows in any one-second window, whichever way it counts. The window carries
    a margin of 10%, so scheduling jitter cannot squeeze two windows' worth of
    arrivals into one.
    """

    MARGIN = 0.1  # 10% of a one-second window: covers loopback jitter under load

    def __init__(self, rate: float, per: float = 1.0) -> None:
        self._n = max(1, int(rate))
        self._per = per * self._n / rate + self.MARGIN
        self._slots: deque[Slot] = deque(maxlen=self._n)
        self._lock = asyncio.Lock()

    async def acquire(self) -> Slot:
        """Wait until one more request fits in the window, then count it."""
        loop = asyncio.get_running_loop()
        if self._lock.locked() or self._wait(loop.time()) > 0:
            async with self._lock:  # first come, first served
                while True:
                    wait = self._wait(loop.time())
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                return self._take(loop.time())
        return self._take(loop.time())  # room and nobody waiting: no lock round trip

    def _wait(self, now: float) -> float:
        """Seconds until the window has room (<= 0: it has room now)."""
        if len(self._slots) < self._n:
            return 0.0
        return self._slots[0].at + self._per - now

    def _take(self, now: float) -> Slot:
        slot = Slot(now)
        self._slots.append(slot)
        return slot


class SharedLimiter(Protocol):
    """A limiter several processes share (``yunhu_stream.redis``): the seam of :class:`Limits`."""

    async def acquire(self, endpoint: str, rate: float, local: RateLimiter) -> Slot:
        """Wait for room on ``endpoint`` in the shared window; when the shared window
        cannot be reached, wait on ``local`` instead (a reply is never lost to it)."""


class Limits:
    """One :class:`RateLimiter` per endpoint, shared by every call and stream of a Bot.

    Args:
        rate: Requests per second per endpoint; ``None`` turns limiting off.
        shared: A limiter shared with other processes; the local limiters are then
            only its fallback.
    """

    def __init__(self, rate: float | None, shared: SharedLimiter | None = None) -> None:
        self.rate = rate
        self.shared = shared
        self._limiters: dict[str, RateLimiter] = {}

    async def acquire(self, endpoint: str) -> Slot | None:
        """Wait for room on ``endpoint``; the granted slot, or None when limiting is off."""
        if self.rate is None:
            return None
        limiter = self._limiters.get(endpoint)
        if limiter is None:
            limiter = self._limiters[endpoint] = RateLimiter(self.rate)
        if self.shared is not None:
            return await self.shared.acquire(endpoint, self.rate, limiter)
        return await limiter.acquire()
