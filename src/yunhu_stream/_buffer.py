"""The transcript buffer: everything written, and how much of it is handed to the network.

One growing ``bytearray`` holds the whole transcript. The unsent part — the queue
the request body drains — is simply its tail past ``taken``. That single
structure serves every case: coalescing (take the whole tail as one chunk),
backpressure (bound the tail's length), replay after a failed attempt (move
``taken`` back to the message start) and rollover (end a message at ``split``).

With ``max_text`` set, messages already delivered are dropped from the front once
the kept text passes that many bytes (positions are relative to what is kept;
``dropped`` counts what went), so a stream that rolls over can run for days in
constant memory. The current message is always kept whole: it is what an error
hands back as ``.text``.

Markdown messages roll over at Markdown-safe points (:mod:`._markdown`): a code block
open at the split is closed by a ``tail`` sent after the split and reopened by a
``head`` sent before the next message's text. Both belong to the message as shown
(:meth:`TranscriptBuffer.message_text`), not to the transcript.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from ._log import Logger
from ._markdown import NO_BLOCK, Split, plan_split, split_here

CHUNK_CAP = 64 * 1024
"""Largest HTTP chunk the body generator sends at once."""

COALESCE_SECONDS = 0.001
"""How long a woken reader gathers writes that keep arriving on every loop pass (the
delivery's write-through takes over for writes further apart than this)."""

_PARAGRAPH = (b"\n\n",)
_LINE = (b"\n",)
_SENTENCE = ("。".encode(), "！".encode(), "？".encode(), b". ", b"! ", b"? ")


def utf8_floor(data: bytes | bytearray, pos: int) -> int:
    """The largest index <= ``pos`` that does not fall inside a UTF-8 sequence."""
    while pos > 0 and pos < len(data) and (data[pos] & 0xC0) == 0x80:
        pos -= 1
    return pos


class TranscriptBuffer:
    """Bytes written so far, with wake-ups for the one reader and any blocked writers."""

    def __init__(
        self, max_pending: int, max_message: int | None, max_text: int | None = None, *,
        markdown: bool = False,
    ) -> None:
        self.data = bytearray()
        self.dropped = 0  # bytes of delivered messages no longer kept (see max_text)
        self.max_text = max_text
        self.taken = 0  # bytes handed to the network (or delivered by edit)
        self.message_start = 0  # where the current message begins
        self.split: int | None = None  # where the current message must end (rollover)
        self.eof = False
        self.aborted = False  # the owner abandoned the message: never end the body cleanly
        self.max_pending = max_pending
        self.max_message = max_message
        self.unbounded = False  # set when text is delivered whole later (edit/send paths)
        self.markdown = markdown  # roll over at Markdown-safe points (see _markdown)
        self.head = b""  # sent before the message's text (a reopened code fence, table header)
        self.tail = b""  # sent after it, once the split is reached (a closing fence)
        self._head_due = False
        self._tail_due = False
        self._carry = NO_BLOCK  # what is open where the current message starts
        self._next_carry = NO_BLOCK  # ... and where it ends
        # Set by the reader while it waits: sends what a write appended, True when it
        # did (the reader stays asleep), False to wake the reader instead.
        self.through: Callable[[], bool] | None = None
        self._reader: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._gathering: asyncio.Future[None] | None = None  # the reader, coalescing
        self._seen_size = 0  # len(data) when the reader last saw it grow ...
        self._seen_at = 0.0  # ... and when (loop time): what idle_timeout counts from
        # Bytes a write may add to ``data`` with nothing else to do: no reader to wake,
        # no gathering to end, no limit to reach, the stream open. Recomputed by
        # :meth:`append` and zeroed by whatever changes that (0 is always safe: the
        # writer then takes the general path through :meth:`append`).
        self.room = 0

    # -- writer side ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Bytes written but not yet handed on."""
        return 0 if self.unbounded else len(self.data) - self.taken

    def has_room(self, size: int) -> bool:
        """Whether ``size`` more bytes fit (a lone oversized write fits an empty buffer)."""
        pending = self.pending
        return pending == 0 or pending + size <= self.max_pending

    def append(self, chunk: bytes) -> None:
        self.data += chunk
        gathering = self._gathering
        if gathering is not None and self._gathered_enough():
            self._gathering = None
            if not gathering.done():
                gathering.set_result(None)
        reader = self._reader
        if reader is not None and not reader.done():
            self.room = 0
            through = self.through
            if through is not None and through():
                return  # handed on by the write itself: the reader need not wake
            reader.set_result(None)
            self._reader = None
        else:  # (never once eof or aborted is set: every write checks the state first)
            pending = len(self.data) - self.taken
            room = sys.maxsize if self.unbounded else self.max_pending - pending
            if self._gathering is not None:  # stop short of what ends the gathering
                room = min(room, min(CHUNK_CAP, self.max_pending // 2) - 1 - pending)
            self.room = room

    async def wait_for_room(self) -> None:
        if self._space is None or self._space.done():
            self._space = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._space)

    def abandon(self) -> None:
        """The owner gave the message up: the body must never end cleanly, and no write
        lands from now on (see :attr:`aborted`)."""
        self.aborted = True
        self.room = 0

    def wake_all(self) -> None:
        """Wake the reader and every blocked writer (state changed: closed, failed)."""
        self.room = 0
        for fut in (self._reader, self._space):
            if fut is not None and not fut.done():
                fut.set_result(None)

    # -- reader side ---------------------------------------------------------------------

    def _reader_future(self) -> asyncio.Future[None]:
        """The future a write (or :meth:`wake_all`) resolves."""
        self.room = 0  # a write must wake the reader
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_future()
        return self._reader

    async def wait_for_data(self, timeout: float | None) -> None:
        """Wait until data or EOF arrives, or ``timeout`` seconds pass."""
        if timeout is None:
            await self._reader_future()
        else:
            await asyncio.wait({self._reader_future()}, timeout=timeout)

    def _gathered_enough(self) -> bool:
        """A chunk's worth is waiting, or half the buffer (writers would soon wait)."""
        return len(self.data) - self.taken >= min(CHUNK_CAP, self.max_pending // 2)

    def coalesce(self) -> asyncio.Future[None]:
        """Woken by a write: let the event loop run once more; if that brought more
        writes, the producer is writing on every loop pass, so gather its writes for
        :data:`COALESCE_SECONDS` into one chunk (less, once a chunk's worth or half the
        buffer is waiting: writers must not wait for a reader that is only gathering).
        A lone write costs one loop pass.

        A plain callback and a timer do the watching, not the waiting task: the body's
        coroutines are stepped once per chunk, not on every pass."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        size = len(self.data)

        def release() -> None:
            if self._gathering is done:
                self._gathering = None
            if not done.done():  # (it is, when the waiting task was cancelled)
                done.set_result(None)

        def after_one_pass() -> None:
            if len(self.data) == size or self._gathered_enough():
                release()
            elif not done.done():
                self._gathering = done
                self.room = 0  # writes must end the gathering once it has enough
                loop.call_later(COALESCE_SECONDS, release)

        loop.call_soon(after_one_pass)
        return done

    async def more_to_come(self, idle: float | None = None, log: Logger | None = None) -> bool:
        """After a message ended: wait for the next one's first byte (True) or EOF (False);
        ``idle`` seconds without one end the stream (see :meth:`wait_for_writes`)."""
        while len(self.data) == self.message_start and not self.eof:
            await self.wait_for_writes(idle, None, log)
        return len(self.data) > self.message_start

    def wait_for_writes(
        self, idle: float | None, at_most: float | None = None, log: Logger | None = None
    ) -> Awaitable[object]:
        """Wait for a write or EOF, for at most ``at_most`` seconds; once ``idle`` seconds
        have passed since the reader last saw the transcript grow, end it instead (set
        :attr:`eof`, log ``stream_idle_closed``) without waiting.

        The one place ``idle_timeout`` is applied, for every destination: streaming,
        recovering and collecting a quoted reply all wait here. With neither bound the
        awaitable is the reader's future itself, so a parked body holds no coroutine
        for its wait (with a thousand streams waiting, the GC has less to walk).
        """
        if idle is None:
            return self._reader_future() if at_most is None else self.wait_for_data(at_most)
        return self._wait_or_close(idle, at_most, log)

    async def _wait_or_close(self, idle: float, at_most: float | None, log: Logger | None) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if len(self.data) != self._seen_size or not self._seen_at:
            self._seen_size, self._seen_at = len(self.data), now
        left = self._seen_at + idle - now  # idle counts from when the reader saw it grow
        if left > 0:
            await self.wait_for_data(left if at_most is None else min(left, at_most))
            if len(self.data) != self._seen_size or loop.time() < self._seen_at + idle:
                return  # a write came, or the wait ended for another reason
        if log is not None:
            log.debug("stream_idle_closed", idle_timeout_s=idle)
        self.eof = True
        self.room = 0

    def _freed(self) -> None:
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)

    def take(self) -> bytes | None:
        """The next chunk for the current message, or None if nothing is ready.

        Returns everything pending up to :data:`CHUNK_CAP` (cut at a UTF-8
        boundary) and never past the message's split point; the message's
        ``head`` first and its ``tail`` last.
        """
        if self._head_due:
            self._head_due = False
            return self.head
        limit = len(self.data)
        if self.split is None and self.max_message is not None:
            self._choose_split()
        if self.split is not None:
            limit = min(limit, self.split)
        start = self.taken
        if limit <= start:
            if self._tail_due and self.split is not None and start >= self.split:
                self._tail_due = False
                return self.tail
            return None
        end = limit if limit - start <= CHUNK_CAP else utf8_floor(self.data, start + CHUNK_CAP)
        self.taken = end
        self._freed()
        return bytes(self.data[start:end])

    def message_done(self) -> bool:
        """Whether the current message has all it will get (split reached, or EOF)."""
        if self.split is not None:
            return self.taken >= self.split and not self._tail_due
        return self.eof and self.taken >= len(self.data)

    def deliver_all(self) -> None:
        """Mark everything written as handed on (text goes out whole, by edit or send)."""
        self.taken = len(self.data)
        self._freed()

    def deliver(self) -> None:
        """Hand on everything written up to the current message's end (its split, once
        rollover fixes one): the text goes out by edit, not by the stream body."""
        if self.split is None and self.max_message is not None:
            self._choose_split()
        self.taken = max(self.taken, len(self.data) if self.split is None else self.split)
        self._head_due = False  # an edit shows the head and tail with the text
        if self.split is not None and self.taken >= self.split:
            self._tail_due = False
        self._freed()

    @property
    def written(self) -> int:
        """Bytes written since the stream began (dropped ones included)."""
        return self.dropped + len(self.data)

    def sent_text(self, nbytes: int) -> str:
        """The first ``nbytes`` of the current message as sent (its head included), as
        text (a cut character left out)."""
        head = self.head[:nbytes]
        start, rest = self.message_start, nbytes - len(head)
        with memoryview(self.data) as view:
            return str(head + bytes(view[start : start + rest]), "utf-8", "ignore")

    def rewind(self) -> None:
        """Hand the current message out again from its start (a new attempt replays it)."""
        self.taken = self.message_start
        self.room = 0  # more is pending again
        self._head_due = bool(self.head)
        self._tail_due = bool(self.tail)

    def next_message(self) -> None:
        """Start a new message where the current one ended."""
        if self.split is not None:
            self.message_start = self.split
            self._carry = self._next_carry
        else:
            self.message_start, self._carry = self.taken, NO_BLOCK
        self.head, self.tail = self._carry.reopen, b""
        self.split = None
        self.unbounded = False
        if self.max_text is not None and len(self.data) > self.max_text:
            self._drop_delivered()
        self.rewind()

    def _drop_delivered(self) -> None:
        """Forget delivered messages from the front, keeping at most ``max_text`` bytes
        (never any of the current message), cut at a UTF-8 boundary. Called between
        messages (``taken`` is rewound right after) with more than ``max_text`` kept."""
        assert self.max_text is not None
        cut = min(self.message_start, len(self.data) - self.max_text)
        while cut < self.message_start and (self.data[cut] & 0xC0) == 0x80:
            cut += 1
        del self.data[:cut]
        self.dropped += cut
        self.message_start -= cut
        self._seen_size -= cut

    def end_here(self) -> None:
        """End the current message after what it has (a long silence; see ``gap``)."""
        if self.markdown:
            self._set_split(split_here(self.data, self.message_start, self._carry))
        else:
            self.split = len(self.data)

    def _set_split(self, plan: Split) -> None:
        self.split, self.tail, self._next_carry = plan.at, plan.close, plan.carry
        self._tail_due = bool(plan.close)

    def message_text(self) -> str:
        """The current message as it is shown: its head, its text, and (once split) its tail."""
        end = self.split if self.split is not None else len(self.data)
        with memoryview(self.data) as view:  # decode in place: the text may be large
            text = str(view[self.message_start : end], "utf-8")
        tail = self.tail if self.split is not None else b""
        return self.head.decode() + text + tail.decode() if self.head or tail else text

    def _choose_split(self) -> None:
        """Fix where the current message ends once it nears ``max_message`` bytes.

        In the last quarter of the allowance, the first paragraph, line or sentence
        end that arrives becomes the split; failing that, the allowance itself (at
        a UTF-8 boundary) does.
        """
        assert self.max_message is not None
        if self.markdown:
            start = self.message_start
            if len(self.data) - start + len(self.head) <= self.max_message * 3 // 4:
                return  # not in the last quarter yet: nothing to plan
            plan = plan_split(self.data, start, self.max_message, carry=self._carry,
                              earliest=self.taken)
            if plan is not None:
                self._set_split(plan)
            return
        hard = self.message_start + self.max_message
        soft = hard - self.max_message // 4
        size = len(self.data)
        if size <= soft:
            return
        lo, hi = max(self.taken, soft), min(size, hard)
        for kind in (_PARAGRAPH, _LINE, _SENTENCE):
            best = max((self.data.rfind(sep, lo, hi) + len(sep) for sep in kind
                        if self.data.rfind(sep, lo, hi) >= 0), default=-1)
            if best > lo:
                self.split = best
                return
        if size > hard:
            self.split = utf8_floor(self.data, hard)
