"""``WsChatApp``: handlers for a WebSocket chat's incoming messages, the ``BotApp`` of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _validate as validate
from .._lifecycle import Lifecycle
from .._log import get_logger
from .._streamer import Streamer
from .._types import Target
from ._client import WsChat
from ._events import WsMessage

log = get_logger("wschat")

Handler = Callable[[WsMessage, WsChat], Awaitable[Any]]


class WsChatApp(Lifecycle):
    """A bot on a WebSocket chat: each incoming message runs the handlers that match it.

    ::

        app = WsChatApp("ws://127.0.0.1:8790/chat", token=token)

        @app.on_message()
        async def answer(event: WsMessage, chat: WsChat) -> None:
            async with app.stream(to=event) as s:     # to the sender, or to the group
                async for token in llm_reply(event.content):
                    await s.write(token)

        async with app:
            await app.serve_forever()

    Whole messages (and the final frames of streamed ones) reach handlers; the
    growing pieces of a stream do not. Each message runs in its own task, at most
    ``max_handlers`` at once (more wait).

    Args:
        url, token: As for :class:`WsChat`.
        groups: Groups to join when the app starts.
        max_handlers: Handlers running at once.
        shutdown_timeout: Seconds running handlers get to finish when the app closes.
        chat_options: More keyword arguments for :class:`WsChat`.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        groups: tuple[str, ...] | list[str] = (),
        max_handlers: int = 100,
        shutdown_timeout: float = 10.0,
        **chat_options: Any,
    ) -> None:
        self.chat = WsChat(url, token=token, **chat_options)
        self.groups = [validate.identifier("groups[]", g) for g in groups]
        self.max_handlers = validate.integer("max_handlers", max_handlers, minimum=1)
        self.shutdown_timeout = validate.seconds("shutdown_timeout", shutdown_timeout, zero=True)
        self._handlers: list[tuple[Callable[[WsMessage], bool], Handler]] = []
        self._reader: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.max_handlers)
        self.handled = 0  #: handler runs finished (successfully or not)
        self.failed = 0  #: handler runs that raised

    def on_message(
        self, *, msg_type: str | None = None, chat_type: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register ``async def handler(event, chat)`` for messages of ``msg_type``
        (``"text"``, a custom type; None: any) in ``chat_type`` (``"single"``,
        ``"group"``; None: both)."""
        if chat_type is not None:
            validate.choice("chat_type", chat_type, ("single", "group"))
        if msg_type is not None:
            validate.text("msg_type", msg_type)

        def matches(event: WsMessage) -> bool:
            return (msg_type is None or event.msg_type == msg_type) and (
                chat_type is None or event.chat_type == chat_type)

        def register(handler: Handler) -> Handler:
            if not callable(handler):
                raise TypeError(f"a handler must be an async function, not {handler!r}")
            self._handlers.append((matches, handler))
            return handler

        return register

    def stream(self, to: Target, **options: Any) -> Streamer:
        """A streamed reply (see :meth:`WsChat.stream`)."""
        return self.chat.stream(to, **options)

    async def _open(self) -> None:
        await self.chat.__aenter__()
        for group in self.groups:
            await self.chat.join(group)
        ready = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(
            self._read(ready), name="yunhu-stream wschat app")
        await ready.wait()

    async def _read(self, ready: asyncio.Event) -> None:
        events = self.chat.events()
        first = asyncio.ensure_future(anext(events))  # registers the reader at once
        ready.set()
        pending: asyncio.Future[Any] | None = first
        while True:
            try:
                event = await pending if pending is not None else await anext(events)
            except StopAsyncIteration:
                return
            pending = None
            if not isinstance(event, WsMessage):
                continue
            for matches, handler in self._handlers:
                if matches(event):
                    await self._slots.acquire()
                    task = asyncio.ensure_future(self._run(handler, event))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)

    async def _run(self, handler: Handler, event: WsMessage) -> None:
        try:
            await handler(event, self.chat)
        except Exception as exc:
            self.failed += 1
            log.warning("wschat_handler_failed", handler=getattr(handler, "__name__", "?"),
                        error=type(exc).__name__, detail=str(exc))
        finally:
            self.handled += 1
            self._slots.release()

    async def serve_forever(self) -> None:
        """Wait until the app is closed (or the chat gave up reconnecting)."""
        if self._reader is not None:
            await asyncio.wait({self._reader})

    async def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait({reader})
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=self.shutdown_timeout or None)
            for task in late:
                task.cancel()
            if late:
                log.warning("wschat_handlers_cut_off", count=len(late))
                await asyncio.wait(late)
        await self.chat.aclose()
