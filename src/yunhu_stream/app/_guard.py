"""The webhook server's defence against slow or idle connections (slowloris).

aiohttp on its own holds a connection that trickles its headers until the keep-alive
timeout (3,630 s by default) and one that trickles its body for ever, so a few hundred
slow connections exhaust the file descriptors. :class:`ConnectionGuard` bounds both:

* **header timeout**: a connection must finish its request headers within
  ``header_timeout`` seconds of connecting or of its previous answer (a timer per
  connection, stopped when a request's handler starts; aiohttp's keep-alive timeout
  is set to the same value);
* **body timeout**: the webhook reads the body within ``body_timeout`` (the
  Dispatcher's option, enforced by the webhook route);
* **connection cap**: at most ``max_connections`` connections are open. When a new one
  would exceed it, the connection that has waited longest without being answered
  (still sending headers, trickling a webhook body, or idle between requests) is
  closed to make room; a sender that delivers its request at once, as YunHu does, is
  always the youngest, so it gets in. Connections inside another route's handler (an
  SSE stream, say) are never closed that way; when every connection is such a one,
  the newcomer gets HTTP 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._log import get_logger

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

log = get_logger("app")

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"Content-Length: 52\r\n\r\n"
    b'{"ok": false, "error": "too many open connections"}\n'
)


_LINGER_SECONDS = 2.0
"""After an error answer (408, 413) the unread body is drained this long at most, so
the sender can read the answer, then the connection closes (aiohttp's default: 10 s)."""


class _Connection(web.RequestHandler):
    """aiohttp's connection handler, reporting to a :class:`ConnectionGuard`."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **options: Any) -> None:
        super().__init__(manager, **options)
        self.guard = guard
        self.evictable = True  #: False while another route's handler runs on it
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.opened(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.lost(self)
        super().connection_lost(exc)

    def wait_for_headers(self, seconds: float) -> None:
        """(Re)start the header timer: close the connection unless a request starts."""
        self.stop_header_timer()
        self.header_timer = asyncio.get_running_loop().call_later(seconds, self.headers_late)

    def stop_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def headers_late(self) -> None:
        self.header_timer = None
        self.guard.timed_out += 1
        self.force_close()


class ConnectionGuard:
    """Counts a server's connections and keeps them within ``max_connections``.

    Args:
        max_connections: Most connections open at once.
        header_timeout: Seconds a connection may take to send its headers.
        webhook_path: The webhook's path: its requests stay evictable while their
            body is read (the route bounds that with its own body timeout).
    """

    def __init__(self, max_connections: int, header_timeout: float, webhook_path: str) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.webhook_path = webhook_path
        self._open: dict[_Connection, None] = {}  # insertion order = age
        self.evicted = 0  #: connections closed to make room
        self.refused = 0  #: connections answered 503 because none could be closed
        self.timed_out = 0  #: connections closed for not sending headers in time

    @property
    def open_connections(self) -> int:
        """Connections open now."""
        return len(self._open)

    def protocol_factory(
        self, server: web.Server, loop: asyncio.AbstractEventLoop
    ) -> Callable[[], web.RequestHandler]:
        """What ``loop.create_server`` calls for each accepted connection."""

        def make() -> web.RequestHandler:
            return _Connection(
                server, self, loop=loop, keepalive_timeout=self.header_timeout,
                lingering_time=_LINGER_SECONDS,
            )

        return make

    def opened(self, conn: _Connection, transport: asyncio.BaseTransport) -> None:
        self._open[conn] = None
        conn.wait_for_headers(self.header_timeout)
        if len(self._open) <= self.max_connections:
            return
        victim = next((c for c in self._open if c is not conn and c.evictable), None)
        # Oldest first: dict order is the order connections opened, and one that was
        # answered moves to the end again (see `middleware`).
        if victim is not None:
            self.evicted += 1
            if self.evicted in (1, 10, 100) or self.evicted % 1000 == 0:
                log.warning("webhook_connection_evicted", evicted=self.evicted,
                            max_connections=self.max_connections)
            del self._open[victim]  # now: more may open before its connection_lost runs
            victim.force_close()
            return
        self.refused += 1
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSAL)
        conn.force_close()

    def close_waiting(self) -> int:
        """Close every connection not inside another route's handler (at shutdown: slow
        and idle ones would otherwise hold it up); return how many."""
        waiting = [c for c in self._open if c.evictable]
        for conn in waiting:
            del self._open[conn]
            conn.force_close()
        return len(waiting)

    def lost(self, conn: _Connection) -> None:
        conn.stop_header_timer()
        self._open.pop(conn, None)

    def middleware(self) -> Middleware:
        """Marks connections busy inside non-webhook handlers, and answered ones young."""

        @web.middleware
        async def guard(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            conn = request.protocol
            if not isinstance(conn, _Connection):
                return await handler(request)
            conn.stop_header_timer()  # headers are in; the route bounds the rest
            if request.path != self.webhook_path:
                conn.evictable = False
            response: web.StreamResponse | None = None
            try:
                response = await handler(request)
                return response
            finally:
                conn.evictable = True
                closing = response is not None and response.keep_alive is False
                if conn in self._open and not closing:
                    conn.wait_for_headers(self.header_timeout)  # for the next request
                if conn in self._open:  # now the youngest: waiting for its next request
                    del self._open[conn]
                    self._open[conn] = None

        return guard
