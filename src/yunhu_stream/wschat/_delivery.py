"""The background task behind a WebSocket chat Streamer: ``stream`` frames, then the final.

It reads the same :class:`~yunhu_stream._buffer.TranscriptBuffer` as the YunHu
delivery, so coalescing, backpressure, rollover and the idle clock are the same: each
frame carries the whole unsent tail; the final ``text`` frame carries the whole
message and is sent until the server acknowledges it (on a new connection after a
drop), so a reply interrupted by a disconnect still arrives, once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from .._buffer import TranscriptBuffer
from .._exceptions import ConfigurationError, StreamBrokenError, StreamClosedError, YunhuError
from .._log import DEBUG, Logger
from .._types import MessageInfo, Recipient
from ._protocol import STREAM, TEXT, Frame, packet

if TYPE_CHECKING:
    from ._client import WsChat


class WsDelivery:
    """One stream's frames (the Streamer's :class:`~yunhu_stream._streamer.StreamDelivery`)."""

    def __init__(
        self,
        chat: WsChat,
        recipient: Recipient,
        frame_type: str,
        buffer: TranscriptBuffer,
        log: Logger,
        *,
        idle_timeout: float | None,
    ) -> None:
        self.chat = chat
        self.recipient = recipient
        self.frame_type = frame_type
        self.buffer = buffer
        self.log = log
        self.idle_timeout = idle_timeout
        self.messages: list[MessageInfo] = []
        self.error: YunhuError | None = None
        self.error_traceback: Any = None
        self.bytes_sent = 0
        self.chunks_sent = 0
        self.attempts = 0

    def attach(self, buttons: list[list[dict[str, Any]]] | None, at: list[str] | None) -> None:
        if buttons or at:
            raise ConfigurationError(
                "a WebSocket chat message has no buttons or mentions; send them as extra "
                "data with WsChat.send(..., extra=...)"
            )

    async def run(self) -> None:
        started = time.monotonic()
        self.log.debug("stream_opened", destination="wschat")
        buf = self.buffer
        try:
            while True:
                self.messages.append(await self._one_message())
                buf.next_message()
                if not await buf.more_to_come(self.idle_timeout, self.log):
                    break
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
                self.log.debug(
                    "stream_closed", msg_id=self.messages[-1].msg_id,
                    messages=len(self.messages), bytes=buf.written, chunks=self.chunks_sent,
                    duration_ms=round((time.monotonic() - started) * 1000, 3),
                )

    def _fail(self, exc: YunhuError) -> None:
        self.error = exc
        self.error_traceback = exc.__traceback__
        self.buffer.wake_all()
        self.log.warning("stream_failed", error=type(exc).__name__, detail=str(exc),
                         bytes=self.buffer.written, messages=len(self.messages))

    async def _one_message(self) -> MessageInfo:
        """Stream the current message as ``stream`` frames, then send its final frame."""
        buf, recipient = self.buffer, self.recipient
        msg_id, seq = uuid.uuid4().hex, 0
        self.attempts += 1
        while True:
            if buf.aborted:
                raise StreamClosedError("stream aborted")
            chunk = buf.take()
            if chunk is None:
                if buf.message_done():
                    break
                await buf.wait_for_writes(self.idle_timeout, log=self.log)
                if buf.eof:
                    continue
                await buf.coalesce()  # a backlog goes in few frames, as the YunHu body does
                continue
            await self.chat.send_frame(Frame(
                type=self.frame_type, target=recipient.id, msg_type=STREAM,
                extra={"seq": seq, "done": False}, msg=packet(msg_id, chunk.decode("utf-8")),
            ))
            seq += 1
            self.bytes_sent += len(chunk)
            self.chunks_sent += 1
        await self.chat.send_frame(Frame(
            type=self.frame_type, target=recipient.id, msg_type=TEXT,
            extra={"seq": seq, "done": True, "streamed": True},
            msg=packet(msg_id, buf.message_text()),
        ), ack=True)
        return MessageInfo(msg_id, recipient.id, recipient.type, "stream")
