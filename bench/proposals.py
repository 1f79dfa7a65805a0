"""Hot-path changes proposed for ``src/yunhu_stream``, applied as patches so they can be measured.

The ``proposed`` implementation in ``bench/impls.py`` is ``ours`` with :func:`apply` called first
(each client runs in its own process, so ``ours`` itself is never patched).  Run it with
``bench/run.py --impl ours --impl proposed``; ``YUNHU_BENCH_PROPOSALS=fastwrite,coalesce`` picks
a subset (default: all of :data:`PATCHES`).  Each patch mirrors a change described in
docs/performance.md; once a change is made in ``src/``, its patch here should be deleted.

These patches reach into private names (``Streamer._buffer``, ``TranscriptBuffer._reader``,
aiohttp's ``StreamWriter._write_chunked_payload`` …): they are an experiment, not an API.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from time import monotonic
from typing import Any

COALESCE_PASSES = 16
COALESCE_WINDOW = 0.001  # seconds


def _fastwrite() -> None:
    """write(): an inline fast path for the common case (open, healthy, room in the buffer).

    The general path does a state-tuple test, an isinstance, two helper calls and two property
    reads per write; this does the same checks inline and falls back to it for anything else.
    With ``writethrough`` also applied, it sends the bytes itself when it can.
    """
    from yunhu_stream._buffer import TranscriptBuffer
    from yunhu_stream._streamer import Streamer, StreamState

    TranscriptBuffer.hot = False  # type: ignore[attr-defined]
    TranscriptBuffer.last_write = -1.0  # type: ignore[attr-defined]
    slow_write = Streamer.write
    open_state = StreamState.OPEN

    async def write(self: Any, text: str) -> None:
        if type(text) is str and self._state is open_state:
            buf = self._buffer
            delivery = self._delivery
            if delivery.error is None and not buf.eof and not buf.unbounded:
                try:
                    data = text.encode()
                except UnicodeEncodeError:
                    data = b""
                size = len(data)
                pending = len(buf.data) - buf.taken
                if size and (pending == 0 or pending + size <= buf.max_pending):
                    buf.data += data
                    self._writes += 1
                    # A write soon after the previous one is part of a burst: let the body
                    # task coalesce it (see _coalesce) rather than send it on its own.
                    now = monotonic()
                    buf.hot = now - buf.last_write < COALESCE_WINDOW
                    buf.last_write = now
                    reader = buf._reader
                    if reader is not None and not reader.done():
                        send = getattr(delivery, "_send_now", None)
                        if pending or buf.hot or send is None or not send(buf, data):
                            reader.set_result(None)
                    return
        await slow_write(self, text)

    Streamer.write = write  # type: ignore[method-assign]


def _coalesce() -> None:
    """Coalesce the writes of a burst into one chunk, without a timer.

    A write that comes less than COALESCE_WINDOW after the previous one marks the buffer hot
    (see ``_fastwrite``).  The body task, woken for a hot buffer, lets the event loop run again
    before taking the pending bytes, for as long as each pass brings more (at most
    COALESCE_PASSES): a producer that writes on every loop iteration (a token loop that yields
    after each write) then shares one HTTP chunk and one send() across many writes.  Writes
    further apart (LLM tokens, the 5 ms latency run, 1,000 streams writing every 10 ms) are sent
    at once, with no extra task step and no added latency.  Needs ``fastwrite``.
    """
    from yunhu_stream._buffer import TranscriptBuffer

    wait_for_data = TranscriptBuffer.wait_for_data

    async def wait_then_yield(self: Any, timeout: float | None) -> bool:
        got = await wait_for_data(self, timeout)
        if got and self.hot:
            for _ in range(COALESCE_PASSES):
                size = len(self.data)
                await asyncio.sleep(0)
                if len(self.data) == size or self.eof:
                    break
        return got

    TranscriptBuffer.wait_for_data = wait_then_yield  # type: ignore[method-assign]


def _decode() -> None:
    """Decode the message without first copying it out of the bytearray.

    A slice of a bytearray is a full copy; a memoryview slice is not.  In src/, Delivery.run
    should also stop computing ``_last_text`` when there are no buttons/mentions to attach (keep
    the message's start and end offsets instead): as it stands every stream holds its whole text
    twice, as bytes and as str, from close on.  That part is not patched here.
    """
    from yunhu_stream._buffer import TranscriptBuffer

    def message_text(self: Any) -> str:
        end = self.split if self.split is not None else len(self.data)
        with memoryview(self.data) as view:
            return str(view[self.message_start : end], "utf-8")

    TranscriptBuffer.message_text = message_text  # type: ignore[method-assign]


def _writethrough() -> None:
    """Send from write() itself when the body task is idle: no task hop between write and send.

    While the request body is being written, aiohttp hands its StreamWriter to the payload; the
    patch keeps it on the Delivery.  A write() that finds the buffer otherwise empty, the body
    task parked waiting for data and the transport not paused frames the chunk and hands it to
    the transport at once (as the floor does), marking the bytes taken.  Anything else falls back
    to waking the body task.  Needs ``fastwrite``.
    """
    import aiohttp.payload

    from yunhu_stream._delivery import Delivery

    original = aiohttp.payload.AsyncIterablePayload.write_with_length

    async def write_with_length(self: Any, writer: Any, content_length: int | None) -> None:
        frame = getattr(self._iter, "ag_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        if not isinstance(owner, Delivery) or not getattr(writer, "chunked", False):
            await original(self, writer, content_length)
            return

        attempt = frame.f_locals.get("attempt") if frame is not None else None

        def send_now(buf: Any, data: bytes) -> bool:
            # Only for the live attempt, once the head is out (aiohttp buffers it until the
            # first chunk), and never past the transport's high-water mark.
            if (
                owner._live_attempt != attempt
                or buf.aborted
                or buf.max_message is not None  # rollover: leave splitting to take()
                or writer._headers_buf is not None
                or writer.protocol.writing_paused
            ):
                return False
            transport = writer.transport
            if transport is None or transport.is_closing():
                return False
            writer._write_chunked_payload(data)
            buf.taken += len(data)
            owner.bytes_sent += len(data)
            owner.chunks_sent += 1
            owner._attempt_sent += len(data)
            if owner._first_chunk_at is None:
                owner._first_chunk_at = time.monotonic()
            return True

        owner._send_now = send_now  # type: ignore[attr-defined]
        try:
            await original(self, writer, content_length)
        finally:
            owner._send_now = None  # type: ignore[attr-defined]

    aiohttp.payload.AsyncIterablePayload.write_with_length = (  # type: ignore[method-assign]
        write_with_length
    )


PATCHES: dict[str, Callable[[], None]] = {
    "fastwrite": _fastwrite,
    "coalesce": _coalesce,
    "decode": _decode,
    "writethrough": _writethrough,
}


def apply() -> list[str]:
    """Patch this interpreter's yunhu_stream with the chosen proposals; return their names."""
    chosen = os.environ.get("YUNHU_BENCH_PROPOSALS", ",".join(PATCHES)).split(",")
    names = [name.strip() for name in chosen if name.strip()]
    for name in names:
        PATCHES[name]()
    return names


class _PatchPlugin:
    """Applies the patches once pytest is configured (after its import hooks are in place)."""

    def pytest_configure(self, config: Any) -> None:
        print(f"patched: {', '.join(apply())}")


if __name__ == "__main__":
    # ``.venv/bin/python bench/proposals.py [pytest args]``: the project's tests with the
    # patches applied, to check that a proposal keeps every stream semantic.
    import sys

    import pytest

    sys.exit(pytest.main(sys.argv[1:] or ["-q", "-p", "no:cacheprovider"],
                         plugins=[_PatchPlugin()]))
