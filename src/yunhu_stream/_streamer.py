"""``Streamer``: the caller-facing side of one streamed reply (write, close, abort)."""

from __future__ import annotations

import asyncio
import enum
import warnings
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

from ._buffer import TranscriptBuffer
from ._content import check_at, check_buttons, check_text
from ._exceptions import ConfigurationError, StreamClosedError, WouldBlockError, YunhuError
from ._log import Logger
from ._types import MessageInfo, Recipient


class StreamState(enum.Enum):
    """Where a Streamer is in its life."""

    IDLE = "idle"  #: created; nothing written, no request made
    OPEN = "open"  #: text has been written; the request is running
    CLOSING = "closing"  #: close() is finishing the message
    CLOSED = "closed"  #: finished (successfully or with an error)
    ABORTED = "aborted"  #: abandoned by abort() or an exception in the block


@dataclass(frozen=True)
class StreamStatistics:
    """What a caller may want to observe about a stream (see :attr:`Streamer.stats`)."""

    writes: int  #: non-empty writes accepted
    bytes_written: int  #: UTF-8 bytes accepted
    bytes_sent: int  #: bytes handed to the network, over all attempts
    chunks_sent: int  #: HTTP chunks sent, over all attempts
    buffered_bytes: int  #: written but not yet handed on
    max_buffer_bytes: int  #: the bound on ``buffered_bytes``
    attempts: int  #: send-stream requests made
    messages: int  #: messages delivered so far


class StreamDelivery(Protocol):
    """What carries a Streamer's text to its destination, as one background task.

    The YunHu ``Delivery`` is one; another destination (a WebSocket chat) provides
    its own. It reads the Streamer's :class:`TranscriptBuffer` and never raises
    from :meth:`run`: a failure is stored in :attr:`error` for the Streamer.
    """

    messages: list[MessageInfo]  #: delivered so far, in order
    error: YunhuError | None  #: the failure that ended the stream, if any
    error_traceback: Any  #: its traceback, re-raised as is
    bytes_sent: int
    chunks_sent: int
    attempts: int

    async def run(self) -> None:
        """Deliver everything written until EOF (or store the error)."""

    def attach(self, buttons: list[list[dict[str, Any]]] | None, at: list[str] | None) -> None:
        """Decorate the last message with these too (checked by the caller); a
        destination without buttons or mentions ignores them."""


@dataclass(frozen=True)
class PipeResult:
    """What :meth:`Streamer.pipe` wrote."""

    writes: int  #: non-empty pieces written
    chars: int  #: characters written


async def _deliver(delivery: StreamDelivery, closers: list[asyncio.Future[None]]) -> None:
    """The delivery task: run ``delivery``, then wake every ``close()`` waiting for it at
    once (not through a done callback: one loop pass less). It holds no reference to the
    Streamer, so a forgotten one is still collected (and warns)."""
    try:
        await delivery.run()
    finally:
        for waiter in closers:
            if not waiter.done():
                waiter.set_result(None)
        closers.clear()


_OPEN = StreamState.OPEN


class Streamer:
    """One message streamed into a chat as it is written.

    Created by :meth:`Bot.stream`; use it with ``async with``. Nothing is sent
    until the first non-empty :meth:`write`; the first write starts the delivery
    task (for YunHu, one chunked ``bot/send-stream`` request) that carries every
    later write as it comes.

    Args:
        recipient: Where the message goes.
        content_type: The message's content type.
        buffer: The transcript buffer the delivery reads.
        delivery: The background work that carries the text (see
            :class:`StreamDelivery`).
        log: The logger for this stream's events.
    """

    def __init__(
        self,
        recipient: Recipient,
        content_type: str,
        buffer: TranscriptBuffer,
        delivery: StreamDelivery,
        log: Logger,
    ) -> None:
        self.recipient = recipient
        self.content_type = content_type
        self._buffer = buffer
        self._log = log
        self._delivery = delivery
        self._state = StreamState.IDLE
        self._task: asyncio.Task[None] | None = None
        self._closers: list[asyncio.Future[None]] = []  # close() calls waiting for the task
        self._writes = 0
        self._closed_by_idle = False

    def __repr__(self) -> str:
        return (
            f"<Streamer to={self.recipient} content_type={self.content_type!r} "
            f"state={self._state.value} bytes={self._buffer.written}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        task = getattr(self, "_task", None)
        if getattr(self, "_state", None) is StreamState.OPEN and task and not task.done():
            _warn(f"{self!r} was never closed", ResourceWarning, source=self, stacklevel=1)

    # -- observing ----------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        """The current :class:`StreamState`."""
        return self._state

    @property
    def text(self) -> str:
        """Everything written so far, in order (all messages, if it rolled over).

        With ``max_text_bytes`` (see :meth:`Bot.stream`), only the last messages up to
        about that many bytes are kept (the current message always whole);
        ``stats.bytes_written`` still counts everything."""
        return self._buffer.data.decode("utf-8")

    @property
    def messages(self) -> list[MessageInfo]:
        """Every message delivered so far, in order (more than one after a rollover)."""
        return list(self._delivery.messages)

    @property
    def message_info(self) -> MessageInfo | None:
        """The last delivered message (the one holding the end of the text), or None."""
        return self._delivery.messages[-1] if self._delivery.messages else None

    @property
    def stats(self) -> StreamStatistics:
        """A snapshot of this stream's counters."""
        d = self._delivery
        return StreamStatistics(
            writes=self._writes,
            bytes_written=self._buffer.written,
            bytes_sent=d.bytes_sent,
            chunks_sent=d.chunks_sent,
            buffered_bytes=self._buffer.pending,
            max_buffer_bytes=self._buffer.max_pending,
            attempts=d.attempts,
            messages=len(d.messages),
        )

    # -- writing ------------------------------------------------------------------------

    def _encode(self, text: object) -> bytes:
        if self._state in (StreamState.CLOSED, StreamState.ABORTED, StreamState.CLOSING):
            reason = "closed after idle_timeout" if self._closed_by_idle else self._state.value
            raise StreamClosedError(f"cannot write to a stream that is {reason}")
        if not isinstance(text, str):
            raise TypeError(f"write() takes str, not {type(text).__name__}")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            check_text(text)  # raises the ValueError that names the position
            raise
        self._raise_if_failed()
        return data

    def _raise_if_failed(self) -> None:
        self._raise_stored()
        if self._buffer.eof and self._state is StreamState.OPEN:
            self._closed_by_idle = True
            raise StreamClosedError("cannot write: the stream was closed after idle_timeout")

    def _accept(self, data: bytes) -> None:
        self._buffer.append(data)
        self._writes += 1
        if self._task is None:
            self._state = StreamState.OPEN
            self._task = asyncio.get_running_loop().create_task(
                _deliver(self._delivery, self._closers),
                name=f"yunhu-stream to {self.recipient}",
            )

    async def write(self, text: str) -> None:
        """Queue ``text`` for the chat; it is sent as soon as the network takes it.

        Returns at once while the buffer has room; waits when it is full.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: ``text`` cannot be encoded as UTF-8; the stream stays usable.
            StreamClosedError: the stream was closed or aborted.
            YunhuError: the request failed (the error carries ``.text``).
        """
        # The common cases inline: this runs once per token, so every attribute lookup
        # and call here shows in the benchmarks. ``buf.room`` is non-zero only while
        # the stream is open and healthy and a write has nothing to do but append.
        buf = self._buffer
        if type(text) is str:
            try:
                data = text.encode()
            except UnicodeEncodeError:
                pass  # the general path below raises the ValueError that says where
            else:
                size = len(data)
                if 0 < size <= buf.room:
                    buf.room -= size
                    buf.data += data
                    self._writes += 1
                    return
                if (  # open, healthy, with room, but there is a reader to wake
                    self._state is _OPEN
                    and self._delivery.error is None
                    and not buf.eof
                    and (len(buf.data) - buf.taken + size <= buf.max_pending or buf.unbounded)
                ):
                    if data:
                        buf.append(data)
                        self._writes += 1
                    return
        data = self._encode(text)
        if not data:
            return
        while not self._buffer.has_room(len(data)):
            await self._buffer.wait_for_room()
            self._encode("")  # re-check: closed or failed while waiting
        self._accept(data)

    def write_nowait(self, text: str) -> None:
        """Like :meth:`write`, but raise ``WouldBlockError`` instead of waiting."""
        data = self._encode(text)
        if not data:
            return
        if not self._buffer.has_room(len(data)):
            raise WouldBlockError(
                f"the stream's buffer is full ({self._buffer.pending} of "
                f"{self._buffer.max_pending} bytes unsent); use 'await write()' to wait"
            )
        self._accept(data)

    async def pipe(
        self, source: AsyncIterable[str], *, on_error: Literal["close", "abort"] = "close"
    ) -> PipeResult:
        """Write every piece of ``source`` in order, honouring backpressure.

        Args:
            source: Any async iterable of ``str`` (an LLM's deltas, a file, …).
            on_error: What to do when ``source`` raises: ``"close"`` (default)
                finishes the message with what arrived, then re-raises the source's
                error; ``"abort"`` cuts the message off, then re-raises it.

        Returns:
            How many non-empty pieces and characters were written.

        Raises:
            TypeError: ``source`` is not an async iterable, or yields a non-str.
            Exception: whatever ``source`` raised, after the stream was ended.
            YunhuError: as :meth:`write` (the stream itself failed).
        """
        if not isinstance(source, AsyncIterable):
            raise TypeError(f"pipe() takes an async iterable of str, not {type(source).__name__}")
        if on_error not in ("close", "abort"):
            raise ConfigurationError(f"on_error must be 'close' or 'abort', not {on_error!r}")
        writes = chars = 0
        iterator = aiter(source)
        while True:
            try:
                piece = await anext(iterator)
            except StopAsyncIteration:
                return PipeResult(writes, chars)
            except Exception as source_error:
                try:
                    await (self.close() if on_error == "close" else self.abort())
                except YunhuError as end_error:
                    # Still the source's error, but say the message did not land either
                    # (end_error carries the transcript).
                    raise source_error from end_error
                raise
            await self.write(piece)
            if piece:
                writes += 1
                chars += len(piece)

    def attach(
        self, *, buttons: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        at: list[str] | None = None,
    ) -> None:
        """Give the message this stream ends with buttons and mentions, decided late.

        They go out as ``Bot.stream(buttons=..., at=...)`` sends them: with the one
        ``bot/edit`` after the stream ends. ``buttons`` replace any given before;
        ``at`` ids are added to the ones given before.

        Raises:
            ConfigurationError: bad ``buttons`` or ``at`` (as for :meth:`Bot.stream`).
            StreamClosedError: :meth:`close` or :meth:`abort` has begun.
        """
        checked_buttons, checked_at = check_buttons(buttons), check_at(at)
        if self._state in (StreamState.CLOSING, StreamState.CLOSED, StreamState.ABORTED):
            raise StreamClosedError(
                f"cannot attach buttons or mentions to a stream that is {self._state.value}"
            )
        self._delivery.attach(checked_buttons, checked_at)

    # -- ending -------------------------------------------------------------------------

    async def close(self) -> MessageInfo | None:
        """End the message and wait for YunHu's answer. Idempotent.

        Returns:
            The last message's info, or None if nothing was ever written.

        Raises:
            YunhuError: the message could not be delivered; ``.text`` holds the
                transcript.
        """
        if self._state in (StreamState.CLOSED, StreamState.ABORTED):
            self._raise_stored()
            return self.message_info
        self._state = StreamState.CLOSING
        self._buffer.eof = True
        self._buffer.wake_all()
        if self._task is None:
            self._state = StreamState.CLOSED
            return None
        task = self._task
        if not task.done():
            # A waiter of our own, not the task: cancelling this caller must not cancel
            # the delivery task under another task that is also waiting in close().
            waiter = asyncio.get_running_loop().create_future()
            self._closers.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # This caller was cancelled (even if another task aborted the stream
                # meanwhile, the cancellation is what it must see): abandon the stream.
                self._state = StreamState.ABORTED
                self._buffer.abandon()
                await self._cancel_task()
                raise
        if task.cancelled():
            raise StreamClosedError(
                "the stream was aborted (by another task) while closing", text=self.text
            )
        self._state = StreamState.CLOSED
        self._raise_stored()
        return self.message_info

    def _raise_stored(self) -> None:
        error = self._delivery.error
        if error is not None:
            error.text = self.text
            raise error.with_traceback(self._delivery.error_traceback)

    async def abort(self) -> None:
        """Abandon the message: the request is cut off mid-body. Idempotent.

        What already reached the chat stays there; nothing more is sent.
        """
        if self._state in (StreamState.CLOSED, StreamState.ABORTED):
            return
        self._state = StreamState.ABORTED
        # Cut the request off before waking anyone: waking the body generator with
        # EOF set would end the body cleanly and publish a message we abandoned.
        self._buffer.abandon()
        await self._cancel_task()
        self._buffer.eof = True
        self._buffer.wake_all()
        if self._task is not None:
            self._log.debug("stream_aborted", bytes=self._buffer.written)

    async def _cancel_task(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def __aenter__(self) -> Streamer:
        if self._state is not StreamState.IDLE:
            raise StreamClosedError("a Streamer can be entered only once")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or self._state is StreamState.CLOSING:
            # A block that fails while another task closes the stream (its write was
            # refused because of that close: BotApp's shutdown does this) leaves the
            # message to that close instead of cutting it off.
            await self.close()
        else:
            await self.abort()

