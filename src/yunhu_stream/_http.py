"""The one boundary between aiohttp and the library: envelopes, error translation, redaction."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import deque
from typing import Any

import aiohttp

from . import errors
from ._types import Delivery, MessageInfo

BODY_EXCERPT_CHARS = 300

_TOKEN_IN_URL = re.compile(r"(token=)[^&\s'\"]*")


def redact(text: str, token: str | None = None) -> str:
    """Replace every ``token=…`` query value (and the literal token, if given) with ``***``."""
    text = _TOKEN_IN_URL.sub(r"\1***", text)
    if token:
        text = text.replace(token, "***")
    return text


def parse_envelope(
    status: int, body: bytes, endpoint: str, token: str, *, text: str | None = None
) -> Any:
    """Return ``data`` from a YunHu envelope, or raise the error it describes.

    Raises:
        HTTPStatusError: status >= 300 (redirects are not followed: a moved API is a
            configuration problem to surface, not to chase with the token attached).
        InvalidResponseError: the body is not a JSON object with an integer ``code``.
        APIError: ``code`` is not 1 (a subclass for each documented code).
    """
    # Error pages sometimes echo the request URL, token and all.
    excerpt = redact(body[:BODY_EXCERPT_CHARS].decode("utf-8", "replace"), token)
    if status >= 300:
        raise errors.HTTPStatusError(status=status, body=excerpt, endpoint=endpoint, text=text)
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or type(envelope.get("code")) is not int:
        raise errors.InvalidResponseError(
            status=status, body=excerpt, endpoint=endpoint, text=text
        )
    code: int = envelope["code"]
    if code != 1:
        msg = envelope.get("msg", envelope.get("message", ""))
        raise errors.api_error(code, redact(str(msg), token), endpoint, text=text)
    return envelope.get("data")


def translate(
    exc: BaseException, endpoint: str, token: str, *, text: str | None = None
) -> errors.TransportError:
    """Turn an aiohttp/OS/timeout exception into the library's TransportError.

    The caller raises the result ``from exc``; when the original's message would
    reveal the token, the caller must not chain it (see :func:`chainable`).
    """
    detail = redact(f"{type(exc).__name__}: {exc}", token)
    if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError)) or (
        isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, aiohttp.ClientError)
    ):
        cls: type[errors.TransportError] = errors.ConnectTimeoutError
        if isinstance(exc, aiohttp.SocketTimeoutError):
            cls = errors.ResponseTimeoutError
        return cls(f"{endpoint}: timed out ({detail})", endpoint=endpoint, text=text)
    return errors.TransportError(f"{endpoint}: {detail}", endpoint=endpoint, text=text)


def chainable(exc: BaseException, token: str) -> BaseException | None:
    """``exc`` if it is safe to chain (its text does not hold the token), else ``None``."""
    return None if token and token in f"{exc!r} {exc}" else exc


TRANSPORT_EXCEPTIONS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


class RateLimiter:
    """At most ``rate`` requests in any window of ``per`` seconds, first come first served.

    A sliding window (not a token bucket), so no burst exceeds what the server
    allows in any one-second window, whichever way it counts. A request's slot
    is stamped again when its bytes actually leave (:meth:`Slot.sent`), and the
    window carries a margin of 10%, so connection set-up time and scheduling
    jitter cannot squeeze two windows' worth of arrivals into one.
    """

    MARGIN = 0.1  # 10% of a one-second window: covers loopback jitter under load

    def __init__(self, rate: float, per: float = 1.0) -> None:
        self._n = max(1, int(rate))
        self._per = per * self._n / rate + self.MARGIN
        self._slots: deque[list[float]] = deque(maxlen=self._n)
        self._lock = asyncio.Lock()

    async def acquire(self) -> list[float]:
        """Wait until one more request fits in the window, then count it.

        Returns:
            The request's slot: a one-item list holding its send time, which the
            caller may move later by assigning ``slot[0] = loop.time()``.
        """
        async with self._lock:
            loop = asyncio.get_running_loop()
            while len(self._slots) == self._n:
                wait = self._slots[0][0] + self._per - loop.time()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            slot = [loop.time()]
            self._slots.append(slot)
            return slot


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))  # noqa: S311 - jitter, not crypto


def message_info(data: Any, endpoint: str, delivery: Delivery) -> MessageInfo:
    """Read ``data.messageInfo``; a malformed one is an InvalidResponseError."""
    try:
        return MessageInfo.from_data(data, delivery)
    except (KeyError, TypeError) as exc:
        raise errors.InvalidResponseError(
            status=200, body=str(data)[:BODY_EXCERPT_CHARS], endpoint=endpoint
        ) from exc
