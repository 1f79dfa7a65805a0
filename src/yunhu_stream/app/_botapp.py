"""``BotApp``: a ready-to-run webhook server for one bot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from .. import _validate as validate
from .._client import Bot
from .._lifecycle import Lifecycle, LifecycleState
from ._dispatch import (
    DEFAULT_DEDUP_SIZE,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_SHUTDOWN_TIMEOUT,
    EH,
    MH,
    Dispatcher,
    DispatcherStatistics,
)
from ._webhook import BOT_KEY, setup


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
        bot_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(
            max_body_bytes=max_body_bytes,
            dedup_size=dedup_size,
            shutdown_timeout=shutdown_timeout,
        )
        self.path = path
        self._app = web.Application()
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
        Further keyword arguments go to :func:`aiohttp.web.run_app`.

        Raises:
            ValueError: for a bad port.
        """
        validate.port("port", port)
        self._check_fresh()
        self._state = LifecycleState.OPEN
        try:
            web.run_app(self._app, host=host, port=port, **run_app_options)
        finally:
            self._state = LifecycleState.CLOSED

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
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            self._runner = None
            await runner.cleanup()
            raise
        self._state = LifecycleState.OPEN
        bound_host, bound_port = runner.addresses[0][:2]
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
        if runner is not None:
            await runner.cleanup()

    stop = Lifecycle.aclose
    """Alias of :meth:`aclose`: stop serving (see there)."""
