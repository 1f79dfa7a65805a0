"""Connection limits for the webhook server: slow or idle peers cannot starve YunHu's.

aiohttp holds a connection whose request head trickles in until its keep-alive timeout
(an hour), and a handler reading a trickling body for ever. :class:`ConnectionGuard`
wraps the server's protocol factory (the public ``web.Server`` callable) and

* closes a connection that has not sent a whole request (head and body) within
  ``header_timeout`` seconds of connecting (the body's own bound is the webhook's
  ``body_timeout``);
* keeps at most ``max_connections``: when a new one arrives at the cap, the oldest
  connection that is not running a handler (idle, or still sending its request) is
  closed to make room, so a legitimate webhook is always let in; if every connection
  is running a handler, the new one is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .._log import get_logger

log = get_logger("app")


class _Guarded(asyncio.Protocol):
    """One connection: forwards everything to aiohttp's protocol, and is watched."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.busy = 0  # handlers running on this connection
        self.served = False  # a request got past its body
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.guard.opened(self)
        self.timer = asyncio.get_running_loop().call_later(
            self.guard.header_timeout, self._too_slow)
        self.inner.connection_made(transport)

    def _too_slow(self) -> None:
        if not self.served and not self.busy and self.transport is not None:
            self.guard.evicted += 1
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.guard.closed(self)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class ConnectionGuard:
    """The protocol factory to serve with (see the module docstring)."""

    def __init__(
        self, factory: Callable[[], Any], *, max_connections: int, header_timeout: float
    ) -> None:
        self.factory = factory
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self._open: dict[_Guarded, None] = {}  # in the order they connected
        self._by_transport: dict[Any, _Guarded] = {}
        self.evicted = 0  #: connections closed for being slow, or to make room
        self.refused = 0  #: connections refused because every one was running a handler

    def __call__(self) -> asyncio.Protocol:
        if len(self._open) >= self.max_connections and not self._make_room():
            self.refused += 1
            return _Refused()
        return _Guarded(self, self.factory())

    def _make_room(self) -> bool:
        for conn in self._open:
            if not conn.busy and conn.transport is not None:
                self.evicted += 1
                log.debug("webhook_connection_evicted", open=len(self._open))
                conn.transport.close()
                self.closed(conn)
                return True
        return False

    def opened(self, conn: _Guarded) -> None:
        self._open[conn] = None
        self._by_transport[conn.transport] = conn

    def closed(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        self._by_transport.pop(conn.transport, None)

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._open)

    def handling(self, transport: Any, running: bool) -> None:
        """The webhook read a whole request on ``transport`` and runs (or ended) its
        handler: that connection is not evicted meanwhile."""
        conn = self._by_transport.get(transport)
        if conn is not None:
            conn.busy += 1 if running else -1
            conn.served = True


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


GUARD_KEY: web.AppKey[ConnectionGuard] = web.AppKey("yunhu_stream.guard", ConnectionGuard)
"""Set by BotApp on its application: the webhook tells the guard which connections are
running a request."""
