"""The background task behind a YunHu Streamer: the send-stream request and its retries.

Failures are handled by when they happened (docs/reliability.md):

* nothing accepted yet (connection refused, 1007, 5xx before the body ended):
  retry with full-jitter backoff, replaying the transcript;
* part of the message may be showing (dropped mid-body, no answer, 5xx after the
  body): hand over to :mod:`._recovery`, which finds that message and finishes it
  with ``bot/edit``, or sends the whole text with ``bot/send``;
* terminal API errors (1002-1005, -1, …): stop and keep the error for the caller.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal

from ._api import Api, message_info
from ._buffer import TranscriptBuffer
from ._content import content
from ._exceptions import (
    ConnectError,
    HTTPStatusError,
    InvalidResponseError,
    RateLimitedError,
    ResponseTimeoutError,
    StreamBrokenError,
    StreamClosedError,
    TransportError,
    YunhuError,
)
from ._first_chunk import FirstChunk
from ._log import DEBUG, Logger
from ._ratelimit import Slot
from ._recovery import Recovery
from ._transport import STREAM_ENDPOINT, BodySink
from ._types import MessageInfo, Recipient

WRITE_THROUGH_AFTER = 0.001
"""Seconds the body must have been quiet before a write is sent by the writer itself:
writes closer together than this are coalesced by the body instead."""

Failure = Literal["early", "probe", "mid", "terminal"]


def _cancelled_by_others(task: asyncio.Task[Any] | None) -> bool:
    """After our own cancel of ``task`` was caught: whether someone else cancelled it too
    (then the cancellation must go on). Python 3.10 cannot tell, and says no."""
    uncancel = getattr(task, "uncancel", None)
    return uncancel is not None and uncancel() > 0


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The Bot options every stream's delivery follows (see :class:`~yunhu_stream.Bot`)."""

    recover: bool
    idle_timeout: float | None
    edit_interval: float
    response_timeout: float


class Delivery:
    """Runs as one task per stream; all the network work of a YunHu Streamer happens here.

    It is the Streamer's *delivery*: anything with ``run()``, ``messages``, ``error``
    and the counters below can stand in its place (another destination).
    """

    def __init__(
        self,
        api: Api,
        settings: StreamSettings,
        recipient: Recipient,
        content_type: str,
        buffer: TranscriptBuffer,
        log: Logger,
        *,
        buttons: list[list[dict[str, Any]]] | None,
        at: list[str] | None,
        reply_to: str | None,
        first_chunk: FirstChunk | None = None,
        gap: float | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.recipient = recipient
        self.content_type = content_type
        self.buffer = buffer
        self.log = log
        self.buttons = buttons
        self.at = at
        self._reply_to = reply_to
        self.first_chunk = first_chunk  #: holds the stream's first chunk (see FirstChunk)
        self.gap = gap  #: seconds of silence that end the current message
        self.messages: list[MessageInfo] = []
        self.error: YunhuError | None = None
        self.error_traceback: Any = None
        self.bytes_sent = 0
        self.chunks_sent = 0
        self.attempts = 0
        self.attempt_sent = 0  #: bytes the current (or last) attempt handed to the network
        self.attempt_started_ms = 0  #: wall-clock start of that attempt, in ms
        self._body_ended = False
        self._waiting: asyncio.Task[Any] | None = None  # awaiting the request's answer
        self._answer_timer: asyncio.TimerHandle | None = None  # response_timeout, from body end
        self._late = False  # that timer cancelled the request
        self._slot: Slot | None = None
        self._live_attempt = 0  # the attempt whose body may still send
        self._sink: BodySink | None = None  # where that body writes
        self._quiet_since = 0.0  # loop time of its last chunk (or of its start)
        self._first_chunk_at: float | None = None
        self._last_text = ""
        self.decorated: str | None = None  #: msg id that got buttons/mentions

    def attach(self, buttons: list[list[dict[str, Any]]] | None, at: list[str] | None) -> None:
        """Decorate the last message with these too (the caller checked them)."""
        if buttons is not None:
            self.buttons = buttons
        if at:
            self.at = list(dict.fromkeys([*(self.at or []), *at]))

    # -- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver every message of the stream; store (never raise) a YunhuError."""
        started = time.monotonic()
        self.log.debug("stream_opened", content_type=self.content_type)
        self.api.streams.add(self)
        shared, chat = self.api.shared, f"{self.recipient.type}:{self.recipient.id}"
        key, started_ms = "", int(time.time() * 1000)
        if shared is not None:  # other processes' recoveries must know of this stream
            key = shared.new_stream_key()
            await shared.stream_started(key, chat, started_ms)
        try:
            if self._reply_to is not None:
                await self._deliver_whole(parent_id=self._reply_to)
            else:
                if self.first_chunk is not None:
                    await self._hold_first_chunk(self.first_chunk)
                while True:
                    info = await self._deliver_message()
                    self.messages.append(info)
                    self.api.delivered.append(info.msg_id)
                    if shared is not None:
                        await shared.stream_progress(key, chat, started_ms, self.bytes_sent,
                                                     info.msg_id)
                    # The closing edit's text: buttons may still be attached after
                    # this message ended (at a gap or a rollover) with no more text.
                    self._last_text = self.buffer.message_text()
                    self.buffer.next_message()
                    if not await self.buffer.more_to_come(self.settings.idle_timeout,
                                                          self.log):
                        break
            await self._decorate()
        except YunhuError as exc:
            self._fail(exc)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a bug must not lose the caller's text
            broken = StreamBrokenError(f"stream failed unexpectedly: {exc!r}")
            broken.__cause__ = exc
            self._fail(broken)
        else:
            if self.log.is_enabled_for(DEBUG):
                last = self.messages[-1]
                self.log.debug(
                    "stream_closed",
                    msg_id=last.msg_id,
                    delivery=last.delivery,
                    messages=len(self.messages),
                    bytes=self.buffer.written,
                    chunks=self.chunks_sent,
                    attempts=self.attempts,
                    ttfb_ms=None if self._first_chunk_at is None
                    else round((self._first_chunk_at - started) * 1000, 3),
                    duration_ms=round((time.monotonic() - started) * 1000, 3),
                )
        finally:
            self.api.streams.discard(self)
            if shared is not None:
                await shared.stream_ended(key, chat)

    def _fail(self, exc: YunhuError) -> None:
        self.error = exc
        self.error_traceback = exc.__traceback__  # re-raised from here, so it cannot grow
        self.buffer.wake_all()
        self.log.warning(
            "stream_failed", error=type(exc).__name__, detail=str(exc),
            bytes=self.buffer.written, messages=len(self.messages),
        )

    async def _hold_first_chunk(self, policy: FirstChunk) -> None:
        """Wait until the policy lets the first chunk go (before the request starts)."""
        buf, loop = self.buffer, asyncio.get_running_loop()
        started = loop.time()
        while not buf.aborted:
            waited = loop.time() - started
            if policy.ready(buf.message_text(), waited, ending=buf.eof):
                return
            left = None if policy.max_wait is None else max(0.0, policy.max_wait - waited)
            await self.wait_for_writes(left)

    def wait_for_writes(self, at_most: float | None = None) -> Awaitable[object]:
        """Wait for a write or the end, at most ``at_most`` s; end the stream once idle
        (see :meth:`TranscriptBuffer.wait_for_writes`)."""
        return self.buffer.wait_for_writes(self.settings.idle_timeout, at_most, self.log)

    def sent_text(self) -> str:
        """What the current attempt has sent of the current message (what its message
        in the chat can show at most)."""
        return self.buffer.sent_text(self.attempt_sent)

    # -- one message: stream it, retrying early failures -------------------------------

    async def _deliver_message(self) -> MessageInfo:
        settings = self.settings
        budget = None  # made at the first retry: most streams never need one
        while True:
            try:
                return await self._post_stream()
            except YunhuError as exc:
                kind = self._classify(exc)
                if kind == "terminal":
                    raise
                if kind == "probe":
                    # The server refused after taking part of the body: whether the chat
                    # shows some of it decides between finishing that message and retrying.
                    recovery = Recovery(self)
                    found = await recovery.find_partial() if settings.recover else None
                    if found:
                        return await recovery.finish(exc, found)
                    kind = "early"
                if kind == "mid":
                    if not settings.recover:
                        raise StreamBrokenError(
                            f"the stream broke after part of the message was sent: {exc}"
                        ) from exc
                    recovery = Recovery(self)
                    return await recovery.finish(exc, await recovery.find_partial())
                if not settings.recover:
                    raise
                budget = budget or self.api.retry.budget()
                if not await budget.backoff(exc, self.log, "stream_retry"):
                    raise

    def _classify(self, exc: YunhuError) -> Failure:
        if isinstance(exc, RateLimitedError):
            return "probe" if self._body_ended else "early"
        if not isinstance(exc, (TransportError, HTTPStatusError, InvalidResponseError)):
            return "terminal"  # API codes other than 1007, a closed Bot, …
        if isinstance(exc, HTTPStatusError) and exc.status < 500 and exc.status != 429:
            return "terminal"
        if self.attempt_sent == 0 or isinstance(exc, ConnectError):
            return "early"
        answered_early = not self._body_ended and isinstance(
            exc, (HTTPStatusError, InvalidResponseError)
        )
        return "probe" if answered_early else "mid"

    async def _post_stream(self) -> MessageInfo:
        limits = self.api.limits
        self._slot = None if limits.rate is None else await limits.acquire(STREAM_ENDPOINT)
        self.attempts += 1
        self.attempt_started_ms = int(time.time() * 1000)
        self.attempt_sent = 0
        self._body_ended = False
        params = {
            "recvId": self.recipient.id,
            "recvType": self.recipient.type,
            "contentType": self.content_type,
        }
        task = self._waiting = asyncio.current_task()
        self._late = False
        try:
            data = await self.api.transport.post_stream(
                params, functools.partial(self._write_body, self.attempts))
        except asyncio.CancelledError:
            if not self._late or _cancelled_by_others(task):
                raise
            raise ResponseTimeoutError(
                f"{STREAM_ENDPOINT}: no response within {self.settings.response_timeout:g} s "
                "after the body ended",
                endpoint=STREAM_ENDPOINT,
            ) from None
        finally:
            if self._answer_timer is not None:
                self._answer_timer.cancel()
                self._answer_timer = None
            self._waiting = None
            # An early answer leaves the body able to send: stop it.
            self._live_attempt = 0
            self._sink = None
            self.buffer.wake_all()
        if not self._body_ended:
            raise InvalidResponseError(
                status=200, body="success answered before the body ended",
                endpoint=STREAM_ENDPOINT,
            )
        return message_info(data, STREAM_ENDPOINT, "stream")

    async def _write_body(self, attempt: int, sink: BodySink) -> None:
        """The request body: replays the message so far, then follows the writes.

        While it waits for writes, a write that finds the connection idle is sent by
        the writer itself (:meth:`_write_through`): no task switch between ``write()``
        and the socket. Writes that come faster than that are coalesced here.
        """
        buf = self.buffer
        buf.rewind()
        self._live_attempt = attempt
        self._sink = sink
        loop = asyncio.get_running_loop()
        self._quiet_since = loop.time()
        while True:
            if buf.aborted or self._live_attempt != attempt:
                raise StreamClosedError("body cut off: stream aborted or answered")
            chunk = buf.take()
            if chunk is None:
                if buf.message_done():
                    self._end_body()
                    await sink.end()
                    return
                size, gap = len(buf.data), self.gap
                buf.through = self._write_through
                try:
                    await self.wait_for_writes(
                        None if gap is None else max(0.0, self._quiet_since + gap - loop.time()))
                finally:
                    buf.through = None
                if buf.eof:
                    continue
                if (gap is not None and len(buf.data) == size and buf.split is None
                        and loop.time() - self._quiet_since >= gap
                        and buf.taken > buf.message_start):
                    # A long silence (a tool call, a slow model): end this message here;
                    # what comes next starts a new one.
                    self.log.debug("stream_gap_split", gap_s=gap)
                    buf.end_here()
                    continue
                await buf.coalesce()  # a fast producer shares one chunk and one send
                continue
            self._sent(chunk, loop.time())
            if buf.message_done():  # the last chunk: it goes out with the body's end
                self._end_body()
                await sink.end(chunk)
                return
            await sink.send(chunk)

    def _sent(self, chunk: bytes, now: float) -> None:
        """Count ``chunk`` as handed to the network (the one place that does)."""
        self.bytes_sent += len(chunk)
        self.chunks_sent += 1
        self.attempt_sent += len(chunk)
        if self._first_chunk_at is None:
            self._first_chunk_at = time.monotonic()
        if self._slot is not None:  # the request leaves now: count it from here
            self._slot.sent()
            self._slot = None
        self._quiet_since = now

    def _end_body(self) -> None:
        """The body is complete: from now on the answer has ``response_timeout``."""
        self._body_ended = True
        if self._waiting is not None and self._answer_timer is None:
            self._answer_timer = asyncio.get_running_loop().call_later(
                self.settings.response_timeout, self._answer_late)

    def _answer_late(self) -> None:
        if self._waiting is not None:
            self._late = True
            self._waiting.cancel()

    def _write_through(self) -> bool:
        """Called by a write while the body waits: send the new text at once when the
        body has been quiet for a while and the connection is idle. False (wake the
        body instead) when writes come fast (they coalesce) or the body has more to do
        than one chunk (a split reached, more than a chunk pending)."""
        buf, sink = self.buffer, self._sink
        now = asyncio.get_running_loop().time()
        if (
            sink is None
            or now - self._quiet_since < WRITE_THROUGH_AFTER
            or buf.eof
            or buf.aborted
            or not sink.ready()
        ):
            return False
        chunk = buf.take()
        if chunk is None:
            return False
        self._sent(chunk, now)
        sink.send_now(chunk)
        return len(buf.data) == buf.taken and not buf.message_done()

    # -- whole-message paths ----------------------------------------------------------

    async def _deliver_whole(self, parent_id: str | None) -> None:
        """Collect the whole text, then send it once (used for quoted replies)."""
        buf = self.buffer  # unbounded since Bot.stream() made it (see there)
        buf.deliver_all()
        while not buf.eof:
            await self.wait_for_writes()
        buf.deliver_all()
        # The buttons and mentions go on this one message: no closing edit follows.
        self.messages.append(await self.send_whole(
            buf.message_text(), parent_id=parent_id, buttons=self.buttons, at=self.at))

    async def send_whole(
        self, text: str, *, parent_id: str | None,
        buttons: list[list[dict[str, Any]]] | None, at: list[str] | None,
    ) -> MessageInfo:
        """``bot/send`` the text (with ``buttons`` and ``at``, which mark it decorated)."""
        info = await self.api.send(
            self.recipient, self.content_type, content(text, buttons, at), parent_id=parent_id,
        )
        if buttons or at:
            self.decorated = info.msg_id
        return info

    async def _decorate(self) -> None:
        """Attach buttons and mentions with one edit, once the text is complete."""
        if not (self.buttons or self.at) or not self.messages:
            return
        last = self.messages[-1]
        if self.decorated == last.msg_id:
            return
        await self.api.edit(
            last.msg_id, self.recipient, self.content_type,
            content(self._last_text, self.buttons, self.at),
        )
        self.decorated = last.msg_id
