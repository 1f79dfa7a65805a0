"""``Bot``: owns the HTTP session, the rate limiters and the settings every stream shares."""

from __future__ import annotations

import asyncio
import math
import os
from collections import deque
from types import TracebackType
from typing import Any, Literal

import aiohttp
import structlog

from . import errors
from ._content import Buttons, check_at, check_buttons, check_text, content
from ._http import (
    TRANSPORT_EXCEPTIONS,
    RateLimiter,
    backoff_delay,
    chainable,
    message_info,
    parse_envelope,
    redact,
    translate,
)
from ._streamer import Streamer
from ._types import (
    SEND_CONTENT_TYPES,
    STREAM_CONTENT_TYPES,
    MessageInfo,
    Recipient,
    Target,
    check_content_type,
)

DEFAULT_BASE_URL = "https://chat-go.jwzhd.com/open-apis/v1"
DEFAULT_MAX_BUFFER_BYTES = 256 * 1024

log = structlog.get_logger("yunhu_stream")


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise errors.ConfigurationError(
            f"{name} must be a positive number of seconds, not {value!r}"
        )
    return float(value)


def _optional_positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    try:
        return _positive(name, value)
    except errors.ConfigurationError:
        raise errors.ConfigurationError(
            f"{name} must be a positive number or None, not {value!r}"
        ) from None


class Bot:
    """A YunHu bot: the entry point for streaming and sending messages.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with Bot(token) as bot:
            async with bot.stream(to="user:7058262") as s:
                await s.write("Hello")

    Args:
        token: The bot token. Defaults to ``$YUNHU_TOKEN``.
        base_url: API root. Defaults to ``$YUNHU_BASE_URL`` or YunHu's public URL.
        session: An aiohttp session to use instead of one the Bot creates and owns.
            Its connector's limit then governs how many streams run at once.
        connect_timeout: Seconds to establish a connection (TCP and TLS).
        response_timeout: Seconds to wait for the answer once a request's body has
            been sent. A stream's body may take as long as it needs.
        idle_timeout: If set, a stream that receives no write for this many seconds
            ends its message cleanly; later writes raise ``StreamClosedError``.
        max_buffer_bytes: Default bound of each stream's unsent text, in bytes.
        recover: Recover streams from network failures (see docs/reliability.md).
            ``False`` raises at the first failure instead.
        rate_limit: Requests per second allowed to each endpoint, shared by every
            stream and call of this Bot (YunHu documents 10). ``None`` disables it.
        retry_attempts: How many times a request is tried in all before its error
            is raised, when nothing of it was accepted.
        retry_max_wait: Total seconds of backoff one request may spend on retries.
        edit_interval: Least seconds between two edits of a recovering message.

    Raises:
        ConfigurationError: no token, or an option out of range.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 10.0,
        response_timeout: float = 60.0,
        idle_timeout: float | None = None,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        recover: bool = True,
        rate_limit: float | None = 10.0,
        retry_attempts: int = 5,
        retry_max_wait: float = 30.0,
        edit_interval: float = 1.0,
    ) -> None:
        token = token if token is not None else os.environ.get("YUNHU_TOKEN")
        if not isinstance(token, str) or not token.strip():
            raise errors.ConfigurationError(
                "no bot token: pass Bot(token=...) or set the YUNHU_TOKEN environment variable"
            )
        self._token = token.strip()
        url = base_url or os.environ.get("YUNHU_BASE_URL") or DEFAULT_BASE_URL
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise errors.ConfigurationError(
                f"base_url must be an http:// or https:// URL, not {redact(str(url))!r}"
            )
        self._base_url = url.rstrip("/")
        self.connect_timeout = _positive("connect_timeout", connect_timeout)
        self.response_timeout = _positive("response_timeout", response_timeout)
        self.idle_timeout = _optional_positive("idle_timeout", idle_timeout)
        self.edit_interval = _positive("edit_interval", edit_interval)
        self.retry_max_wait = _positive("retry_max_wait", retry_max_wait)
        self.max_buffer_bytes = _check_int("max_buffer_bytes", max_buffer_bytes, minimum=1)
        self.retry_attempts = _check_int("retry_attempts", retry_attempts, minimum=1)
        self.rate_limit = _optional_positive("rate_limit", rate_limit)
        self.recover = bool(recover)
        self._session = session
        self._owns_session = session is None
        self._limiters: dict[str, RateLimiter] = {}
        # Ids of messages this Bot delivered: recovery must never mistake one of them
        # for the partly streamed message it is looking for.
        self._delivered: deque[str] = deque(maxlen=1024)
        self._closed = False

    def __repr__(self) -> str:
        return f"Bot(base_url={self._base_url!r}, token='***')"

    @property
    def base_url(self) -> str:
        """The API root every endpoint is resolved against."""
        return self._base_url

    async def __aenter__(self) -> Bot:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if the Bot created it. Idempotent."""
        self._closed = True
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    close = aclose

    # -- plumbing shared with Streamer -------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise errors.StreamClosedError("this Bot has been closed")
        if self._session is None:
            # limit=0: aiohttp's default pool of 100 would silently hold back the
            # 101st concurrent stream. No total timeout: a stream may be long.
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout),
            )
        return self._session

    def _url(self, endpoint: str) -> str:
        return f"{self._base_url}/{endpoint}"

    async def _throttle(self, endpoint: str) -> list[float] | None:
        """Wait for the endpoint's rate limit; return the request's slot (see RateLimiter)."""
        if self.rate_limit is None:
            return None
        limiter = self._limiters.get(endpoint)
        if limiter is None:
            limiter = self._limiters[endpoint] = RateLimiter(self.rate_limit)
        return await limiter.acquire()

    def _redact(self, text: str) -> str:
        return redact(text, self._token)

    async def _call(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> Any:
        """One JSON API call with rate limiting, retries and error translation.

        Retries (with full-jitter backoff) what cannot have taken effect: a refused
        connection and a 1007 answer; for idempotent calls also 5xx and timeouts.
        """
        attempt, waited = 0, 0.0
        while True:
            try:
                return await self._call_once(method, endpoint, params=params, json=json)
            except errors.YunhuError as exc:
                retryable = isinstance(exc, errors.RateLimitedError) or (
                    isinstance(exc, errors.TransportError)
                    and (idempotent or _not_sent(exc))
                ) or (idempotent and isinstance(exc, errors.HTTPStatusError) and exc.status >= 500)
                delay = backoff_delay(attempt, 0.2, 5.0)
                if (
                    not retryable
                    or attempt + 1 >= self.retry_attempts
                    or waited + delay > self.retry_max_wait
                ):
                    raise
                log.info("request_retry", endpoint=endpoint, attempt=attempt + 1,
                         delay_s=round(delay, 3), error=type(exc).__name__)
                waited += delay
                attempt += 1
                await asyncio.sleep(delay)

    async def _call_once(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        *,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
    ) -> Any:
        await self._throttle(endpoint)
        session = self._get_session()
        query = {"token": self._token, **(params or {})}
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.connect_timeout, sock_read=self.response_timeout
        )
        try:
            async with session.request(
                method, self._url(endpoint), params=query, json=json,
                allow_redirects=False, timeout=timeout,
            ) as resp:
                body = await resp.read()
                status = resp.status
        except TRANSPORT_EXCEPTIONS as exc:
            raise translate(exc, endpoint, self._token) from chainable(exc, self._token)
        return parse_envelope(status, body, endpoint, self._token)

    # -- public API --------------------------------------------------------------------

    def stream(
        self,
        to: Target,
        *,
        content_type: str = "text",
        buttons: Buttons | None = None,
        at: list[str] | None = None,
        reply_to: str | None = None,
        quote: Literal["drop", "fallback"] = "drop",
        max_message_bytes: int | None = None,
        max_buffer_bytes: int | None = None,
    ) -> Streamer:
        """Start a streamed message to ``to``; use the result with ``async with``.

        Nothing is sent until the first non-empty write.

        Args:
            to: ``Recipient``, ``"user:ID"``, ``"group:ID"`` or a webhook event.
            content_type: ``"text"`` or ``"markdown"``.
            buttons: Rows of buttons, attached by one ``bot/edit`` after the stream
                ends (YunHu's streamed messages cannot carry buttons).
            at: User ids mentioned in the text (see ``yunhu_stream.mentions``),
                attached by the same closing edit.
            reply_to: The message id to quote. Streamed messages cannot quote.
            quote: What to do with ``reply_to``: ``"drop"`` streams without the quote;
                ``"fallback"`` does not stream and sends the whole text, quoted, with
                ``bot/send`` at close.
            max_message_bytes: Roll over into a new message before one exceeds this
                many UTF-8 bytes, at a paragraph, line or sentence end when possible.
            max_buffer_bytes: Bound of unsent text; ``write()`` waits beyond it.

        Raises:
            ValueError: for a bad ``to``, ``content_type``, ``buttons``, ``at`` or size.
        """
        recipient = Recipient.coerce(to)
        check_content_type(content_type, STREAM_CONTENT_TYPES)
        if quote not in ("drop", "fallback"):
            raise ValueError(f"quote must be 'drop' or 'fallback', not {quote!r}")
        if reply_to is not None and (not isinstance(reply_to, str) or not reply_to):
            raise ValueError(f"reply_to must be a message id string, not {reply_to!r}")
        if max_message_bytes is not None:
            _check_int("max_message_bytes", max_message_bytes, minimum=64)
        return Streamer(
            self,
            recipient,
            content_type=content_type,
            buttons=check_buttons(buttons),
            at=check_at(at),
            reply_to=reply_to,
            quote=quote,
            max_message_bytes=max_message_bytes,
            max_buffer_bytes=(
                self.max_buffer_bytes
                if max_buffer_bytes is None
                else _check_int("max_buffer_bytes", max_buffer_bytes, minimum=1)
            ),
        )

    async def send(
        self,
        to: Target,
        text: str,
        *,
        content_type: str = "text",
        buttons: Buttons | None = None,
        parent_id: str | None = None,
        at: list[str] | None = None,
    ) -> MessageInfo:
        """Send a whole message with ``bot/send``.

        Args:
            to: ``Recipient``, ``"user:ID"``, ``"group:ID"`` or a webhook event.
            text: The message text (must not be empty).
            content_type: ``"text"``, ``"markdown"`` or ``"html"``.
            buttons: Rows of button dicts.
            parent_id: Id of the message to quote.
            at: User ids mentioned in the text.

        Returns:
            The created message, with ``delivery="send"``.

        Raises:
            ValueError/TypeError: bad arguments. APIError, TransportError, …: see errors.
        """
        recipient = Recipient.coerce(to)
        check_text(text)
        if not text:
            raise ValueError("text must not be empty (YunHu rejects empty messages)")
        check_content_type(content_type, SEND_CONTENT_TYPES)
        if parent_id is not None and (not isinstance(parent_id, str) or not parent_id):
            raise ValueError(f"parent_id must be a message id string, not {parent_id!r}")
        payload: dict[str, Any] = {
            "recvId": recipient.id,
            "recvType": recipient.type,
            "contentType": content_type,
            "content": content(text, check_buttons(buttons), check_at(at)),
        }
        if parent_id:
            payload["parentId"] = parent_id
        data = await self._call("POST", "bot/send", json=payload, idempotent=False)
        info = message_info(data, "bot/send", "send")
        self._delivered.append(info.msg_id)
        return info

    async def edit(
        self,
        msg_id: str,
        to: Target,
        text: str,
        *,
        content_type: str = "text",
        buttons: Buttons | None = None,
        at: list[str] | None = None,
    ) -> None:
        """Replace a message's content with ``bot/edit``.

        ``to`` and ``content_type`` must match the original message.
        """
        recipient = Recipient.coerce(to)
        check_text(text)
        if not isinstance(msg_id, str) or not msg_id:
            raise ValueError(f"msg_id must be a non-empty string, not {msg_id!r}")
        check_content_type(content_type, SEND_CONTENT_TYPES)
        payload = {
            "msgId": msg_id,
            "recvId": recipient.id,
            "recvType": recipient.type,
            "contentType": content_type,
            "content": content(text, check_buttons(buttons), check_at(at)),
        }
        await self._call("POST", "bot/edit", json=payload, idempotent=True)

    async def recall(self, msg_id: str, to: Target) -> None:
        """Recall (delete) a message the bot sent."""
        recipient = Recipient.coerce(to)
        if not isinstance(msg_id, str) or not msg_id:
            raise ValueError(f"msg_id must be a non-empty string, not {msg_id!r}")
        payload = {"msgId": msg_id, "chatId": recipient.id, "chatType": recipient.type}
        await self._call("POST", "bot/recall", json=payload, idempotent=True)

    async def messages(
        self, to: Target, *, before: int = 20, message_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The chat's recent messages from ``bot/messages``, as YunHu returns them."""
        recipient = Recipient.coerce(to)
        _check_int("before", before, minimum=1)
        params = {"chat-id": recipient.id, "chat-type": recipient.type, "before": str(before)}
        if message_id:
            params["message-id"] = message_id
        data = await self._call("GET", "bot/messages", params=params, idempotent=True)
        items = data.get("list") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise errors.InvalidResponseError(
                status=200, body=str(data)[:300], endpoint="bot/messages"
            )
        return [item for item in items if isinstance(item, dict)]


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise errors.ConfigurationError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


def _not_sent(exc: errors.TransportError) -> bool:
    """True when the request cannot have reached the server (the connection failed)."""
    cause = exc.__cause__
    return isinstance(exc, errors.ConnectTimeoutError) or isinstance(
        cause, (aiohttp.ClientConnectorError, ConnectionRefusedError)
    )

