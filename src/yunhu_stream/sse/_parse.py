"""An incremental Server-Sent Events parser that follows the WHATWG EventSource spec.

The spec (HTML Living Standard, "Server-sent events", section "Parsing an event
stream") fixes every detail this module implements, so that a stream parses the
same here as in a browser:

* the body is UTF-8, decoded with replacement characters, one leading BOM ignored;
* lines end with CRLF, LF or CR, and a CRLF may arrive split across two reads;
* a blank line dispatches the event; a line starting with ``:`` is a comment;
* ``field: value`` strips one space after the colon; a line without a colon is a
  field with an empty value; unknown fields are ignored;
* ``data`` lines are joined with ``\\n``; an event with no ``data`` is not dispatched;
* ``id`` sets the last event id (kept across events, ignored if it contains NUL);
* ``retry`` sets the reconnection time if its value is ASCII digits only;
* an event not terminated by a blank line when the stream ends is discarded.

Feeding the same bytes in any split gives the same events: the tests check every
split point of realistic transcripts.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from .. import _validate as validate
from .._exceptions import SSEParseError

__all__ = ["DEFAULT_MAX_EVENT_CHARS", "SSEEvent", "SSEParseError", "SSEParser"]

DEFAULT_MAX_EVENT_CHARS = 4 * 1024 * 1024
"""Default cap on one pending line plus the event's data (characters)."""

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event.

    Attributes:
        data: The ``data`` lines joined with ``\\n``.
        event: The event type; ``"message"`` when the stream gave none.
        id: The last event id in force when the event was dispatched (``""``
            when none was ever set, as in a browser's ``MessageEvent.lastEventId``).
    """

    data: str
    event: str = "message"
    id: str = ""


class SSEParser:
    """Turn the bytes of a ``text/event-stream`` body into :class:`SSEEvent` values.

    Feed it each read with :meth:`feed`; call :meth:`close` when the body ends.

    Args:
        max_event_chars: Largest pending line plus event data allowed, in
            characters; past it :meth:`feed` raises :class:`SSEParseError` so that
            a hostile or broken server cannot grow memory without bound.

    Attributes:
        last_event_id: The last event id set by the stream (``""`` if none).
        retry: The reconnection time in milliseconds set by the last valid
            ``retry`` field, or ``None``.
    """

    def __init__(self, *, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self._max = validate.integer("max_event_chars", max_event_chars, minimum=1)
        # utf-8-sig drops one BOM at the very start, even when it arrives split.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._partial: list[str] = []  # an unterminated line, in pieces
        self._partial_len = 0
        self._skip_lf = False  # the previous read ended with CR: a leading LF is its pair
        self._data: list[str] = []
        self._data_len = 0
        self._event = ""
        self._closed = False
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse one read of the body.

        Returns:
            The events completed by this read, in order (often empty).

        Raises:
            TypeError: if ``chunk`` is not bytes-like.
            SSEParseError: if a line or event exceeds ``max_event_chars``.
            RuntimeError: if called after :meth:`close`.
        """
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise TypeError(f"feed() takes bytes, not {type(chunk).__name__}")
        if self._closed:
            raise RuntimeError("feed() called after close()")
        return self._feed_text(self._decoder.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """Signal the end of the body.

        Returns:
            Events completed by bytes still held in the decoder (only possible
            when the body ended with an incomplete UTF-8 sequence right before a
            final line end). An event not ended by a blank line is discarded,
            as the spec requires; :attr:`pending` tells whether one was.
        """
        if self._closed:
            return []
        events = self._feed_text(self._decoder.decode(b"", final=True))
        self._closed = True
        return events

    @property
    def pending(self) -> bool:
        """Whether an unfinished line or event is buffered (the body stopped mid-event)."""
        return bool(self._partial) or bool(self._data) or bool(self._event)

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        start = 0
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                start = 1
        events: list[SSEEvent] = []
        for match in _LINE_END.finditer(text, start):
            piece = text[start : match.start()]
            if self._partial:
                self._partial.append(piece)
                line = "".join(self._partial)
                self._partial.clear()
                self._partial_len = 0
            else:
                line = piece
            start = match.end()
            if match.group() == "\r" and start == len(text):
                self._skip_lf = True
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        rest = text[start:]
        if rest:
            self._partial.append(rest)
            self._partial_len += len(rest)
            self._check_size()
        return events

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._data_len += len(value) + 1
            self._check_size()
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif field == "retry" and value and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event_type = self._event or "message"
        self._event = ""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        self._data_len = 0
        return SSEEvent(data=data, event=event_type, id=self.last_event_id)

    def _check_size(self) -> None:
        if self._partial_len + self._data_len > self._max:
            raise SSEParseError(
                f"an event stream line or event exceeded max_event_chars={self._max}"
            )
