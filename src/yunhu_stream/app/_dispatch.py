"""``Dispatcher``: picks the handler for each webhook event and runs it as a task."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import structlog

from .. import _validate as validate
from .._exceptions import ConfigurationError, StreamClosedError
from .._lifecycle import Lifecycle
from .._log import get_logger, safe
from .._streamer import StreamState
from .._tracking import OPEN_STREAMS
from ..events._models import Event, MessageEvent

if TYPE_CHECKING:
    from .._client import Bot
    from .._streamer import Streamer

log = get_logger("app")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_DEDUP_SIZE = 4096
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_MAX_HANDLERS = 256
DEFAULT_BODY_TIMEOUT = 15.0
RETRY_AFTER_SECONDS = 5
"""``Retry-After`` sent with a 503 (handlers all busy, or shutting down)."""

_DIGEST_BYTES = 16  # blake2b-128 per remembered eventId: a collision is not a concern

MessageHandler = Callable[[MessageEvent, "Bot"], Awaitable[object]]
"""``async def handler(event: MessageEvent, bot: Bot) -> None``."""

EventHandler = Callable[[Any, "Bot"], Awaitable[object]]
"""``async def handler(event, bot: Bot) -> None`` for any event class."""

MH = TypeVar("MH", bound=MessageHandler)
EH = TypeVar("EH", bound=EventHandler)

DispatchOutcome = Literal["accepted", "duplicate", "unhandled", "busy", "closing"]

_CHAT_TYPES = ("group", "bot")


@dataclass(frozen=True, slots=True)
class DispatcherStatistics:
    """Counters of what a :class:`Dispatcher` has done (see :attr:`Dispatcher.stats`)."""

    received: int  #: events handed to dispatch(), duplicates included
    accepted: int  #: events that started a handler
    duplicates: int  #: events skipped because their eventId was seen before
    unhandled: int  #: events no handler matched
    rejected: int  #: webhook requests answered with an error (4xx, or 503 while stopping)
    failed: int  #: handlers that raised
    cancelled: int  #: handlers cancelled at shutdown
    running: int  #: handlers running now
    busy: int = 0  #: events refused (HTTP 503) because ``max_handlers`` were running
    finished_at_shutdown: int = 0  #: open replies closed with what they had at shutdown
    cut_off: int = 0  #: open replies that could not be finished before the timeout


@dataclass(frozen=True, slots=True)
class _Route:
    handler: EventHandler
    matches: Callable[[Event], bool]
    describe: str


def _check_handler(handler: object, decorator: str) -> None:
    name = getattr(handler, "__qualname__", None) or repr(handler)
    if not callable(handler):
        raise TypeError(f"{decorator} must decorate an async function, not {handler!r}")
    is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - objects with an async __call__
    )
    if not is_async:
        raise TypeError(
            f"{decorator} needs an async function (async def {name}(event, bot)), "
            f"not the plain callable {name}"
        )


def _names(values: Iterable[object], what: str, accepted: str) -> tuple[str, ...]:
    out = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{what} must be {accepted}, not {value!r}")
        out.append(value)
    return tuple(out)


class Dispatcher(Lifecycle):
    """Routes webhook events to handlers and runs each handler as its own task.

    Handlers are ``async def handler(event, bot)``. Each event runs at most one
    handler: the first matching ``on_command`` handler, else the first matching
    ``on_event`` handler, else the first matching ``on_message`` handler, each in
    the order registered. An event no handler matches is acknowledged and logged.

    A handler that raises is logged (``handler_failed`` with the event id) and
    does not affect other handlers. Redeliveries of an ``eventId`` seen among the
    last ``dedup_size`` events run no handler; each id is remembered as a 16-byte
    digest, so the memory is bounded whatever the ids' length.

    At most ``max_handlers`` handlers run at once: an event beyond that is not
    started (``"busy"``; the webhook answers HTTP 503 with ``Retry-After`` so YunHu
    delivers it again later) and not remembered as seen.

    :meth:`shutdown` refuses new events, gives running handlers the first half of
    ``shutdown_timeout`` to finish, then closes the reply streams they still have
    open (each message ends with what was written: ``finished_at_shutdown``), waits
    for that up to the rest of the timeout, and then cancels the handlers still
    running; a reply whose close did not complete in time is counted and logged as
    cut off (``replies_cut_off_at_shutdown``). A handler that had not written
    anything yet is cancelled with nothing sent.

    Args:
        max_body_bytes: Largest webhook body accepted; larger ones get HTTP 413.
        dedup_size: How many recent event ids are remembered (0 turns it off).
        shutdown_timeout: Seconds :meth:`shutdown` may take in all before cancelling
            what is left.
        max_handlers: Most handlers running at once (the webhook answers 503 beyond).
        body_timeout: Seconds the webhook waits for a request's whole body; a body
            that trickles in slower gets HTTP 408 and the connection is closed.

    Raises:
        ConfigurationError: an option is out of range.
    """

    def __init__(
        self,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        dedup_size: int = DEFAULT_DEDUP_SIZE,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_handlers: int = DEFAULT_MAX_HANDLERS,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.max_body_bytes = validate.integer("max_body_bytes", max_body_bytes, minimum=1024)
        self.dedup_size = validate.integer("dedup_size", dedup_size, minimum=0)
        self.shutdown_timeout = validate.seconds("shutdown_timeout", shutdown_timeout, zero=True)
        self.max_handlers = validate.integer("max_handlers", max_handlers, minimum=1)
        self.body_timeout = validate.seconds("body_timeout", body_timeout)
        self._commands: list[_Route] = []
        self._events: list[_Route] = []
        self._messages: list[_Route] = []
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: dict[asyncio.Task[None], set[Streamer]] = {}
        self._mounted = False
        self._counts = dict.fromkeys(
            ("received", "accepted", "duplicates", "unhandled", "rejected", "failed", "cancelled",
             "busy", "finished_at_shutdown", "cut_off"),
            0,
        )

    def __repr__(self) -> str:
        routes = len(self._commands) + len(self._events) + len(self._messages)
        return f"<Dispatcher handlers={routes} running={len(self._tasks)}>"

    # -- registration ------------------------------------------------------------------

    def on_message(
        self,
        *,
        chat_type: str | None = None,
        content_type: str | Iterable[str] | None = None,
    ) -> Callable[[MH], MH]:
        """Register a handler for messages and commands, optionally filtered.

        Args:
            chat_type: ``"group"`` or ``"bot"`` (private chat); ``None`` for both.
            content_type: One content type (``"text"``, ``"image"``…) or several.

        Raises:
            ValueError: for a filter value that is not accepted.
            TypeError: (from the decorator) when the handler is not ``async def``.
        """
        if chat_type is not None and chat_type not in _CHAT_TYPES:
            raise ConfigurationError(f"chat_type must be 'group', 'bot' or None, not {chat_type!r}")
        kinds: tuple[str, ...] | None = None
        if content_type is not None:
            values = [content_type] if isinstance(content_type, str) else list(content_type)
            kinds = _names(values, "content_type", "a content type string such as 'text'")
            if not kinds:
                raise ConfigurationError("content_type must name at least one content type")

        def matches(event: Event) -> bool:
            return (
                isinstance(event, MessageEvent)
                and chat_type in (None, event.chat.type)
                and (kinds is None or event.message.content_type in kinds)
            )

        filters = ", ".join(
            f"{k}={v!r}" for k, v in (("chat_type", chat_type), ("content_type", kinds)) if v
        )
        return self._register(self._messages, matches, f"on_message({filters})")

    def on_command(self, *commands: str | int) -> Callable[[MH], MH]:
        """Register a handler for commands, by name (``"help"``) or id (``2103``).

        Matches instruction events, and messages carrying a command, whose
        ``commandName`` is one of the names or whose ``commandId`` is one of the ids.

        Raises:
            ValueError: no command given, or one that is not a non-empty str or an int.
        """
        if not commands:
            raise ConfigurationError(
                'on_command() needs at least one command name or id, e.g. "help"'
            )
        names = _names(
            (c for c in commands if not isinstance(c, int) or isinstance(c, bool)),
            "command",
            "a command name (non-empty str) or a command id (int)",
        )
        ids = tuple(c for c in commands if isinstance(c, int) and not isinstance(c, bool))

        def matches(event: Event) -> bool:
            return (
                isinstance(event, MessageEvent)
                and event.is_command
                and (event.command_name in names or event.command_id in ids)
            )

        return self._register(
            self._commands, matches, f"on_command({', '.join(map(repr, commands))})"
        )

    def on_event(self, *event_types: str) -> Callable[[EH], EH]:
        """Register a handler for events by ``header.eventType``, e.g. ``"group.join"``.

        Any type may be named, including ones this library does not model (the
        handler then receives an :class:`~yunhu_stream.events.UnknownEvent`).

        Raises:
            ValueError: no type given, or one that is not a non-empty str.
        """
        if not event_types:
            raise ConfigurationError('on_event() needs at least one event type, e.g. "group.join"')
        types = _names(event_types, "event type", 'an event type string such as "group.join"')

        def matches(event: Event) -> bool:
            return event.event_type in types

        return self._register(self._events, matches, f"on_event({', '.join(map(repr, types))})")

    def _register(
        self, routes: list[_Route], matches: Callable[[Event], bool], describe: str
    ) -> Callable[[Any], Any]:
        def decorator(handler: Any) -> Any:
            _check_handler(handler, describe)
            routes.append(_Route(handler, matches, describe))
            return handler

        return decorator

    def mount(self) -> None:
        """Mark the dispatcher as serving one application (``setup()`` calls this).

        Raises:
            RuntimeError: it already serves one.
        """
        if self._mounted:
            raise RuntimeError("this Dispatcher is already mounted on an application")
        self._mounted = True

    def handler_for(self, event: Event) -> EventHandler | None:
        """The handler :meth:`dispatch` would run for ``event``, or ``None``."""
        route = self._route_for(event)
        return route.handler if route else None

    def _route_for(self, event: Event) -> _Route | None:
        for routes in (self._commands, self._events, self._messages):
            for route in routes:
                if route.matches(event):
                    return route
        return None

    # -- running -----------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once :meth:`aclose` has started; no new handler starts after that."""
        return self.closed

    @property
    def stats(self) -> DispatcherStatistics:
        """A snapshot of the dispatcher's counters."""
        return DispatcherStatistics(**self._counts, running=len(self._tasks))

    def dispatch(self, event: Event, bot: Bot) -> DispatchOutcome:
        """Start the handler for ``event`` as a task and return at once.

        Returns:
            ``"accepted"`` (a handler started), ``"duplicate"`` (its eventId was
            seen recently), ``"unhandled"`` (no handler matches), ``"busy"``
            (``max_handlers`` are running; nothing started, the id not remembered,
            so a redelivery runs) or ``"closing"`` (shutdown has begun; nothing started).
        """
        if self.closed:
            return "closing"
        self._counts["received"] += 1
        key = self._key(event.event_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            self._counts["duplicates"] += 1
            log.info("event_duplicate", event_id=event.event_id, event_type=event.event_type)
            return "duplicate"
        route = self._route_for(event)
        if route is None:
            self._remember(key)
            self._counts["unhandled"] += 1
            log.debug("event_unhandled", event_id=event.event_id, event_type=event.event_type)
            return "unhandled"
        if len(self._tasks) >= self.max_handlers:
            self._counts["busy"] += 1
            log.debug("event_busy", event_id=event.event_id, running=len(self._tasks))
            return "busy"
        self._remember(key)
        self._counts["accepted"] += 1
        streams: set[Streamer] = set()
        task = asyncio.create_task(
            self._run(route, event, bot, streams), name=f"yunhu-handler-{safe(event.event_id)}"
        )
        self._tasks.add(task)
        self._streams[task] = streams
        task.add_done_callback(self._forget)
        return "accepted"

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._streams.pop(task, None)

    async def handle(self, event: Event, bot: Bot) -> DispatchOutcome:
        """:meth:`dispatch`, after asking the Bot's shared store (``Bot.shared``, Redis)
        whether another worker has seen this eventId; without one, just dispatch().
        When the store cannot be reached, the local dedup decides."""
        shared = bot.shared
        first = None
        if shared is not None and self.dedup_size and not self.closed:
            first = await shared.first_delivery(event.event_id)
            if first is False:
                self._counts["received"] += 1
                self._counts["duplicates"] += 1
                log.info("event_duplicate", event_id=event.event_id,
                         event_type=event.event_type, shared=True)
                return "duplicate"
        outcome = self.dispatch(event, bot)
        if first and shared is not None and outcome in ("busy", "closing"):
            await shared.forget_delivery(event.event_id)  # refused: let the redelivery run
        return outcome

    def count_rejected(self) -> None:
        """Count one webhook body answered with a 4xx (the webhook calls this)."""
        self._counts["rejected"] += 1

    @staticmethod
    def _key(event_id: str) -> bytes:
        """A fixed-size digest of the id: memory per remembered id does not grow with it."""
        raw = event_id.encode("utf-8", "surrogatepass")  # any str, even an unparsed one
        return hashlib.blake2b(raw, digest_size=_DIGEST_BYTES).digest()

    def _remember(self, key: bytes) -> None:
        if self.dedup_size == 0:
            return
        self._seen[key] = None
        if len(self._seen) > self.dedup_size:
            self._seen.popitem(last=False)

    async def _run(self, route: _Route, event: Event, bot: Bot, streams: set[Streamer]) -> None:
        OPEN_STREAMS.set(streams)  # this task's own context: Bot.stream() records here
        with structlog.contextvars.bound_contextvars(event_id=safe(event.event_id)):
            about = {"event_id": event.event_id, "event_type": event.event_type,
                     "handler": route.describe}
            try:
                await self._call(route, event, bot)
            except asyncio.CancelledError:
                self._counts["cancelled"] += 1
                log.warning("handler_cancelled", **about)
                raise
            except Exception as exc:
                if self.closed and isinstance(exc, StreamClosedError):
                    # Shutdown closed its reply and refused the next write: it was
                    # stopped there, not failed.
                    self._counts["cancelled"] += 1
                    log.info("handler_stopped_at_shutdown", **about)
                else:
                    self._counts["failed"] += 1
                    log.exception("handler_failed", **about)

    @staticmethod
    async def _call(route: _Route, event: Event, bot: Bot) -> None:
        """Run the handler; in its chat's turn when the shared store orders chats."""
        shared = bot.shared
        if shared is None:
            await route.handler(event, bot)
            return
        try:
            chat = event.reply_recipient
        except ConfigurationError:  # no chat: nothing to order
            await route.handler(event, bot)
            return
        async with shared.chat_turn(f"{chat.type}:{chat.id}", event.event_id, event.event_time):
            await route.handler(event, bot)

    async def _close(self) -> None:
        """Stop accepting events; let running handlers finish for half of
        ``shutdown_timeout``; close the reply streams still open (finishing each
        message with what it has) within the rest; then cancel what is left."""
        if not self._tasks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        pending = set(self._tasks)
        log.info("handlers_draining", running=len(pending), timeout=self.shutdown_timeout)
        closing: set[asyncio.Task[None]] = set()
        try:
            if self.shutdown_timeout > 0:
                _, pending = await asyncio.wait(pending, timeout=self.shutdown_timeout / 2)
            if pending:
                open_streams = {
                    s for t in pending for s in self._streams.get(t, ())
                    if s.state in (StreamState.OPEN, StreamState.CLOSING)
                }
                closing = {asyncio.create_task(_finish(s)) for s in open_streams}
                if closing:
                    log.info("replies_finishing_at_shutdown", count=len(closing))
                    left = max(0.0, deadline - loop.time())
                    if left > 0:
                        done, _ = await asyncio.wait(closing, timeout=left)
                    else:
                        done = set()
                    self._counts["finished_at_shutdown"] += len(done)
                # Their replies are finished: the handlers are stopped (cancelled) below
                # rather than left to fail on their next write.
                pending = {t for t in pending if not t.done()}
        finally:
            # Also when shutdown() itself is cancelled: no handler may outlive it.
            cut = {t for t in closing if not t.done()}
            for task in cut:
                task.cancel()
            if cut:
                await asyncio.gather(*cut, return_exceptions=True)
                self._counts["cut_off"] += len(cut)
                log.warning("replies_cut_off_at_shutdown", count=len(cut))
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning("handlers_cancelled_at_shutdown", count=len(pending))

    shutdown = Lifecycle.aclose
    """Alias of :meth:`aclose`: stop accepting events and finish the running handlers."""


async def _finish(stream: Streamer) -> None:
    """Close one reply at shutdown; its error (with ``.text``) is the handler's to see."""
    try:
        await stream.close()
    except Exception as exc:  # a YunhuError: logged by the stream; nothing to add here
        log.debug("reply_finish_failed", error=type(exc).__name__)
