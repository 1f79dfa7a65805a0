"""Hot-path changes proposed for ``src/yunhu_stream``, applied as patches so they can be measured.

The ``proposed`` implementation in ``bench/impls.py`` is ``ours`` with :func:`apply` called first
(each client runs in its own process, so ``ours`` itself is never patched).  Run it with
``bench/run.py --impl ours --impl proposed``.  Each patch mirrors a change described in
docs/performance.md; once the change is made in ``src/``, its patch here should be deleted.

These patches reach into private names (``Streamer._buffer``, ``TranscriptBuffer._reader`` …):
they are an experiment, not an API.
"""

from __future__ import annotations

import asyncio
from typing import Any

COALESCE_PASSES = 16


def apply() -> None:
    """Patch the running interpreter's yunhu_stream with every proposal below."""
    from yunhu_stream._buffer import TranscriptBuffer
    from yunhu_stream._streamer import Streamer, StreamState

    slow_write = Streamer.write
    open_state = StreamState.OPEN

    # 1. write(): an inline fast path for the common case (open, healthy, room in the buffer).
    #    The general path does a state-tuple test, an isinstance, two helper calls and two
    #    property reads per write; this does the same checks inline.
    async def write(self: Any, text: str) -> None:
        if type(text) is str and self._state is open_state:
            buf = self._buffer
            if self._delivery.error is None and not buf.eof and not buf.unbounded:
                try:
                    data = text.encode()
                except UnicodeEncodeError:
                    data = b""
                size = len(data)
                pending = len(buf.data) - buf.taken
                if size and (pending == 0 or pending + size <= buf.max_pending):
                    buf.data += data
                    self._writes += 1
                    reader = buf._reader
                    if reader is not None and not reader.done():
                        reader.set_result(None)
                    return
        await slow_write(self, text)

    Streamer.write = write  # type: ignore[method-assign]

    # 2. The body task, once woken by a write, lets the event loop run again before it takes the
    #    pending bytes, for as long as each pass brings more (up to COALESCE_PASSES): a producer
    #    that writes on every loop iteration (a token loop that yields after each write) then
    #    shares one HTTP chunk and one send() across several writes.  A producer that has
    #    nothing more costs one loop iteration of latency (microseconds), never a timer.
    wait_for_data = TranscriptBuffer.wait_for_data

    async def wait_then_yield(self: Any, timeout: float | None) -> bool:
        got = await wait_for_data(self, timeout)
        passes = 0
        while got and not self.eof and passes < COALESCE_PASSES:
            size = len(self.data)
            await asyncio.sleep(0)
            passes += 1
            if len(self.data) == size:
                break
        return got

    TranscriptBuffer.wait_for_data = wait_then_yield  # type: ignore[method-assign]

    # 3. Decode the message without first copying it out of the bytearray (a slice of a
    #    bytearray is a full copy; a memoryview slice is not).  In src/, Delivery.run should
    #    also stop computing ``_last_text`` when there are no buttons/mentions to attach: as it
    #    stands every stream holds its text twice (bytes and str) after close.
    def message_text(self: Any) -> str:
        end = self.split if self.split is not None else len(self.data)
        with memoryview(self.data) as view:
            return str(view[self.message_start : end], "utf-8")

    TranscriptBuffer.message_text = message_text  # type: ignore[method-assign]
