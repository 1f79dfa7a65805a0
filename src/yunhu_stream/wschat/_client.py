"""``WsChat``: one user's connection to a WebSocket chat server, streams included."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from .. import _validate as validate
from .._buffer import TranscriptBuffer
from .._exceptions import (
    ClosedError,
    ConfigurationError,
    FrameError,
    FrameRefusedError,
    HTTPStatusError,
    ResponseTimeoutError,
    YunhuError,
)
from .._lifecycle import Lifecycle
from .._log import get_logger
from .._retry import RetryPolicy
from .._streamer import Streamer
from .._transport import parse_envelope, read_capped, request, ws_connect
from .._types import MessageInfo, Recipient, Target
from ._delivery import WsDelivery
from ._events import WsErrorEvent, WsEvent, WsMessage, WsStreamPiece
from ._protocol import STREAM, TEXT, Frame, packet, parse_frame

log = get_logger("wschat")

ENDPOINT = "wschat"
_SEEN_KEPT = 10_000


class _Disconnected(Exception):
    """The connection went away while a frame waited for its ack (internal)."""


class WsChat(Lifecycle):
    """A connection to a WebSocket chat server for one user; use it with ``async with``.

    Replies stream as in :meth:`yunhu_stream.Bot.stream`: ``async with
    chat.stream(to="user:2") as s: await s.write(...)`` with the same write/close/abort,
    backpressure and statistics; the receiver sees ``stream`` frames growing and then
    one ``text`` frame with the whole text (docs/wschat.md).

    The connection is kept up: when it drops, it is opened again with backoff, groups
    are joined again, and a reply interrupted by the drop is finished after
    reconnecting by its final frame (idempotent by ``msgId``: never shown twice).

    Args:
        url: ``ws://host:port/chat`` (or ``wss://``); the token is added as ``?token=``.
        token: The token from the service's token API (:meth:`fetch_token`); by default
            the ``YUNHU_WSCHAT_TOKEN`` environment variable.
        reconnect_attempts: Connection attempts in a row before the chat gives up.
        reconnect_max_wait: Seconds of backoff those attempts may spend in all.
        ack_timeout: Seconds a whole message or a stream's final frame waits for the
            server's ack before it is sent again on a new connection.
        max_buffer_bytes: Default bound of a stream's unsent text.
        max_message_bytes: Default size at which a stream rolls over into a new message
            (the final frame holds the whole message, so it must stay under the
            server's frame limit).
        idle_timeout: Seconds without a write after which a stream ends itself.
        max_events: Incoming events kept for :meth:`events` before the oldest are dropped.
    """

    _closed_error = ClosedError

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        reconnect_attempts: int = 10,
        reconnect_max_wait: float = 30.0,
        ack_timeout: float = 10.0,
        max_buffer_bytes: int = 1024 * 1024,
        max_message_bytes: int | None = 256 * 1024,
        idle_timeout: float | None = None,
        max_events: int = 10_000,
    ) -> None:
        parts = urlsplit(validate.text("url", url))
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ConfigurationError(f"url must be ws://HOST[:PORT]/PATH or wss://…, not {url!r}")
        if "token=" in parts.query:
            raise ConfigurationError("pass the token as token=, not in the url")
        token = os.environ.get("YUNHU_WSCHAT_TOKEN") if token is None else token
        self._token = validate.text("token", token)
        self.url = url
        self._policy = RetryPolicy(
            validate.integer("reconnect_attempts", reconnect_attempts, minimum=1),
            validate.seconds("reconnect_max_wait", reconnect_max_wait, zero=True),
        )
        self.ack_timeout = validate.seconds("ack_timeout", ack_timeout)
        self.max_buffer_bytes = validate.integer("max_buffer_bytes", max_buffer_bytes, minimum=1)
        self.max_message_bytes = validate.optional_integer(
            "max_message_bytes", max_message_bytes, minimum=64)
        self.idle_timeout = validate.optional_seconds("idle_timeout", idle_timeout)
        self.max_events = validate.integer("max_events", max_events, minimum=1)
        self.connects = 0  #: connections opened so far (1 + reconnects)
        self.dropped_events = 0  #: incoming events dropped because max_events were unread
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._failure: YunhuError | None = None
        self._task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._acks: dict[str, asyncio.Future[None]] = {}
        self._groups: set[str] = set()
        self._events: deque[WsEvent] | None = None
        self._events_ready = asyncio.Event()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __repr__(self) -> str:
        return f"<WsChat {self.url} state={self.state.value} connected={self.connected}>"

    @staticmethod
    async def fetch_token(
        base_url: str, *, app_key: str, app_secret: str, user_id: str | int
    ) -> str:
        """Ask the service's token API (``POST {base_url}/chat/oauth/token``) for a token.

        Raises:
            APIError: the service refused (wrong key or secret: its code and message).
            TransportError, HTTPStatusError, InvalidResponseError: as for any call.
        """
        endpoint = "chat/oauth/token"
        url = validate.text("base_url", base_url).rstrip("/") + "/" + endpoint
        body = {"appKey": app_key, "appSecret": app_secret, "userId": str(user_id)}
        async with aiohttp.ClientSession() as session, request(
            session, "POST", url, endpoint=endpoint, secrets=[app_secret], json=body,
        ) as resp:
            data = parse_envelope(resp.status, await read_capped(resp, 64 * 1024, endpoint),
                                  endpoint, [app_secret])
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConfigurationError(f"{endpoint}: the answer holds no token")
        return token

    # -- the connection -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._connected.is_set() and self._failure is None and self._ws is not None

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()
        self._task = asyncio.get_running_loop().create_task(
            self._keep_connected(), name="yunhu-stream wschat connection")
        waiter = asyncio.ensure_future(self._connected.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._failure is not None:
            raise self._failure

    async def _close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self._fail(ClosedError("this WsChat has been closed"))

    def _fail(self, error: YunhuError) -> None:
        """The chat gave up (or was closed): everything waiting learns why."""
        if self._failure is None:
            self._failure = error
        self._connected.set()  # wake waiters: they find the failure
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(self._failure)
        self._events_ready.set()

    async def _keep_connected(self) -> None:
        assert self._session is not None
        url = self.url + ("&" if "?" in self.url else "?") + urlencode({"token": self._token})
        budget = self._policy.budget()
        while True:
            try:
                ws = await ws_connect(self._session, url, endpoint=ENDPOINT,
                                      secrets=[self._token], heartbeat=20)
            except YunhuError as exc:
                refused = isinstance(exc, HTTPStatusError) and exc.status < 500
                if refused or not await budget.backoff(exc, log, "wschat_reconnect"):
                    log.warning("wschat_gave_up", error=type(exc).__name__, detail=str(exc))
                    self._fail(exc)
                    return
                continue
            budget = self._policy.budget()
            self.connects += 1
            self._ws = ws
            log.debug("wschat_connected", connects=self.connects)
            try:
                await self._rejoin(ws)
                self._connected.set()
                await self._read(ws)
            except (aiohttp.ClientError, OSError, RuntimeError):
                pass  # lost while re-joining: connect again
            finally:
                self._connected.clear()
                self._ws = None
                for fut in self._acks.values():
                    if not fut.done():
                        fut.set_exception(_Disconnected())
                await ws.close()
            log.info("wschat_disconnected", code=ws.close_code)

    async def _rejoin(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for group in sorted(self._groups):
            await ws.send_str(Frame(type="join", target=group,
                                    msg={"msgId": uuid.uuid4().hex}).to_json())

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = parse_frame(message.data, server=True)
            except FrameError as exc:
                self._emit(WsErrorEvent(f"unreadable frame from the server: {exc}",
                                        raw=str(message.data)[:300]))
                continue
            self._dispatch(frame)

    def _dispatch(self, frame: Frame) -> None:
        msg_id = frame.msg_id
        if frame.type == "ack":
            fut = self._acks.get(msg_id or "")
            if fut is not None and not fut.done():
                fut.set_result(None)
            return
        if frame.type == "error":
            fut = self._acks.get(msg_id or "")
            if fut is not None and not fut.done():
                fut.set_exception(FrameRefusedError(frame.content or "no reason given"))
            self._emit(WsErrorEvent(frame.content or "no reason given", msg_id=msg_id))
            return
        if frame.type not in ("single", "group") or frame.source is None:
            return
        if frame.msg_type == STREAM:
            self._emit(WsStreamPiece(frame.type, frame.source, frame.target or "", msg_id,
                                     frame.seq, frame.content, frame))
            return
        if msg_id is not None:  # a whole message: shown once, however often it comes
            key = (frame.source, msg_id)
            if key in self._seen:
                return
            self._seen[key] = None
            if len(self._seen) > _SEEN_KEPT:
                self._seen.popitem(last=False)
        self._emit(WsMessage.from_frame(frame))

    def _emit(self, event: WsEvent) -> None:
        events = self._events
        if events is None:
            return  # nobody reads events: don't keep them
        if len(events) >= self.max_events:
            events.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1:
                log.warning("wschat_events_dropped", max_events=self.max_events)
        events.append(event)
        self._events_ready.set()

    async def events(self) -> AsyncIterator[WsEvent]:
        """Incoming frames as typed events, in order, until the chat is closed.

        Events arriving before the first call are not kept. A whole message (or a
        stream's final frame) that arrives twice is yielded once.
        """
        if self._events is None:
            self._events = deque()
        events = self._events
        while True:
            while events:
                yield events.popleft()
            if self._failure is not None:
                return
            self._events_ready.clear()
            await self._events_ready.wait()

    # -- sending --------------------------------------------------------------------------

    async def send_frame(self, frame: Frame, *, ack: bool = False) -> None:
        """Send one frame, on the current connection or the next one.

        With ``ack``, wait until the server acknowledges it (the frame needs a
        ``msg.msgId``), sending it again on a new connection when the old one went
        away first or no ack came within ``ack_timeout``.

        Raises:
            FrameRefusedError: the server answered with an error frame.
            ClosedError: the chat was closed.
            TransportError, HTTPStatusError: the chat could not connect again.
        """
        if ack and frame.msg_id is None:
            raise ConfigurationError("a frame sent with ack=True needs msg.msgId")
        text = frame.to_json()
        while True:
            await self._connected.wait()
            if self._failure is not None:
                raise self._failure
            ws = self._ws
            if ws is None or ws.closed:
                await asyncio.sleep(0)  # the connection task is noticing the drop
                continue
            fut: asyncio.Future[None] | None = None
            if ack:
                assert frame.msg_id is not None
                fut = self._acks[frame.msg_id] = asyncio.get_running_loop().create_future()
            try:
                try:
                    async with self._send_lock:
                        await ws.send_str(text)
                except (aiohttp.ClientError, OSError, RuntimeError):
                    continue  # the connection went away under us: send on the next one
                if fut is None:
                    return
                try:
                    await asyncio.wait_for(asyncio.shield(fut), self.ack_timeout)
                    return
                except _Disconnected:
                    continue
                except asyncio.TimeoutError:
                    log.info("wschat_ack_timeout", msg_id=frame.msg_id)
                    if ws is self._ws and not ws.closed:
                        raise ResponseTimeoutError(
                            f"{ENDPOINT}: no ack within {self.ack_timeout:g} s",
                            endpoint=ENDPOINT) from None
                    continue
            finally:
                if fut is not None:
                    self._acks.pop(frame.msg_id or "", None)
                    if not fut.done():
                        fut.cancel()

    async def send(
        self, to: Target, text: str, *, msg_type: str = TEXT, extra: Any = None
    ) -> MessageInfo:
        """Send a whole message and wait for the server's ack.

        Args:
            to: ``"user:ID"``, ``"group:ID"``, a Recipient or an event to reply to.
            text: The message (``msg.content``).
            msg_type: ``"text"`` or a custom type.
            extra: Any JSON value, sent as ``extra``.
        """
        self._check_not_closed()
        recipient = Recipient.coerce(to)
        validate.text("text", text, empty=True)
        validate.text("msg_type", msg_type)
        if msg_type == STREAM:
            raise ConfigurationError("msg_type 'stream' is for stream(); send() sends whole")
        msg_id = uuid.uuid4().hex
        await self.send_frame(Frame(
            type=chat_type(recipient), target=recipient.id, msg_type=msg_type, extra=extra,
            msg=packet(msg_id, text)), ack=True)
        return MessageInfo(msg_id, recipient.id, recipient.type, "send")

    async def join(self, group: str) -> None:
        """Join ``group``: its messages reach this chat (again after every reconnect)."""
        group = validate.identifier("group", group)
        self._check_not_closed()
        self._groups.add(group)
        await self.send_frame(Frame(type="join", target=group,
                                    msg={"msgId": uuid.uuid4().hex}), ack=True)

    async def leave(self, group: str) -> None:
        """Leave ``group``."""
        group = validate.identifier("group", group)
        self._check_not_closed()
        self._groups.discard(group)
        await self.send_frame(Frame(type="leave", target=group,
                                    msg={"msgId": uuid.uuid4().hex}), ack=True)

    def stream(
        self,
        to: Target,
        *,
        max_buffer_bytes: int | None = None,
        max_message_bytes: int | None = None,
        max_text_bytes: int | None = None,
    ) -> Streamer:
        """Start a streamed reply to ``to``; use it with ``async with``.

        The same :class:`~yunhu_stream.Streamer` as :meth:`Bot.stream` returns:
        nothing is sent until the first non-empty write; writes are coalesced (a lone
        write goes at once, a backlog in few frames); ``close()`` sends the final
        frame and waits for its ack; ``message_info.msg_id`` is the reply's msgId.

        Raises:
            ConfigurationError: a bad ``to`` or size.
            ClosedError: the chat was closed.
        """
        self._check_not_closed()
        recipient = Recipient.coerce(to)
        buffer = TranscriptBuffer(
            self.max_buffer_bytes if max_buffer_bytes is None
            else validate.integer("max_buffer_bytes", max_buffer_bytes, minimum=1),
            self.max_message_bytes if max_message_bytes is None
            else validate.integer("max_message_bytes", max_message_bytes, minimum=64),
            validate.optional_integer("max_text_bytes", max_text_bytes, minimum=0),
        )
        stream_log = log.bind(target=str(recipient))
        delivery = WsDelivery(self, recipient, chat_type(recipient), buffer, stream_log,
                              idle_timeout=self.idle_timeout)
        return Streamer(recipient, "text", buffer, delivery, stream_log)


def chat_type(recipient: Recipient) -> str:
    """The frame ``type`` for a recipient: ``single`` for a user, ``group`` for a group."""
    return "single" if recipient.type == "user" else "group"
