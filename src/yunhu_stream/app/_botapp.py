"""``BotApp``: a ready-to-run webhook server for one bot."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from .. import _validate as validate
from .._client import Bot
from .._lifecycle import Lifecycle, LifecycleState
from .._log import get_logger
from ._dispatch import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_DEDUP_SIZE,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HANDLERS,
    DEFAULT_SHUTDOWN_TIMEOUT,
    EH,
    MH,
    Dispatcher,
    DispatcherStatistics,
)
from ._guard import ConnectionGuard
from ._webhook import BOT_KEY, setup

log = get_logger("app")

DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_MAX_CONNECTIONS = 512  # well below the usual 1,024 file descriptors


class BotApp(Lifecycle):
    """A ready-to-run webhook server for one bot, on aiohttp.web.

    Register handlers with :meth:`on_message`, :meth:`on_command` and
    :meth:`on_event`; each is ``async def handler(event, bot)``. Start it with
    :meth:`run` (blocking), or inside a running loop :meth:`start` and
    :meth:`aclose` (alias ``stop``), or ``async with BotApp(...) as app:`` (serving
    on a free loopback port; :attr:`url` says where). A BotApp serves once: after
    it stops it cannot start again.

    Args:
        token: The bot token; defaults to ``$YUNHU_TOKEN``.
        base_url: API root; defaults as for :class:`~yunhu_stream.Bot`.
        path: The webhook path YunHu POSTs to.
        max_body_bytes: Largest body accepted; larger ones get HTTP 413.
        shutdown_timeout: Seconds stopping may take: running handlers get the first
            half to finish, then their open replies are closed with what they have
            (see :class:`Dispatcher`); what is left after that is cancelled.
        dedup_size: How many recent event ids are remembered to drop redeliveries.
        header_timeout: Seconds a connection may take to send its request headers
            (counted from connecting, or from the previous answer on a kept-alive
            connection); slower ones are closed.
        body_timeout: Seconds the webhook waits for a whole body; slower bodies get
            HTTP 408 and the connection is closed.
        max_connections: Most connections open at once. Beyond it, the connection
            waiting longest without an answer is closed to make room (a slow or idle
            one; never one inside another route's handler); if none can be, the new
            one gets HTTP 503. Keep it below the process's file-descriptor limit.
        max_handlers: Most handlers running at once; an event beyond that gets
            HTTP 503 with ``Retry-After`` (YunHu delivers it again), not a 200 for
            work that might be dropped.
        bot_options: More keyword arguments for :class:`~yunhu_stream.Bot`.

    See docs/apps.md ("Hostile peers and load") for how the limits work together.

    Raises:
        ConfigurationError: no token, or an option out of range.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        path: str = "/yunhu",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        dedup_size: int = DEFAULT_DEDUP_SIZE,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_handlers: int = DEFAULT_MAX_HANDLERS,
        bot_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(
            max_body_bytes=max_body_bytes,
            dedup_size=dedup_size,
            shutdown_timeout=shutdown_timeout,
            max_handlers=max_handlers,
            body_timeout=body_timeout,
        )
        self.path = path
        self.guard = ConnectionGuard(
            validate.integer("max_connections", max_connections, minimum=1),
            validate.seconds("header_timeout", header_timeout),
            path,
        )
        self._app = web.Application(middlewares=[self.guard.middleware()])
        setup(
            self._app,
            token,
            base_url=base_url,
            path=path,
            dispatcher=self.dispatcher,
            bot_options=bot_options,
        )
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._url: str | None = None

    def __repr__(self) -> str:
        # Host and port only: an unguessable path is the webhook's only secret.
        state = f"serving on {self._url.split('/')[2]}" if self._url else "not serving"
        return f"<BotApp {state}>"

    # -- handlers ----------------------------------------------------------------------

    def on_message(
        self,
        *,
        chat_type: str | None = None,
        content_type: str | Iterable[str] | None = None,
    ) -> Callable[[MH], MH]:
        """Register a message handler; see :meth:`Dispatcher.on_message`."""
        return self.dispatcher.on_message(chat_type=chat_type, content_type=content_type)

    def on_command(self, *commands: str | int) -> Callable[[MH], MH]:
        """Register a command handler; see :meth:`Dispatcher.on_command`."""
        return self.dispatcher.on_command(*commands)

    def on_event(self, *event_types: str) -> Callable[[EH], EH]:
        """Register an event handler; see :meth:`Dispatcher.on_event`."""
        return self.dispatcher.on_event(*event_types)

    # -- serving -----------------------------------------------------------------------

    @property
    def web_app(self) -> web.Application:
        """The aiohttp application (add your own routes before it starts)."""
        return self._app

    def make_app(self) -> web.Application:
        """Return :attr:`web_app`, for ``aiohttp.test_utils`` or an external runner."""
        return self._app

    @property
    def bot(self) -> Bot:
        """The Bot, while the app is running.

        Raises:
            RuntimeError: the app has not started yet.
        """
        bot = self._app.get(BOT_KEY)
        if bot is None:
            raise RuntimeError("the Bot exists only while the app runs (start it first)")
        return bot

    @property
    def url(self) -> str | None:
        """The webhook URL while :meth:`start` has it serving, else ``None``."""
        return self._url

    @property
    def stats(self) -> DispatcherStatistics:
        """The dispatcher's counters (received, duplicates, failed, running…)."""
        return self.dispatcher.stats

    def run(
        self,
        host: str = "0.0.0.0",  # noqa: S104 - YunHu must reach the webhook
        port: int = 8080,
    ) -> None:
        """Serve until interrupted (Ctrl+C or SIGTERM), then shut down gracefully.

        Blocks; do not call it inside a running event loop (use :meth:`start`).
        On the signal it stops accepting connections, answers new events 503,
        and finishes the running handlers as :meth:`aclose` does.

        Raises:
            ValueError: for a bad port.
            OSError: the address cannot be bound.
        """
        validate.port("port", port)
        self._check_fresh()
        asyncio.run(self._serve_until_signalled(host, port))

    async def _serve_until_signalled(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
                loop.add_signal_handler(sig, stop.set)
        try:
            await self.start(host, port)
            log.info("webhook_serving", port=self._bound_port())
            await stop.wait()
        finally:
            for sig in signals:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            await self.aclose()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving in the running event loop and return the webhook URL.

        ``port=0`` picks a free port. Stop with :meth:`stop`.

        Raises:
            RuntimeError: it was started before.
            ValueError: for a bad port.
            OSError: the address cannot be bound.
        """
        validate.port("port", port)
        self._check_fresh()
        runner = web.AppRunner(self._app, handle_signals=False)
        self._runner = runner
        try:
            await runner.setup()
            server = runner.server
            assert server is not None  # set up just above
            # Our own listening socket, so each connection is counted and its header
            # time bounded (see _guard); aiohttp still handles every request.
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                self.guard.protocol_factory(server, loop), host, port, reuse_address=True
            )
        except BaseException:
            self._runner = None
            if self._server is not None:
                self._server.close()
                self._server = None
            await runner.cleanup()
            raise
        self._state = LifecycleState.OPEN
        bound_host = self._server.sockets[0].getsockname()[0]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"http://{shown}:{self._bound_port()}{self.path}"
        return self._url

    def _bound_port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    def _check_fresh(self) -> None:
        if self._state is not LifecycleState.NEW or self._app.frozen:
            raise RuntimeError("a BotApp serves once; create a new one to serve again")

    async def _enter(self) -> None:
        await self.start()

    async def _close(self) -> None:
        """Refuse new events, let running handlers finish for up to
        ``shutdown_timeout`` seconds, cancel the rest, close the Bot."""
        runner, self._url, self._runner = self._runner, None, None
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections; aiohttp closes the open ones below
            # Slow or idle connections would hold aiohttp's shutdown for a minute.
            self.guard.close_waiting()
        if runner is not None:
            await runner.cleanup()
        if server is not None:
            await server.wait_closed()

    stop = Lifecycle.aclose
    """Alias of :meth:`aclose`: stop serving (see there)."""
