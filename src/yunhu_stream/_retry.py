"""Retries with full-jitter exponential backoff, bounded by attempts and total wait."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from ._exceptions import RateLimitedError, YunhuError
from ._log import Logger


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and for how long in all, one request may be tried again.

    Attributes:
        attempts: Tries in all, the first included.
        max_wait: Total seconds of backoff the retries of one request may spend.
        base: The first backoff's upper bound, in seconds; it doubles each retry.
        cap: The largest upper bound of one backoff.
    """

    attempts: int
    max_wait: float
    base: float = 0.2
    cap: float = 5.0

    def budget(self) -> RetryBudget:
        """A fresh budget for one request."""
        return RetryBudget(self)


class RetryBudget:
    """What is left of one request's retries (see :class:`RetryPolicy`)."""

    __slots__ = ("_policy", "attempt", "waited")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.attempt = 0  #: retries made so far
        self.waited = 0.0  #: seconds of backoff spent so far

    async def backoff(self, exc: YunhuError, log: Logger, event: str) -> bool:
        """Sleep before the next try and return True; or False (at once) when spent.

        A :class:`~yunhu_stream.errors.RateLimitedError` with ``retry_after`` waits
        at least that long.
        """
        policy = self._policy
        delay = backoff_delay(self.attempt, policy.base, policy.cap)
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            delay = max(delay, exc.retry_after)
        if self.attempt + 1 >= policy.attempts or self.waited + delay > policy.max_wait:
            return False
        self.attempt += 1
        self.waited += delay
        log.info(event, attempt=self.attempt, delay_s=round(delay, 3), error=type(exc).__name__)
        await asyncio.sleep(delay)
        return True
