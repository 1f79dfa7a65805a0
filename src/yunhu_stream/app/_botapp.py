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
from ._guard import GUARD_KEY, ConnectionGuard
from ._webhook import BOT_KEY, setup

DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_MAX_CONNECTIONS = 512

log = get_logger("app")


def _not_started() -> Any:
    raise RuntimeError("the BotApp has not started")


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
        shutdown_timeout: Seconds to let running handlers finish when stopping,
            before they are cancelled.
        dedup_size: How many recent event ids are remembered to drop redeliveries.
        max_handlers: Handlers running at once; more events get 503 + Retry-After
            (YunHu delivers them again) instead of being acknowledged and queued.
        body_timeout: Seconds to receive a request's whole body (408 after).
        header_timeout: Seconds a new connection gets to send a whole request;
            also the keep-alive timeout between requests.
        max_connections: Connections kept open at once; at the cap the oldest one
            not running a request (idle, or slow) is closed to let a new one in.
        bot_options: More keyword arguments for :class:`~yunhu_stream.Bot`.

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
        max_handlers: int = DEFAULT_MAX_HANDLERS,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        bot_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(
            max_body_bytes=max_body_bytes,
            dedup_size=dedup_size,
            shutdown_timeout=shutdown_timeout,
            max_handlers=max_handlers,
            body_timeout=body_timeout,
        )
        self.header_timeout = validate.seconds("header_timeout", header_timeout)
        self.max_connections = validate.integer("max_connections", max_connections, minimum=1)
        self._server: asyncio.Server | None = None
        self.path = path
        self._app = web.Application()
        self._guard = ConnectionGuard(
            _not_started, max_connections=self.max_connections,
            header_timeout=self.header_timeout)
        self._app[GUARD_KEY] = self._guard
        setup(
            self._app,
            token,
            base_url=base_url,
            path=path,
            dispatcher=self.dispatcher,
            bot_options=bot_options,
        )
        self._runner: web.AppRunner | None = None
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
        **run_app_options: Any,
    ) -> None:
        """Serve until interrupted (Ctrl+C or SIGTERM), then shut down gracefully.

        Blocks; do not call it inside a running event loop (use :meth:`start`).
        Further keyword arguments go to :func:`aiohttp.web.run_app`, which then
        serves instead (without the connection limits of ``max_connections`` and
        ``header_timeout``).

        Raises:
            ValueError: for a bad port.
        """
        validate.port("port", port)
        if run_app_options:
            self._check_fresh()
            self._state = LifecycleState.OPEN
            try:
                web.run_app(self._app, host=host, port=port, **run_app_options)
            finally:
                self._state = LifecycleState.CLOSED
            return
        asyncio.run(self._serve_until_signal(host, port))

    async def _serve_until_signal(self, host: str, port: int) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        try:
            url = await self.start(host, port)
            log.info("webhook_serving", url=url)
            await stop.wait()
        finally:
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
        runner = web.AppRunner(
            self._app, handle_signals=False, keepalive_timeout=self.header_timeout)
        self._runner = runner
        try:
            await runner.setup()
            # Served through the guard (not a TCPSite): it sees every connection.
            assert runner.server is not None  # set by setup()
            self._guard.factory = runner.server
            self._server = await asyncio.get_running_loop().create_server(
                self._guard, host, port, backlog=1024)
        except BaseException:
            self._runner = None
            await runner.cleanup()
            raise
        self._state = LifecycleState.OPEN
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"http://{shown}:{bound_port}{self.path}"
        return self._url

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
            server.close()  # no new connections; aiohttp closes the open ones
        if runner is not None:
            await runner.cleanup()

    stop = Lifecycle.aclose
    """Alias of :meth:`aclose`: stop serving (see there)."""
