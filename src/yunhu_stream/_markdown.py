"""Where a long Markdown reply may roll over into its next message without breaking.

Pure logic, on UTF-8 bytes (the transcript buffer's unit): :func:`plan_split` looks at
the message written so far and picks the end of the message inside the last quarter of
its allowance, ranking every line end (and sentence end) it finds:

==================  =========================================================  =======
kind                where                                                      rank
==================  =========================================================  =======
``PARAGRAPH``       after a blank line, outside any block below                0 best
``LINE``            at a line end outside code, tables and lists               1
``LIST``            between the lines of a list                                2
``AFTER_HEADING``   right after a heading (it stays whole, but apart from its  3
                    section)
``SENTENCE``        after a sentence end inside a paragraph line               4
``TABLE_ROW``       between table rows: the next message repeats the header    5
``CODE_LINE``       between lines of a fenced code block: the fence is closed  6
                    here and reopened, same info string, in the next message
``HARD``            at the allowance itself (a UTF-8 boundary), when nothing   7 worst
                    above is in the window
==================  =========================================================  =======

Never a split: inside a table row or a code line (short of ``HARD``), between a table's
header and its delimiter row, or between a setext heading's text and its underline.
Within the best kind found, the latest position wins (fuller messages).

What is open where the message ends is handed on (:attr:`Split.carry`): the next
message starts with :attr:`Split.reopen` and is planned from inside that block.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from . import _validate as validate

__all__ = ["NO_BLOCK", "Block", "Fence", "Kind", "Split", "plan_split", "split_here"]

_FENCE = re.compile(rb"^ {0,3}(`{3,}|~{3,})[ \t]*([^\r\n]*?)[ \t]*\r?$")
_LIST_ITEM = re.compile(rb"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")
_HEADING = re.compile(rb"^ {0,3}#{1,6}(?:[ \t]|\r?$)")
_SETEXT = re.compile(rb"^ {0,3}(?:=+|-+)[ \t]*\r?$")
_DELIMITER_ROW = re.compile(rb"^ *\|? *:?-+:? *(?:\| *:?-+:? *)*\|? *\r?$")
_SENTENCE_ENDS = ("。".encode(), "！".encode(), "？".encode(), b". ", b"! ", b"? ")


class Kind(enum.IntEnum):
    """How good a split point is (lower is better); see the module table."""

    PARAGRAPH = 0
    LINE = 1
    LIST = 2
    AFTER_HEADING = 3
    SENTENCE = 4
    TABLE_ROW = 5
    CODE_LINE = 6
    HARD = 7


@dataclass(frozen=True)
class Fence:
    """An open fenced code block: its marker (```` ``` ````, ``~~~~``…) and info string."""

    marker: bytes
    info: bytes = b""

    def closes(self, line: bytes) -> bool:
        """Whether ``line`` (without its newline) is this block's closing fence."""
        match = _FENCE.match(line)
        return bool(
            match and not match.group(2) and match.group(1)[:1] == self.marker[:1]
            and len(match.group(1)) >= len(self.marker)
        )


@dataclass(frozen=True)
class Block:
    """What is open at a point of the text: a code fence, or a table (its header rows)."""

    fence: Fence | None = None
    table_head: bytes | None = None  #: header line + delimiter row, each ending in \n

    @property
    def reopen(self) -> bytes:
        """What a message starting inside this block must begin with."""
        if self.fence is not None:
            return self.fence.marker + self.fence.info + b"\n"
        return self.table_head or b""


NO_BLOCK = Block()
"""Nothing open (a frozen value, shared)."""


@dataclass(frozen=True)
class Split:
    """Where the current message ends, and what goes around the cut.

    Attributes:
        at: Offset in the buffer: the message holds the bytes before it.
        kind: Which kind of point it is (:class:`Kind`).
        close: Bytes to append to the message (a closing fence), or ``b""``.
        carry: What is open at ``at``; the next message is planned from inside it.
    """

    at: int
    kind: Kind
    close: bytes = b""
    carry: Block = NO_BLOCK

    @property
    def reopen(self) -> bytes:
        """Bytes the next message starts with (the fence or table header), or ``b""``."""
        return self.carry.reopen


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # after the newline
    kind: str  # code, fence, blank, heading, item, table, delimiter, text
    fence_before: Fence | None  # the code block open at the line's start
    fence_after: Fence | None  # ... and after it
    table_head: bytes | None  # the table this line belongs to (header and delimiter)


class _Text:
    """The message's complete lines, each with the block it is in; and its unfinished tail."""

    def __init__(self, data: bytes | bytearray, start: int, carry: Block) -> None:
        self.data = data
        self.lines: list[_Line] = []
        fence, table = carry.fence, carry.table_head
        pos = start
        while (nl := data.find(b"\n", pos)) >= 0:
            line = bytes(data[pos:nl])
            before = fence
            kind, fence, table = self._classify(line, fence, table)
            self.lines.append(_Line(pos, nl + 1, kind, before, fence, table))
            pos = nl + 1
        self.tail = pos  # where the unfinished last line starts
        self.tail_fence = fence

    def _classify(self, line: bytes, fence: Fence | None, table: bytes | None,
                  ) -> tuple[str, Fence | None, bytes | None]:
        if fence is not None:
            return ("fence", None, None) if fence.closes(line) else ("code", fence, None)
        match = _FENCE.match(line)
        if match and not (match.group(1)[:1] == b"`" and b"`" in match.group(2)):
            return "fence", Fence(match.group(1), match.group(2)), None
        if not line.strip():
            return "blank", None, None
        if table is not None and b"|" in line:
            return "table", None, table
        previous = self.lines[-1] if self.lines else None
        if (b"|" in line and _DELIMITER_ROW.match(line) and previous is not None
                and previous.kind == "text" and b"|" in self.text(previous)):
            head = self.text(previous) + line + b"\n"
            self.lines[-1] = _Line(previous.start, previous.end, "table", None, None, head)
            return "delimiter", None, head
        if _HEADING.match(line):
            return "heading", None, None
        if _LIST_ITEM.match(line):
            return "item", None, None
        return "text", None, None

    def text(self, line: _Line) -> bytes:
        return bytes(self.data[line.start:line.end])

    def in_list(self, i: int) -> bool:
        """Whether line ``i`` is a list item, or text continuing one."""
        while i >= 0 and self.lines[i].kind == "text":
            i -= 1
        return i >= 0 and self.lines[i].kind == "item"

    def after_line(self, i: int) -> tuple[Kind, Block] | None:
        """The kind of the line end after line ``i`` and what is open there (None: never)."""
        lines = self.lines
        before = lines[i]
        after = lines[i + 1] if i + 1 < len(lines) else None
        if before.fence_after is not None:
            return Kind.CODE_LINE, Block(fence=before.fence_after)
        if after is not None and after.kind == "delimiter":
            return None  # a table's header and delimiter row stay together
        if before.table_head is not None and (after is None or after.kind == "table"):
            return Kind.TABLE_ROW, Block(table_head=before.table_head)
        if (before.kind == "text" and after is not None and after.kind == "text"
                and _SETEXT.match(self.text(after).rstrip(b"\r\n"))):
            return None  # the text above a setext underline is that heading
        if before.kind == "blank":
            previous = next((x for x in reversed(lines[:i]) if x.kind != "blank"), None)
            if previous is not None and previous.kind == "heading":
                return Kind.AFTER_HEADING, Block()
            return Kind.PARAGRAPH, Block()
        if before.kind == "heading":
            return Kind.AFTER_HEADING, Block()
        if before.kind == "text" and b"|" in self.text(before) and after is None:
            return Kind.TABLE_ROW, Block()  # perhaps a header whose delimiter is coming
        if self.in_list(i) and (after is None or after.kind in ("item", "text")):
            return Kind.LIST, Block()
        return Kind.LINE, Block()

    def prose(self) -> list[tuple[int, int]]:
        """Spans of plain paragraph text (where a sentence end may split a line)."""
        spans = []
        for x in self.lines:
            if x.kind in ("text", "item") and b"|" not in self.text(x):
                marker = _LIST_ITEM.match(self.text(x)) if x.kind == "item" else None
                spans.append((x.start + (marker.end() if marker else 0), x.end - 1))
        tail = bytes(self.data[self.tail:])
        if (self.tail_fence is None and b"|" not in tail and not _HEADING.match(tail)
                and not _FENCE.match(tail)):
            spans.append((self.tail, len(self.data)))
        return spans

    def fence_at(self, pos: int) -> Fence | None:
        """The code block open at ``pos``."""
        for line in self.lines:
            if line.start <= pos < line.end:
                return line.fence_before
        return self.tail_fence


def plan_split(
    data: bytes | bytearray,
    start: int,
    limit: int,
    *,
    carry: Block = NO_BLOCK,
    earliest: int = 0,
) -> Split | None:
    """Where the message that begins at ``start`` should end, or None to wait for more.

    The message as sent is ``carry.reopen + data[start:at] + close``; it must fit in
    ``limit`` bytes. Split points are looked for in the last quarter of that allowance
    and never before ``earliest`` (bytes before it were already sent in this message).
    None means no point was found and the message still fits: more text may bring one.
    Once the text no longer fits, a split is always returned (``HARD`` if need be).

    Args:
        data: The buffer (the message is ``data[start:]``, possibly still growing).
        start: Where the message begins in ``data``.
        limit: The message's allowance in UTF-8 bytes (at least 64).
        carry: What was open where the previous message ended.
        earliest: The lowest acceptable end (the caller's sent-so-far mark).

    Raises:
        ConfigurationError: ``limit`` below 64 bytes.
        ValueError: offsets outside ``data``.
    """
    validate.integer("limit", limit, minimum=64)
    if not 0 <= start <= len(data) or not 0 <= earliest <= len(data):
        raise ValueError(f"start {start} / earliest {earliest} outside the {len(data)}-byte data")
    hard = start + limit - len(carry.reopen)  # the last byte of data the message may hold
    lo = max(earliest, hard - limit // 4, start + 1)
    end = min(len(data), hard)
    text = _Text(data, start, carry)
    best: Split | None = None
    for i, line in enumerate(text.lines):
        if not lo <= line.end <= end:
            continue
        found = text.after_line(i)
        if found is None:
            continue
        kind, block = found
        close = block.fence.marker if block.fence is not None else b""
        if line.end + len(close) <= hard and (best is None or kind <= best.kind):
            best = Split(line.end, kind, close, block)
    if best is None or best.kind > Kind.SENTENCE:
        at = _sentence_end(data, text.prose(), lo, end)
        if at is not None:
            best = Split(at, Kind.SENTENCE)
    if best is not None or len(data) <= hard:
        return best
    fence = text.fence_at(hard)
    close = b"\n" + fence.marker if fence is not None else b""
    # Bytes before ``earliest`` are sent: never cut before them, even if the closing
    # fence then overshoots the allowance by its few bytes.
    at = max(_utf8_floor(data, hard - len(close)), start + 1, earliest)
    return Split(at, Kind.HARD, close, Block(fence=fence))


def split_here(data: bytes | bytearray, start: int, carry: Block = NO_BLOCK) -> Split:
    """A split at the end of ``data`` (a long silence ends the message where it is).

    An open code block is closed (on its own line) and carried into the next message.
    """
    text = _Text(data, start, carry)
    fence = text.tail_fence
    close = b""
    if fence is not None:
        close = fence.marker if text.tail == len(data) else b"\n" + fence.marker
    return Split(len(data), Kind.LINE if text.tail == len(data) else Kind.HARD, close,
                 Block(fence=fence))


def _sentence_end(data: bytes | bytearray, spans: list[tuple[int, int]], lo: int,
                  end: int) -> int | None:
    """The latest end of a sentence inside the prose spans, within ``[lo, end]``."""
    best = -1
    for first, last in spans:
        first, last = max(first, lo - 4), min(last, end)
        for sep in _SENTENCE_ENDS:
            pos = data.rfind(sep, first, last)
            if pos >= 0 and lo <= pos + len(sep) <= last:
                best = max(best, pos + len(sep))
    return best if best >= 0 else None


def _utf8_floor(data: bytes | bytearray, pos: int) -> int:
    while 0 < pos < len(data) and (data[pos] & 0xC0) == 0x80:
        pos -= 1
    return pos
