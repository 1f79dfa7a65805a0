"""Faults a test can switch on: one rule list, consumed request by request.

Each helper on :class:`Faults` appends a :class:`Fault` rule. Every incoming request
takes the first active rule for its endpoint (using up one of its ``times``), and the
request handler acts on that rule's ``kind`` at the right moment: before reading the
body, while reading it, or after the request took effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .. import _validate as validate
from .._exceptions import ConfigurationError
from ._store import DEFAULT_WAIT, Changes

ENDPOINTS: tuple[str, ...] = (
    "send-stream", "send", "batch_send", "edit", "recall", "messages",
    "board", "board-all", "board-dismiss", "board-all-dismiss",
    "image/upload", "video/upload", "file/upload",
    "web/bot-info", "web/user-homepage", "web/group-info",
)
"""Every endpoint name a fault rule (and ``emu.requests``) knows."""
When = Literal["before_body", "after_body"]
WHENS: tuple[str, ...] = ("before_body", "after_body")
FaultKind = Literal[
    "reject", "http_status", "non_json", "drop_after", "never_answer", "slow_read", "stall"
]

NON_JSON_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(eq=False)
class Fault:
    """One armed fault rule; returned by every :class:`Faults` helper.

    Attributes:
        kind: What it does (``reject``, ``http_status``, ``non_json``, ``drop_after``,
            ``never_answer``, ``slow_read``, ``stall``).
        endpoints: The endpoints it applies to.
        remaining: How many more requests it applies to (None: every request).
        hits: How many requests it has been applied to so far.
    """

    kind: FaultKind
    endpoints: frozenset[str]
    remaining: int | None
    changes: Changes = field(repr=False)
    when: When = "before_body"
    code: int = 1007
    msg: str = ""
    status: int = 200
    n_bytes: int = 0
    delay: float = 0.0
    seconds: float | None = None
    hits: int = 0
    cancelled: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def active(self) -> bool:
        """True while it will still apply to new requests."""
        return not self.cancelled and (self.remaining is None or self.remaining > 0)

    def cancel(self) -> None:
        """Stop applying to new requests (requests already hit keep their fault)."""
        self.cancelled = True

    def release(self) -> None:
        """End a ``stall`` or ``never_answer`` now, for requests already hit and later ones.

        A released stall resumes reading; a released never-answer drops the connection.
        """
        self.released.set()
        self.changes.notify()

    async def wait_hit(self, n: int = 1, *, timeout: float | None = DEFAULT_WAIT) -> None:
        """Wait until this fault has been applied to ``n`` requests.

        Raises:
            TimeoutError: if that does not happen in time.
        """
        await self.changes.wait_until(
            lambda: self.hits >= n, timeout=timeout, what=f"fault {self.kind} to hit {n} times"
        )


def _times(value: int | None) -> int | None:
    return validate.optional_integer("times", value, minimum=1)


def _endpoints(value: str | Iterable[str]) -> frozenset[str]:
    names = [value] if isinstance(value, str) else list(value)
    if names == ["*"]:
        return frozenset(ENDPOINTS)
    bad = [n for n in names if n not in ENDPOINTS]
    if bad or not names:
        raise ConfigurationError(
            f"endpoint must be one of {', '.join(ENDPOINTS)}, '*' or an iterable of them, "
            f"not {value!r}"
        )
    return frozenset(names)


def _when(value: str) -> When:
    checked: str = validate.choice("when", value, WHENS)
    return checked  # type: ignore[return-value]  # one of WHENS


def _non_negative(name: str, value: float | None, *, integer: bool = False) -> None:
    if integer:
        validate.integer(name, value, minimum=0)
    else:
        validate.seconds(name, value, zero=True)


class Faults:
    """The fault rules of one emulator (``emu.faults``).

    Every helper takes ``times`` (how many of the next requests it applies to; ``None``
    means every request until :meth:`clear` or :meth:`Fault.cancel`) and ``endpoint``
    (a name from :data:`ENDPOINTS` such as ``send-stream``, ``send``, ``edit``,
    ``recall``, ``messages``, ``image/upload``, an iterable of them, or ``"*"``; default
    ``send-stream``). Body faults (``drop_after``, ``slow_read``, ``stall``) act on the
    endpoints that read a raw body, not on uploads or the web API stand-ins. A request
    gets at most one fault: the first active rule, in the order they were added.
    """

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self._rules: list[Fault] = []

    @property
    def rules(self) -> list[Fault]:
        """The rules still able to apply, oldest first."""
        return [r for r in self._rules if r.active]

    def take(self, endpoint: str) -> Fault | None:
        """Consume and return the fault for one request to ``endpoint``, if any."""
        for rule in self._rules:
            if rule.active and endpoint in rule.endpoints:
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.hits += 1
                self._changes.notify()
                return rule
        return None

    def clear(self) -> None:
        """Cancel every rule and release every stalled or unanswered request."""
        for rule in self._rules:
            rule.cancel()
            rule.release()
        self._rules.clear()

    def _add(
        self, kind: FaultKind, times: int | None, endpoint: str | Iterable[str], **params: object
    ) -> Fault:
        rule = Fault(kind, _endpoints(endpoint), _times(times), self._changes, **params)  # type: ignore[arg-type]
        self._rules.append(rule)
        return rule

    def reject(
        self,
        code: int = 1007,
        msg: str | None = None,
        *,
        when: When = "before_body",
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Answer HTTP 200 with the envelope ``{"code": code, "msg": msg}``.

        ``before_body``: answered before reading the body (nothing takes effect).
        ``after_body``: the request takes effect first (a streamed or sent message
        exists in the chat), then this envelope is answered instead of success.
        """
        if validate.integer("code", code, minimum=-(2**31)) == 1:
            raise validate.fail("code", "an integer other than 1 (success)", code)
        text = msg if msg is not None else _DEFAULT_MSGS.get(code, "error")
        return self._add("reject", times, endpoint, code=code, msg=text, when=_when(when))

    def reject_early(
        self,
        code: int = 1007,
        msg: str | None = None,
        *,
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Answer ``code`` before reading the body (see :meth:`reject`)."""
        return self.reject(code, msg, when="before_body", times=times, endpoint=endpoint)

    def rate_limit(self, first: int = 1, *, endpoint: str | Iterable[str] = "send-stream") -> Fault:
        """Answer ``1007`` (frequency limit) to the next ``first`` requests, before their body."""
        return self.reject(1007, when="before_body", times=first, endpoint=endpoint)

    def http_status(
        self,
        status: int = 503,
        *,
        when: When = "before_body",
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Answer HTTP ``status`` with a short plain-text body instead of the envelope."""
        validate.integer("status", status, minimum=400, maximum=599)
        return self._add("http_status", times, endpoint, status=status, when=_when(when))

    def non_json(
        self,
        *,
        when: When = "after_body",
        status: int = 200,
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Answer an HTML page (not JSON) with HTTP ``status``, like a misbehaving proxy."""
        validate.integer("status", status, minimum=200, maximum=599)
        return self._add("non_json", times, endpoint, status=status, when=_when(when))

    def drop_after(
        self, n_bytes: int, *, times: int | None = 1, endpoint: str | Iterable[str] = "send-stream"
    ) -> Fault:
        """Close the connection once ``n_bytes`` of body arrived (0: before any).

        Exactly the first ``n_bytes`` count as received, even inside a UTF-8 sequence;
        a streamed message keeps the text they hold. Nothing is answered.
        """
        _non_negative("n_bytes", n_bytes, integer=True)
        return self._add("drop_after", times, endpoint, n_bytes=n_bytes)

    def never_answer(
        self, *, times: int | None = 1, endpoint: str | Iterable[str] = "send-stream"
    ) -> Fault:
        """Read the whole body and let the request take effect, then never answer.

        The connection stays open until :meth:`Fault.release`, :meth:`clear`, or the
        emulator closes or restarts; then it is dropped without a response.
        """
        return self._add("never_answer", times, endpoint)

    def slow_read(
        self,
        delay_per_chunk: float,
        *,
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Pause ``delay_per_chunk`` seconds after reading each body piece."""
        _non_negative("delay_per_chunk", delay_per_chunk)
        return self._add("slow_read", times, endpoint, delay=float(delay_per_chunk))

    def stall(
        self,
        *,
        after_bytes: int = 0,
        seconds: float | None = None,
        times: int | None = 1,
        endpoint: str | Iterable[str] = "send-stream",
    ) -> Fault:
        """Stop reading the body once ``after_bytes`` arrived.

        Reading resumes after ``seconds``, or, when ``seconds`` is None, once the fault
        is released (:meth:`Fault.release`, :meth:`clear`, emulator close or restart;
        on close or restart the connection is dropped). While stalled, TCP flow control
        pushes back on the client.
        """
        _non_negative("after_bytes", after_bytes, integer=True)
        if seconds is not None:
            _non_negative("seconds", seconds)
        return self._add("stall", times, endpoint, n_bytes=after_bytes, seconds=seconds)


_DEFAULT_MSGS = {
    1002: "参数错误",
    1003: "无权限",
    1004: "机器人已被封禁",
    1005: "会话已被封禁",
    1007: "请求太频繁",
    -1: "请求失败",
}
