"""Relay a text stream to browsers as Server-Sent Events (``sse_response``)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Literal

from aiohttp import web

from .. import _validate as validate
from .._exceptions import ConfigurationError
from .._log import get_logger

log = get_logger("sse")

_LINE_END = re.compile(r"\r\n|\r|\n")
_DISCONNECT_POLL = 0.2  # seconds between checks that the client is still there
SSE_HEADERS: Mapping[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event through instead of buffering
}


def format_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """Encode one event: ``event:``/``id:`` fields, one ``data:`` line per line, a blank line.

    Line ends inside ``data`` (CRLF, CR, LF) each become one ``data:`` line, so a
    browser's ``event.data`` gets the text back with ``\\n`` line ends.

    Raises:
        ValueError: ``event`` or ``id`` contains a line break (or ``id`` a NUL).
    """
    head = ""
    if event is not None:
        _check_field("event", event)
        head += f"event: {event}\n"
    if id is not None:
        _check_field("id", id)
        if "\0" in id:
            raise ConfigurationError("an event id must not contain NUL")
        head += f"id: {id}\n"
    body = "".join(f"data: {line}\n" for line in _LINE_END.split(data))
    return f"{head}{body}\n".encode()


async def sse_response(
    request: web.BaseRequest,
    source: AsyncIterable[str],
    *,
    event: str | None = "delta",
    done_event: str = "done",
    error_event: str = "error",
    data: Literal["json", "text"] = "json",
    keepalive: float | None = 15.0,
    headers: Mapping[str, str] | None = None,
    raise_errors: bool = True,
    write_timeout: float | None = 30.0,
) -> web.StreamResponse:
    """Stream the text pieces of ``source`` to the client as Server-Sent Events.

    Sends ``text/event-stream; charset=utf-8`` with ``Cache-Control: no-cache`` and
    ``X-Accel-Buffering: no``, then one event per non-empty piece, each written
    and drained on its own (one flush per event), then a ``done_event`` whose
    data is ``{"deltas": n, "chars": n}``.

    * ``data="json"`` (default): each piece is sent as a JSON string
      (``JSON.parse(e.data)`` gives it back exactly).
    * ``data="text"``: sent as is, split into ``data:`` lines; the browser sees
      every line end as ``\\n``.

    If the client goes away, reading stops: a pending read of ``source`` is
    cancelled and ``source.aclose()`` is called (for a :func:`tee` consumer,
    this detaches it and the other consumers go on). If ``source`` raises, an
    ``error_event`` with data ``{"error": "<exception class name>"}`` is sent
    (no message: it could hold internals) and the body is ended cleanly; then
    the exception is re-raised (aiohttp logs it), or with ``raise_errors=False``
    logged as ``sse_relay_failed`` and the response returned. The source is
    closed however the call ends.

    Args:
        request: The aiohttp request to answer.
        source: Async iterable of ``str`` pieces (e.g. LLM deltas).
        event: Event type for pieces; ``None`` sends them untyped
            (``onmessage`` in the browser).
        done_event: Event type of the final event.
        error_event: Event type sent when ``source`` fails.
        data: ``"json"`` or ``"text"``, see above.
        keepalive: Seconds of silence after which a ``: keep-alive`` comment is
            sent (proxies drop idle connections); ``None`` disables it.
        headers: Extra response headers.
        raise_errors: Re-raise the source's exception after ending the body
            (default), or only log it.
        write_timeout: Seconds one write may wait for the client to take it; a client
            that keeps the connection open but stops reading is then dropped (the
            connection is aborted, logged as ``sse_reader_dropped``, and the source
            closed, so the other readers of a :func:`tee` and the chat reply carry
            on). ``None`` waits for ever.

    Returns:
        The prepared, finished response: return it from the handler.

    Raises:
        ValueError: an invalid argument (before anything is sent).
        TypeError: ``source`` is not an async iterable, or yielded a non-str.
        Exception: whatever ``source`` raised, after the error event (unless
            ``raise_errors`` is false).
    """
    for name, value in (("done_event", done_event), ("error_event", error_event)):
        _check_field(name, value)
    if event is not None:
        _check_field("event", event)
    validate.choice("data", data, ("json", "text"))
    validate.optional_seconds("keepalive", keepalive)
    validate.optional_seconds("write_timeout", write_timeout)
    if not isinstance(source, AsyncIterable):
        raise TypeError(
            f"sse_response() takes an async iterable of str, not {type(source).__name__}"
        )

    resp = web.StreamResponse(headers={**SSE_HEADERS, **(headers or {})})
    await resp.prepare(request)
    relay = _Relay(request, resp, aiter(source), keepalive, write_timeout)
    failure = await relay.run(event, data, done_event, error_event)
    if failure is not None and raise_errors:
        raise failure
    return resp


class _Relay:
    """One running sse_response: the source loop plus a watcher for disconnects and silence."""

    def __init__(
        self,
        request: web.BaseRequest,
        resp: web.StreamResponse,
        iterator: AsyncIterator[str],
        keepalive: float | None,
        write_timeout: float | None = None,
    ) -> None:
        self.request = request
        self.write_timeout = write_timeout
        self.resp = resp
        self.iterator = iterator
        self.keepalive = keepalive
        self.lock = asyncio.Lock()
        self.last_write = time.monotonic()
        self.disconnected = False
        self.finished = False
        self.deltas = 0
        self.chars = 0

    async def write(self, frame: bytes) -> None:
        stalled = None
        try:
            async with self.lock:
                if self.write_timeout is not None:
                    stalled = asyncio.get_running_loop().call_later(
                        self.write_timeout, self._drop_stalled_reader)
                await self.resp.write(frame)
                self.last_write = time.monotonic()
        except ConnectionError as exc:
            raise _ClientGone from exc
        finally:
            if stalled is not None:
                stalled.cancel()

    def _drop_stalled_reader(self) -> None:
        """A write waited ``write_timeout``: the client holds the connection but does not
        read. Abort it; the pending write then fails as a disconnect."""
        log.warning("sse_reader_dropped", write_timeout_s=self.write_timeout,
                    deltas=self.deltas)
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def watch(self, host: asyncio.Task[object]) -> None:
        # aiohttp gives a GET handler no disconnect signal (unless handler_cancellation
        # is on), so check the transport while the source is silent.
        while not self.finished:
            await asyncio.sleep(_DISCONNECT_POLL)
            gone = self.client_gone()
            silent = time.monotonic() - self.last_write
            if not gone and self.keepalive is not None and silent >= self.keepalive:
                try:
                    await self.write(b": keep-alive\n\n")
                except _ClientGone:
                    gone = True
            if gone and not self.finished:
                self.disconnected = True
                host.cancel()
                return

    async def relay(self, event: str | None, data: str, done_event: str) -> None:
        async for piece in self.iterator:
            if not isinstance(piece, str):
                raise TypeError(
                    f"sse_response(): the source yielded {type(piece).__name__}; it must yield str"
                )
            if not piece:
                continue
            payload = json.dumps(piece, ensure_ascii=False) if data == "json" else piece
            await self.write(format_event(payload, event=event))
            self.deltas += 1
            self.chars += len(piece)
        summary = json.dumps({"deltas": self.deltas, "chars": self.chars})
        await self.write(format_event(summary, event=done_event))

    async def run(
        self, event: str | None, data: str, done_event: str, error_event: str
    ) -> Exception | None:
        """Relay until the end, a failure or a disconnect; return the source's exception."""
        host = asyncio.current_task()
        assert host is not None  # aiohttp runs handlers in tasks
        watcher = asyncio.create_task(self.watch(host), name="yunhu_stream.sse.watch")
        started = time.monotonic()
        failure: Exception | None = None
        try:
            try:
                await self.relay(event, data, done_event)
            except _ClientGone:
                raise
            except Exception as exc:
                failure = exc
                await self.write(
                    format_event(json.dumps({"error": type(exc).__name__}), event=error_event)
                )
                try:
                    await self.resp.write_eof()
                except ConnectionError as lost:
                    raise _ClientGone from lost
        except _ClientGone:
            self.disconnected = True
        except asyncio.CancelledError:
            if not self.disconnected:
                raise
            # The cancellation was ours (the watcher saw the client leave): absorb it.
            uncancel = getattr(host, "uncancel", None)  # Python 3.11+
            if uncancel is not None and uncancel() > 0:
                raise
        finally:
            self.finished = True
            watcher.cancel()
            await asyncio.wait({watcher})
            await _aclose(self.iterator)
            # aiohttp may cancel the handler itself when the client leaves (its
            # handler_cancellation option): that cancellation propagates, but is logged
            # as the disconnect it is.
            gone = self.disconnected or self.client_gone()
            outcome = "disconnected" if gone else "error" if failure else "done"
            log.info(
                "sse_relay_finished",
                outcome=outcome,
                deltas=self.deltas,
                chars=self.chars,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
            )
        if failure is not None:
            log.warning("sse_relay_failed", error=type(failure).__name__, exc_info=failure)
        return failure


class _ClientGone(Exception):
    """A write failed because the client closed the connection."""


async def _aclose(iterator: object) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def _check_field(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or _LINE_END.search(value):
        raise ConfigurationError(
            f"{name} must be a non-empty string without line breaks, not {value!r}"
        )
