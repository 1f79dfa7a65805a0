"""Server-Sent Events: relay a text stream to browsers, split a stream, parse one.

::

    from yunhu_stream.sse import sse_response, tee

    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, deltas)      # one answer, live, in a browser

    to_chat, to_page = tee(deltas, 2)                   # one answer, two readers

On the page::

    const es = new EventSource("/answer");
    es.addEventListener("delta", (e) => out.textContent += JSON.parse(e.data));
    es.addEventListener("done", () => es.close());      // else the browser reconnects

:class:`SSEParser` (the other direction: bytes of an event stream in, events out)
is the one :mod:`yunhu_stream.llm` uses.
"""

from __future__ import annotations

from .._exceptions import SSEParseError
from .._public import publish
from ._parse import SSEEvent, SSEParser
from ._response import format_event, sse_response
from ._tee import TeeIterator, tee

__all__ = [
    "SSEEvent",
    "SSEParseError",
    "SSEParser",
    "TeeIterator",
    "format_event",
    "sse_response",
    "tee",
]

publish(globals(), __all__)
