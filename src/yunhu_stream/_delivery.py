"""The background task behind a Streamer: the send-stream request, retries and recovery.

Failures are handled by when they happened (docs/reliability.md):

* nothing accepted yet (connection refused, 1007, 5xx before the body ended):
  retry with full-jitter backoff, replaying the transcript;
* part of the message may be showing (dropped mid-body, no answer, 5xx after the
  body): find that message with ``bot/messages`` and finish it with ``bot/edit``,
  or send the whole text with ``bot/send`` if it cannot be found;
* terminal API errors (1002-1005, -1, …): stop and keep the error for the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import anyio
import structlog

from . import errors
from ._buffer import TranscriptBuffer
from ._http import (
    TRANSPORT_EXCEPTIONS,
    backoff_delay,
    chainable,
    message_info,
    parse_envelope,
)
from ._http import translate as translate_exc
from ._types import MessageInfo, Recipient

if TYPE_CHECKING:
    from ._client import Bot

ENDPOINT = "bot/send-stream"
_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}
_LOOKBACK_MESSAGES = 50
_CLOCK_SKEW_MS = 10_000
COALESCE_PASSES = 16  # how far YunHu's clock may run behind ours

Failure = Literal["early", "probe", "mid", "terminal"]


class Delivery:
    """Runs as one task per stream; all the network work of a Streamer happens here."""

    def __init__(
        self,
        bot: Bot,
        recipient: Recipient,
        content_type: str,
        buffer: TranscriptBuffer,
        logger: Any,
        *,
        buttons: list[list[dict[str, Any]]] | None,
        at: list[str] | None,
        reply_to: str | None,
    ) -> None:
        self._bot = bot
        self._recipient = recipient
        self._content_type = content_type
        self._buffer = buffer
        self._log: structlog.typing.FilteringBoundLogger = logger
        self._buttons = buttons
        self._at = at
        self._reply_to = reply_to
        self.messages: list[MessageInfo] = []
        self.error: errors.YunhuError | None = None
        self.error_traceback: Any = None
        self.bytes_sent = 0
        self.chunks_sent = 0
        self.attempts = 0
        self._attempt_sent = 0
        self._attempt_started_ms = 0
        self._body_ended = False
        self._scope: anyio.CancelScope | None = None
        self._slot: list[float] | None = None
        self._live_attempt = 0  # the attempt whose body generator may still send
        self._writer_task: asyncio.Task[Any] | None = None
        self._first_chunk_at: float | None = None
        self._last_text = ""
        self._decorated: str | None = None  # msg id that got buttons/mentions

    # -- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver every message of the stream; store (never raise) a YunhuError."""
        started = time.monotonic()
        self._log.info("stream_opened", content_type=self._content_type)
        try:
            if self._reply_to is not None:
                await self._deliver_whole(parent_id=self._reply_to)
            else:
                while True:
                    info = await self._deliver_message()
                    self.messages.append(info)
                    self._bot._delivered.append(info.msg_id)
                    if self._buttons or self._at:  # only the closing edit needs it
                        self._last_text = self._buffer.message_text()
                    self._buffer.next_message()
                    if not await self._more_to_come():
                        break
            await self._decorate()
        except errors.YunhuError as exc:
            self._fail(exc)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a bug must not lose the caller's text
            broken = errors.StreamBrokenError(f"stream failed unexpectedly: {exc!r}")
            broken.__cause__ = exc
            self._fail(broken)
        else:
            last = self.messages[-1]
            self._log.info(
                "stream_closed",
                msg_id=last.msg_id,
                delivery=last.delivery,
                messages=len(self.messages),
                bytes=len(self._buffer.data),
                chunks=self.chunks_sent,
                attempts=self.attempts,
                ttfb_ms=None if self._first_chunk_at is None
                else round((self._first_chunk_at - started) * 1000, 3),
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )

    def _fail(self, exc: errors.YunhuError) -> None:
        self.error = exc
        self.error_traceback = exc.__traceback__  # re-raised from here, so it cannot grow
        self._buffer.wake_all()
        self._log.warning(
            "stream_failed", error=type(exc).__name__, detail=str(exc),
            bytes=len(self._buffer.data), messages=len(self.messages),
        )

    async def _more_to_come(self) -> bool:
        buf = self._buffer
        while len(buf.data) == buf.message_start and not buf.eof:
            await buf.wait_for_data(None)
        return len(buf.data) > buf.message_start

    # -- one message: stream it, retrying early failures -------------------------------

    async def _deliver_message(self) -> MessageInfo:
        bot = self._bot
        attempt, waited = 0, 0.0
        while True:
            try:
                return await self._post_stream()
            except errors.YunhuError as exc:
                kind = self._classify(exc)
                if kind == "terminal":
                    raise
                if kind == "probe":
                    # The server refused after taking part of the body: whether the chat
                    # shows some of it decides between finishing that message and retrying.
                    found = await self._find_partial() if bot.recover else None
                    if found:
                        return await self._recover(exc, found)
                    kind = "early"
                if kind == "mid":
                    if not bot.recover:
                        raise errors.StreamBrokenError(
                            f"the stream broke after part of the message was sent: {exc}"
                        ) from exc
                    return await self._recover(exc, await self._find_partial())
                delay = backoff_delay(attempt, 0.2, 5.0)
                if isinstance(exc, errors.RateLimitedError) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                if (
                    not bot.recover
                    or attempt + 1 >= bot.retry_attempts
                    or waited + delay > bot.retry_max_wait
                ):
                    raise
                self._log.info("stream_retry", attempt=attempt + 1, delay_s=round(delay, 3),
                               error=type(exc).__name__)
                attempt += 1
                waited += delay
                await asyncio.sleep(delay)

    def _classify(self, exc: errors.YunhuError) -> Failure:
        if isinstance(exc, errors.RateLimitedError):
            return "probe" if self._body_ended else "early"
        if not isinstance(
            exc, (errors.TransportError, errors.HTTPStatusError, errors.InvalidResponseError)
        ):
            return "terminal"  # API codes other than 1007, a closed Bot, …
        if isinstance(exc, errors.HTTPStatusError) and exc.status < 500 and exc.status != 429:
            return "terminal"
        answered_early = not self._body_ended and isinstance(
            exc, (errors.HTTPStatusError, errors.InvalidResponseError)
        )
        if self._attempt_sent == 0:
            return "early"
        return "probe" if answered_early else "mid"

    async def _post_stream(self) -> MessageInfo:
        bot = self._bot
        self._slot = await bot._throttle(ENDPOINT)
        session = bot._get_session()
        self.attempts += 1
        self._attempt_started_ms = int(time.time() * 1000)
        self._attempt_sent = 0
        self._body_ended = False
        params = {
            "token": bot._token,
            "recvId": self._recipient.id,
            "recvType": self._recipient.type,
            "contentType": self._content_type,
        }
        # No read timeout inside aiohttp: it would also run while a long body is
        # still being sent. The response timeout starts when the body ends (_body).
        timeout = aiohttp.ClientTimeout(total=None, connect=bot.connect_timeout)
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                async with session.post(
                    bot._url(ENDPOINT), params=params, data=self._body(self.attempts),
                    headers=_HEADERS, allow_redirects=False, timeout=timeout,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
            except TRANSPORT_EXCEPTIONS as exc:
                raise translate_exc(exc, ENDPOINT, bot._token) from chainable(exc, bot._token)
            finally:
                # An early answer leaves aiohttp's body writer running; stop it with an
                # error rather than letting it end the body on a closed connection.
                self._live_attempt = 0
                self._buffer.wake_all()
                # Whatever that writer task still raises (aiohttp's write_eof on a
                # connection the server closed) was already answered for by the
                # response or error we have; retrieve it so asyncio does not report it.
                writer, self._writer_task = self._writer_task, None
                if writer is not None:
                    writer.add_done_callback(_retrieve)
        if scope.cancelled_caught:
            raise errors.ResponseTimeoutError(
                f"{ENDPOINT}: no response within {bot.response_timeout:g} s after the body ended",
                endpoint=ENDPOINT,
            )
        data = parse_envelope(status, raw, ENDPOINT, bot._token)
        if not self._body_ended:
            raise errors.InvalidResponseError(
                status=status, body="success answered before the body ended", endpoint=ENDPOINT
            )
        return message_info(data, ENDPOINT, "stream")

    async def _body(self, attempt: int) -> AsyncIterator[bytes]:
        """The request body: replays the message so far, then follows the writes."""
        buf, idle = self._buffer, self._bot.idle_timeout
        buf.taken = buf.message_start
        self._live_attempt = attempt
        self._writer_task = asyncio.current_task()  # aiohttp's body writer runs this
        while True:
            if buf.aborted or self._live_attempt != attempt:
                raise errors.StreamClosedError("body cut off: stream aborted or answered")
            chunk = buf.take()
            if chunk is None:
                if buf.message_done():
                    break
                if not await buf.wait_for_data(idle):
                    self._log.info("stream_idle_closed", idle_timeout_s=idle)
                    buf.eof = True
                    continue
                # Woken by a write: let the event loop run again while that brings more,
                # so a producer that writes on every loop iteration shares one chunk (and
                # one send) across many writes. A lone write costs one loop pass.
                size = len(buf.data)
                for _ in range(0 if buf.eof else COALESCE_PASSES):
                    await asyncio.sleep(0)
                    if len(buf.data) == size:
                        break
                    size = len(buf.data)
                continue
            self.bytes_sent += len(chunk)
            self.chunks_sent += 1
            self._attempt_sent += len(chunk)
            if self._first_chunk_at is None:
                self._first_chunk_at = time.monotonic()
            if self._slot is not None:  # the request leaves now: count it from here
                self._slot[0] = asyncio.get_running_loop().time()
                self._slot = None
            yield chunk
        self._body_ended = True
        if self._scope is not None:
            self._scope.deadline = anyio.current_time() + self._bot.response_timeout

    # -- recovery: finish a partly shown message by editing it ---------------------------

    async def _recover(self, cause: errors.YunhuError, found: str | None) -> MessageInfo:
        buf, bot = self._buffer, self._bot
        buf.split = None  # after a failure the rest stays in this one message
        buf.unbounded = True
        buf.deliver_all()
        self._log.warning("stream_recovering", error=type(cause).__name__,
                          found_msg_id=found, sent_bytes=self._attempt_sent)
        loop = asyncio.get_running_loop()
        next_edit, last_text = loop.time(), None
        last_size, last_growth = len(buf.data), loop.time()
        wait = bot.edit_interval if bot.idle_timeout is None else min(
            bot.edit_interval, bot.idle_timeout)
        while not buf.eof:
            await buf.wait_for_data(wait)
            buf.deliver_all()
            now = loop.time()
            if len(buf.data) != last_size:
                last_size, last_growth = len(buf.data), now
            elif bot.idle_timeout is not None and now - last_growth >= bot.idle_timeout:
                self._log.info("stream_idle_closed", idle_timeout_s=bot.idle_timeout)
                buf.eof = True
            text = buf.message_text()
            if found and not buf.eof and now >= next_edit and text != last_text:
                next_edit = now + bot.edit_interval
                try:
                    await bot.edit(found, self._recipient, text, content_type=self._content_type)
                    last_text = text
                except errors.YunhuError as exc:
                    self._log.warning("recovery_edit_failed", error=type(exc).__name__)
        buf.deliver_all()  # writes may have landed while the lookup was in flight
        text = buf.message_text()
        if found:
            try:
                await bot.edit(found, self._recipient, text, content_type=self._content_type,
                               buttons=self._buttons, at=self._at)
            except errors.YunhuError as exc:
                self._log.warning("recovery_edit_failed", error=type(exc).__name__, final=True)
            else:
                self._decorated = found
                return MessageInfo(found, self._recipient.id, self._recipient.type, "stream+edit")
        return await self._send(text, parent_id=None)

    async def _find_partial(self) -> str | None:
        """The id of the message the failed attempt left in the chat, if it can be found.

        That is the newest bot message, created no earlier than the attempt (less
        clock skew), that this Bot did not deliver itself, and whose text is a
        prefix of ours. Streamed messages (marked with YunHu's AI ``tip``) win ties.
        """
        text = self._buffer.message_text()
        delivered = self._bot._delivered
        try:
            items = await self._bot.messages(self._recipient, before=_LOOKBACK_MESSAGES)
        except errors.YunhuError as exc:
            self._log.warning("recovery_lookup_failed", error=type(exc).__name__)
            return None
        best: tuple[int, bool, str] | None = None
        for item in items:
            content = item.get("content")
            shown = content.get("text") if isinstance(content, dict) else None
            msg_id, sent_at = item.get("msgId"), item.get("sendTime")
            if (
                item.get("senderType") == "bot"
                and isinstance(shown, str) and shown and text.startswith(shown)
                and isinstance(msg_id, str) and msg_id not in delivered
                and isinstance(sent_at, int)
                and sent_at >= self._attempt_started_ms - _CLOCK_SKEW_MS
            ):
                candidate = (sent_at, isinstance(content, dict) and "tip" in content, msg_id)
                if best is None or candidate[:2] >= best[:2]:
                    best = candidate
        return best[2] if best else None

    # -- whole-message paths ----------------------------------------------------------

    async def _deliver_whole(self, parent_id: str | None) -> None:
        """Collect the whole text, then send it once (used for quoted replies)."""
        buf = self._buffer
        buf.unbounded = True
        buf.deliver_all()
        while not buf.eof:
            if not await buf.wait_for_data(self._bot.idle_timeout):
                self._log.info("stream_idle_closed", idle_timeout_s=self._bot.idle_timeout)
                buf.eof = True
        buf.deliver_all()
        self.messages.append(await self._send(buf.message_text(), parent_id=parent_id))
        self._last_text = buf.message_text()

    async def _send(self, text: str, parent_id: str | None) -> MessageInfo:
        info = await self._bot.send(
            self._recipient, text, content_type=self._content_type,
            buttons=self._buttons, at=self._at, parent_id=parent_id,
        )
        self._decorated = info.msg_id
        return info

    async def _decorate(self) -> None:
        """Attach buttons and mentions with one edit, once the text is complete."""
        if not (self._buttons or self._at) or not self.messages:
            return
        last = self.messages[-1]
        if self._decorated == last.msg_id:
            return
        await self._bot.edit(
            last.msg_id, self._recipient, self._last_text,
            content_type=self._content_type, buttons=self._buttons, at=self._at,
        )
        self._decorated = last.msg_id


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
