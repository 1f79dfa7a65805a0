"""The :class:`Emulator`: a real aiohttp server that behaves like YunHu's bot API."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from .. import _validate as validate
from .._exceptions import ClosedError, ConfigurationError
from .._lifecycle import Lifecycle, LifecycleState
from .._log import get_logger
from .._types import Recipient
from ._core import Core, RequestRecord
from ._faults import Faults
from ._people import Delivery, People
from ._proxy import Interceptor
from ._routes import API_PREFIX, add_api_routes
from ._store import DEFAULT_WAIT, StoredMessage, StreamRecord
from ._web import add_page_routes

log = get_logger("emulator")

T = TypeVar("T")
DEFAULT_BOT_ID = "37090343"  # yunhu_stream.testing's: events built there name this bot
# In-flight requests get this long to finish when the emulator stops; then they are cut,
# which is what a restarting server does to its clients.
SHUTDOWN_GRACE = 0.25


class Emulator(Lifecycle, People):
    """A local YunHu bot API on loopback, for tests and demos.

    It implements the bot API (``bot/send-stream``, ``bot/send``, ``bot/batch_send``,
    ``bot/edit``, ``bot/recall``, ``GET bot/messages``, the uploads and the boards) with
    the token check, parameter validation and response envelope of the real service,
    stand-ins for the web API lookups real clients make, keeps every chat's history,
    records each streamed request with its chunks, and injects faults on demand
    (:attr:`faults`). Users and groups (:meth:`add_user`, :meth:`add_group`) say things
    to the bot through its webhook (:meth:`user_says`). It also serves a live web page
    at :attr:`url`.

    Usage::

        async with Emulator() as emu:
            async with Bot(emu.token, base_url=emu.base_url) as bot:
                ...
            emu.chat("group", "123")

    Args:
        token: The bot token it accepts; a random one if None.
        host: The address to listen on.
        port: The port; 0 picks a free one (kept across :meth:`restart`).
        rate_limit: If set, answer ``1007`` to requests over this many per second per
            endpoint, as the real service does at 10. Off by default.
        bot_id: The ``senderId`` of the bot's messages (default: the bot id
            :mod:`yunhu_stream.testing` puts in events).
        bot_nickname: The ``senderNickname`` of the bot's messages.
        strict: Refuse chats the bot cannot reach, as YunHu does: ``1003`` for a user
            who has not added the bot, ``-1`` for a group without it, ``-1`` for a
            media key never uploaded. Off by default: any chat id is accepted.
        webhook_url: Where users' events are POSTed (settable later as
            :attr:`webhook_url`).
        proxy: Also run an HTTPS proxy for YunHu's hosts, so that clients with a
            hard-coded base URL reach the emulator: start them with :attr:`proxy_env`.
            Needs the ``proxy`` extra (``trustme``).
        clock: The clock (seconds) the emulated rate limit counts its one-second
            windows by; ``time.monotonic`` by default. Tests may pass a frozen one.

    Unlike other resources, a stopped emulator can :meth:`start` again, on the
    same port and with its history: that is how a test takes the server down and
    brings it back. ``aclose()`` (alias ``close()``) stops it.

    Raises:
        ConfigurationError: for an invalid argument, saying what is accepted
            (a ``ValueError``).
        ImportError: for ``proxy=True`` without ``trustme`` installed.
    """

    _closed_error = ClosedError

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = None,
        bot_id: str = DEFAULT_BOT_ID,
        bot_nickname: str = "Emulator Bot",
        strict: bool = False,
        webhook_url: str | None = None,
        proxy: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if token is not None and (
            not isinstance(token, str) or not token or not token.isprintable() or " " in token
        ):
            raise validate.fail(
                "token", "a non-empty printable string without spaces, or None", "***"
            )
        validate.text("host", host)
        validate.port("port", port)
        validate.optional_integer("rate_limit", rate_limit, minimum=1)
        validate.text("bot_id", bot_id)
        validate.text("bot_nickname", bot_nickname)
        if clock is not None and not callable(clock):
            raise validate.fail("clock", "a callable returning seconds, or None", clock)
        self._core = Core(
            token=token or secrets.token_hex(16),
            bot_id=bot_id,
            bot_nickname=bot_nickname,
            rate_limit=rate_limit,
        )
        if clock is not None:
            self._core.clock = clock
        self._proxy = Interceptor(host) if validate.boolean("proxy", proxy) else None
        self._http = None
        self.deliveries: list[Delivery] = []
        self.strict = strict
        self.webhook_url = webhook_url
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._runner else "stopped"
        return f"<Emulator {state} token=***>"

    @property
    def token(self) -> str:
        """The bot token this emulator accepts."""
        return self._core.token

    @property
    def port(self) -> int:
        """The port it listens on (0 until first started with ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        """The server root, where the live page is: ``http://127.0.0.1:PORT/``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}/"

    @property
    def base_url(self) -> str:
        """The API base to give ``Bot(base_url=...)``: ``http://127.0.0.1:PORT/open-apis/v1``."""
        return self.url.rstrip("/") + API_PREFIX

    @property
    def bot_id(self) -> str:
        """The ``senderId`` of the bot's messages."""
        return self._core.bot_id

    @property
    def proxy_url(self) -> str | None:
        """``http://127.0.0.1:PORT`` of the proxy (``proxy=True``, while running), else None."""
        return self._proxy.url if self._proxy and self._runner else None

    @property
    def ca_file(self) -> str | None:
        """The PEM file of the proxy's certificate authority, while running, else None."""
        return self._proxy.ca_file if self._proxy and self._runner else None

    @property
    def proxy_env(self) -> dict[str, str]:
        """Environment variables that send an unmodified client to this emulator:
        ``HTTPS_PROXY`` (and ``https_proxy``), ``SSL_CERT_FILE`` (OpenSSL, aiohttp, httpx,
        curl), ``REQUESTS_CA_BUNDLE`` (requests), and ``NO_PROXY`` for loopback.

        Raises:
            RuntimeError: unless the emulator runs with ``proxy=True``.
        """
        url, ca = self.proxy_url, self.ca_file
        if url is None or ca is None:
            raise RuntimeError("proxy_env needs a running Emulator(proxy=True)")
        return {
            "HTTPS_PROXY": url, "https_proxy": url, "SSL_CERT_FILE": ca,
            "REQUESTS_CA_BUNDLE": ca, "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }

    @property
    def running(self) -> bool:
        """True while the server is listening."""
        return self._runner is not None

    @property
    def faults(self) -> Faults:
        """The fault switches; see :class:`~yunhu_stream.emulator.Faults`."""
        return self._core.faults

    @property
    def streams(self) -> list[StreamRecord]:
        """Every ``bot/send-stream`` request received, in arrival order."""
        return self._core.streams

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request handled, in the order they finished."""
        return self._core.requests

    @property
    def rate_limited(self) -> int:
        """How many ``1007`` (frequency limit) answers it has sent."""
        return sum(1 for r in self._core.requests if r.code == 1007)

    def chat(
        self,
        recv_type: str | Recipient,
        recv_id: str | int | None = None,
        *,
        include_recalled: bool = False,
    ) -> list[StoredMessage]:
        """The messages of one chat, oldest first, as a person in it would see them.

        Call as ``chat("group", "123")``, ``chat("group:123")`` or ``chat(Recipient...)``.
        Recalled messages are left out unless ``include_recalled``.

        Raises:
            ValueError: if the chat is not given in one of those forms.
        """
        if recv_id is None:
            who = Recipient.coerce(recv_type)
        elif isinstance(recv_type, str):
            who = Recipient(recv_type, str(recv_id))  # type: ignore[arg-type]  # validated
        else:
            raise ConfigurationError("give chat(type, id), chat('type:id') or chat(Recipient)")
        return self._core.store.chat(who.type, who.id, include_recalled=include_recalled)

    def chats(self) -> list[tuple[str, str]]:
        """Every chat with at least one message, as ``(type, id)``, oldest first."""
        return self._core.store.chat_keys()

    def message(self, msg_id: str) -> StoredMessage | None:
        """The message with ``msg_id`` (recalled or not), or None."""
        return self._core.store.get(msg_id)

    async def wait_until(
        self,
        check: Callable[[], T | None],
        *,
        timeout: float | None = DEFAULT_WAIT,
        what: str = "a condition",
    ) -> T:
        """Wait until ``check()`` returns something other than None/False, and return it.

        ``check`` is re-run after every change in the emulator (a request, a chunk, a
        message change, a fault hit), so no polling or sleeping is needed.

        Raises:
            TimeoutError: after ``timeout`` seconds, naming ``what``.
        """
        return await self._core.changes.wait_until(check, timeout=timeout, what=what)

    async def wait_for_stream(
        self, n: int = 1, *, timeout: float | None = DEFAULT_WAIT
    ) -> StreamRecord:
        """Wait until ``n`` send-stream requests have arrived; return the ``n``-th.

        Raises:
            TimeoutError: if they do not arrive in time.
        """
        validate.integer("n", n, minimum=1)
        streams = self._core.streams
        return await self.wait_until(
            lambda: streams[n - 1] if len(streams) >= n else None,
            timeout=timeout,
            what=f"send-stream request #{n}",
        )

    async def wait_for_message(
        self,
        recv_type: str | Recipient,
        recv_id: str | int | None = None,
        predicate: Callable[[StoredMessage], bool] | None = None,
        *,
        timeout: float | None = DEFAULT_WAIT,
    ) -> StoredMessage:
        """Wait for a message in a chat that satisfies ``predicate`` (any, if None).

        The chat is given as for :meth:`chat`. Returns the newest matching message.

        Raises:
            TimeoutError: if none appears in time.
        """
        accept = predicate or (lambda _m: True)

        def check() -> StoredMessage | None:
            matches = [m for m in self.chat(recv_type, recv_id) if accept(m)]
            return matches[-1] if matches else None

        return await self.wait_until(check, timeout=timeout, what="a matching message")

    async def wait_for_requests(
        self, n: int, *, endpoint: str | None = None, timeout: float | None = DEFAULT_WAIT
    ) -> list[RequestRecord]:
        """Wait until ``n`` requests (to ``endpoint``, or any) have been answered or dropped.

        Raises:
            TimeoutError: if that does not happen in time.
        """

        def check() -> list[RequestRecord] | None:
            done = [r for r in self._core.requests if endpoint in (None, r.endpoint)]
            return done if len(done) >= n else None

        return await self.wait_until(check, timeout=timeout, what=f"{n} requests")

    def _app(self) -> web.Application:
        app = web.Application()
        core = self._core
        add_api_routes(app, core)
        add_page_routes(app, core)
        return app

    async def start(self) -> Emulator:
        """Start listening (on the same port as before after a stop).

        Raises:
            RuntimeError: if it is already running.
            OSError: if the port cannot be bound.
        """
        if self._state is LifecycleState.OPEN or self._state is LifecycleState.CLOSING:
            raise RuntimeError("the emulator is already running")
        await self._open()
        self._state = LifecycleState.OPEN
        return self

    async def _enter(self) -> None:
        await self.start()

    async def _open(self) -> None:
        self._core.stopping = asyncio.Event()
        # access_log=None: aiohttp's access log would print the query string, token included.
        runner = web.AppRunner(
            self._app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
            if self._port == 0:
                self._port = int(runner.addresses[0][1])
            if self._proxy is not None:
                await self._proxy.start(runner)
        except BaseException:
            if self._proxy is not None:
                await self._proxy.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._core.url = self.url
        log.info("emulator_started", url=self.url, proxy=self.proxy_url)

    async def _close(self) -> None:
        """Stop listening and cut requests still in flight. History is kept."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._core.stopping.set()
        self._core.changes.notify()
        if self._proxy is not None:
            await self._proxy.close()
        await runner.cleanup()
        if self._http is not None:
            await self._http.close()
        log.info("emulator_stopped", url=self.url)

    close = Lifecycle.aclose
    """Alias of :meth:`aclose`: stop listening (history is kept; :meth:`start` resumes)."""

    async def restart(self) -> None:
        """Stop and start again on the same port, keeping history and fault rules."""
        await self.aclose()
        await self.start()
