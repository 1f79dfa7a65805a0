"""The one boundary between aiohttp and the library.

Every HTTP request the library makes as a client goes through :func:`request`
(the emulator, the fake LLM and the webhook server are servers, not clients).
:func:`translating` maps aiohttp, OS and timeout errors to the library's own, with
every secret redacted and the original chained when that is safe. :class:`Transport`
adds what YunHu needs: the session, the token, URLs, the JSON envelope and the
chunked ``bot/send-stream`` body.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, NoReturn, cast

import aiohttp
import aiohttp.payload
from aiohttp.abc import AbstractStreamWriter

from ._exceptions import (
    BotClosedError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    HTTPStatusError,
    InvalidResponseError,
    ResponseTimeoutError,
    TransportError,
    YunhuError,
    api_error,
)

BODY_EXCERPT_CHARS = 300
MAX_RESPONSE_BYTES = 256 * 1024
"""Largest YunHu answer read (a real one is a few hundred bytes); more is an error."""

STREAM_ENDPOINT = "bot/send-stream"
_STREAM_CONTENT_TYPE = "text/plain; charset=utf-8"
_JSON_HEADERS = {"Content-Type": "application/json"}
_LARGE_BODY = 1024 * 1024
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s'\"]*")

TRANSPORT_EXCEPTIONS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)

FailureKind = Literal["connect", "connect_timeout", "response_timeout", "other"]
ErrorFactory = Callable[[FailureKind, str], YunhuError]
"""Builds the library error for one failure kind and its (redacted) detail."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every ``token=…`` query value and each of ``secrets`` with ``***``."""
    text = _TOKEN_IN_URL.sub(r"\1***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def failure_kind(exc: BaseException) -> FailureKind:
    """What kind of network failure an aiohttp/OS/timeout exception is."""
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "response_timeout"
    if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError)) or (
        isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, aiohttp.ClientError)
    ):
        return "connect_timeout"
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return "connect"
    return "other"


def _yunhu_error(endpoint: str) -> ErrorFactory:
    def build(kind: FailureKind, detail: str) -> YunhuError:
        if kind == "connect_timeout":
            return ConnectTimeoutError(f"{endpoint}: timed out ({detail})", endpoint=endpoint)
        if kind == "response_timeout":
            return ResponseTimeoutError(f"{endpoint}: timed out ({detail})", endpoint=endpoint)
        cls = ConnectError if kind == "connect" else TransportError
        return cls(f"{endpoint}: {detail}", endpoint=endpoint)

    return build


@contextmanager
def translating(
    endpoint: str, secrets: Iterable[str] = (), *, error: ErrorFactory | None = None
) -> Iterator[None]:
    """Turn aiohttp/OS/timeout errors raised inside into the library's errors.

    Args:
        endpoint: What was being called (named in the message).
        secrets: Strings to redact from the message (tokens, API keys).
        error: Builds the error for a failure kind; by default the
            :class:`~yunhu_stream.errors.TransportError` family.

    The original is chained (``raise … from exc``) unless its own text holds a
    secret, in which case the chain is cut so no traceback can print it.
    """
    try:
        yield
    except TRANSPORT_EXCEPTIONS as exc:
        _raise_translated(exc, endpoint, secrets, error)


def _raise_translated(
    exc: BaseException, endpoint: str, secrets: Iterable[str], error: ErrorFactory | None = None
) -> NoReturn:
    """Raise the library's error for ``exc`` (see :func:`translating`)."""
    kept = [s for s in secrets if s]
    detail = redact(f"{type(exc).__name__}: {exc}", kept)
    translated = (error or _yunhu_error(endpoint))(failure_kind(exc), detail)
    original = f"{exc!r} {exc}"
    leaks = any(s in original for s in kept) or _TOKEN_IN_URL.search(original) is not None
    raise translated from (None if leaks else exc)


@asynccontextmanager
async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: Any,
    *,
    endpoint: str,
    secrets: Iterable[str] = (),
    error: ErrorFactory | None = None,
    **options: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Make one request; network errors inside the block come out translated.

    Reading the response inside the ``async with`` block is covered too, so a
    connection that breaks mid-body raises the library's error, never aiohttp's.
    """
    with translating(endpoint, secrets, error=error):
        async with session.request(method, url, **options) as resp:
            yield resp


async def ws_connect(
    session: aiohttp.ClientSession,
    url: str,
    *,
    endpoint: str,
    secrets: Iterable[str] = (),
    **options: Any,
) -> aiohttp.ClientWebSocketResponse:
    """Open a WebSocket; a refused upgrade raises HTTPStatusError (status, body), network
    errors the TransportError family, every secret redacted."""
    kept = [s for s in secrets if s]
    with translating(endpoint, kept):
        try:
            ws = await session.ws_connect(url, **options)
            return cast("aiohttp.ClientWebSocketResponse", ws)  # text frames decoded as str
        except aiohttp.WSServerHandshakeError as exc:
            raise HTTPStatusError(
                status=exc.status, body=redact(str(exc.message), kept)[:BODY_EXCERPT_CHARS],
                endpoint=endpoint,
            ) from None


async def read_capped(resp: aiohttp.ClientResponse, limit: int, endpoint: str) -> bytes:
    """The (decompressed) body, or InvalidResponseError once it passes ``limit`` bytes."""
    length = resp.content_length
    if length is not None and length <= limit and not resp.headers.get("Content-Encoding"):
        return await resp.read()  # bounded by its length: no need to read in pieces
    parts: list[bytes] = []
    size = 0
    while chunk := await resp.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise InvalidResponseError(
                status=resp.status,
                body=f"answer larger than {limit} bytes (not read further)",
                endpoint=endpoint,
            )
        parts.append(chunk)
    return b"".join(parts)


def parse_envelope(status: int, body: bytes, endpoint: str, secrets: Iterable[str] = ()) -> Any:
    """Return ``data`` from a YunHu envelope, or raise the error it describes.

    Raises:
        HTTPStatusError: status >= 300 (redirects are not followed: a moved API is a
            configuration problem to surface, not to chase with the token attached).
        InvalidResponseError: the body is not a JSON object with an integer ``code``.
        APIError: ``code`` is not 1 (a subclass for each documented code).
    """
    kept = list(secrets)

    def excerpt() -> str:  # error pages sometimes echo the request URL, token and all
        return redact(body[:BODY_EXCERPT_CHARS].decode("utf-8", "replace"), kept)

    if status >= 300:
        raise HTTPStatusError(status=status, body=excerpt(), endpoint=endpoint)
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict) or type(envelope.get("code")) is not int:
        raise InvalidResponseError(status=status, body=excerpt(), endpoint=endpoint)
    code: int = envelope["code"]
    if code != 1:
        msg = envelope.get("msg", envelope.get("message", ""))
        raise api_error(code, redact(str(msg), kept), endpoint)
    return envelope.get("data")


BodyWriter = Callable[["BodySink"], Awaitable[None]]
"""Writes one stream request's body into the sink it is given (see :class:`BodySink`)."""


class BodySink:
    """Where a streamed request body goes: one HTTP chunk per :meth:`send`.

    It wraps the writer aiohttp hands a payload, using only the public
    ``AbstractStreamWriter`` contract (``write``, ``write_eof``, ``transport``).
    """

    __slots__ = ("_started", "_writer")

    def __init__(self, writer: AbstractStreamWriter) -> None:
        self._writer = writer
        self._started = False  # the request head has gone out (with the first chunk)

    async def send(self, chunk: bytes) -> None:
        """Send ``chunk`` (the first one carries the request head); waits while the
        connection's buffer is full."""
        await self._writer.write(chunk)
        self._started = True

    async def end(self, chunk: bytes = b"") -> None:
        """Send ``chunk`` and the end of the body, in one write when they fit."""
        await self._writer.write_eof(chunk)

    def ready(self) -> bool:
        """Whether :meth:`send_now` can write at once: the head is out and the
        connection has nothing queued (so no backpressure is skipped)."""
        transport = self._writer.transport if self._started else None
        return (
            transport is not None
            and not transport.is_closing()
            and not transport.get_write_buffer_size()
        )

    def send_now(self, chunk: bytes) -> None:
        """Write ``chunk`` as one HTTP chunk straight to the connection (call only
        when :meth:`ready`): the write-through path of a parked body."""
        transport = self._writer.transport
        assert transport is not None
        transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))


class _StreamPayload(aiohttp.payload.Payload):
    """A chunked ``text/plain`` body written by a :data:`BodyWriter` (no async generator
    between the text and the connection)."""

    def __init__(self, body: BodyWriter) -> None:
        super().__init__(body, content_type=_STREAM_CONTENT_TYPE)
        self.body_writer = body
        self.writer_task: asyncio.Task[Any] | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed request body cannot be read back")

    async def write(self, writer: AbstractStreamWriter) -> None:
        self.writer_task = asyncio.current_task()  # aiohttp's body-writer task
        await self.body_writer(BodySink(writer))


class Transport:
    """YunHu over HTTP: one session, the token, URLs, envelopes and the stream body.

    Args:
        token: The bot token (sent as ``token=``; redacted from every error).
        base_url: The API root, without a trailing slash.
        session: A session to use and leave open; by default one is made on first
            use (no pool limit: every concurrent stream needs its own connection)
            and closed by :meth:`aclose`.
        connect_timeout: Seconds to connect (TCP and TLS).
        response_timeout: Seconds to wait for a JSON call's answer.
    """

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None,
        connect_timeout: float,
        response_timeout: float,
    ) -> None:
        self._token = token
        self.base_url = base_url
        self._stream_url = f"{base_url}/{STREAM_ENDPOINT}"
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._call_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=response_timeout
        )
        # No read timeout inside aiohttp for a stream: it would also run while a
        # long body is still being sent. The caller times the answer once the
        # body has ended.
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout)
        self._connect_timeout = connect_timeout
        self.calls_in_flight = 0  #: JSON calls waiting for their answer
        self.streams_in_flight = 0  #: send-stream requests open

    def __repr__(self) -> str:
        return f"<Transport {self.base_url} token=***>"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    def session(self) -> aiohttp.ClientSession:
        """The session requests use (made on first use).

        Raises:
            BotClosedError: :meth:`aclose` ran.
        """
        if self._closed:
            raise BotClosedError("this Bot has been closed")
        if self._session is None:
            # limit=0: aiohttp's default pool of 100 would silently hold back the
            # 101st concurrent stream. No total timeout: a stream may be long.
            # No cookie jar: YunHu authenticates by token, and matching every request's
            # URL against a jar costs time on each one.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session


    async def call(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> Any:
        """One API call (no retry) with a JSON body or a multipart ``form``: the
        envelope's ``data``, or the error it means."""
        session = self.session()
        body: bytes | io.BytesIO | None = None
        if payload is not None:
            try:
                body = json.dumps(payload, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                # Arguments are checked on the way in; this keeps a missed case typed.
                raise ConfigurationError(
                    f"{endpoint}: the request holds text UTF-8 cannot encode (a lone "
                    "surrogate); use valid Unicode text"
                ) from None
            if len(body) >= _LARGE_BODY:  # aiohttp warns that raw bytes this large block
                body = io.BytesIO(body)
        self.calls_in_flight += 1
        try:
            async with request(
                session, method, f"{self.base_url}/{endpoint}",
                endpoint=endpoint, secrets=(self._token,),
                params={"token": self._token, **(params or {})},
                data=form if form is not None else body,
                headers=_JSON_HEADERS if body is not None else None,
                allow_redirects=False, timeout=self._call_timeout,
            ) as resp:
                body = await read_capped(resp, MAX_RESPONSE_BYTES, endpoint)
                status = resp.status
        finally:
            self.calls_in_flight -= 1
        return parse_envelope(status, body, endpoint, (self._token,))

    async def post_stream(self, params: dict[str, str], body: BodyWriter) -> Any:
        """``POST bot/send-stream`` with a chunked body that ``body`` writes.

        Returns the envelope's ``data`` once the server answers. The caller bounds
        the wait for that answer (it knows when its body ended).
        """
        payload = _StreamPayload(body)
        session = self.session()
        self.streams_in_flight += 1
        try:
            # What translating() does, without its context manager: this runs once per
            # streamed reply, and each object a stream keeps alive shows in the benchmarks.
            try:
                async with session.post(
                    self._stream_url, params={"token": self._token, **params}, data=payload,
                    allow_redirects=False, timeout=self._stream_timeout,
                ) as resp:
                    raw = await read_capped(resp, MAX_RESPONSE_BYTES, STREAM_ENDPOINT)
                    status = resp.status
            except TRANSPORT_EXCEPTIONS as exc:
                _raise_translated(exc, STREAM_ENDPOINT, (self._token,))
        finally:
            self.streams_in_flight -= 1
            # An early answer leaves aiohttp's body writer running, and what it
            # raises (write_eof on a connection the server closed) was already
            # answered for by the response or error we have: retrieve it so asyncio
            # does not report it.
            writer = payload.writer_task
            if writer is not None:
                if writer.done():
                    _retrieve(writer)
                else:
                    writer.add_done_callback(_retrieve)
        return parse_envelope(status, raw, STREAM_ENDPOINT, (self._token,))

    async def aclose(self) -> None:
        """Close the session if this transport made it. Idempotent."""
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
