"""``Api``: YunHu's JSON endpoints with rate limiting and retries.

The :class:`~yunhu_stream.Bot` validates what callers pass and delegates here; a
stream's delivery and recovery use the same object, so every request of a Bot
shares its transport, its limiters and its retry rules.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import aiohttp

from ._exceptions import (
    ConnectError,
    HTTPStatusError,
    InvalidResponseError,
    RateLimitedError,
    TransportError,
    YunhuError,
)
from ._log import Logger
from ._ratelimit import Limits
from ._retry import RetryPolicy
from ._transport import BODY_EXCERPT_CHARS, Transport
from ._types import Delivery, MessageInfo, Recipient


class InFlight(Protocol):
    """A stream of this Bot that is running, as recovery sees it."""

    recipient: Recipient

    def sent_text(self) -> str:
        """What its current attempt has sent of its current message."""


class SharedRegistry(Protocol):
    """Streams of every process with this token (``yunhu_stream.redis.SharedBot``):
    what recovery consults so that it never takes another process's message."""

    def new_stream_key(self) -> str:
        """A name for one stream, unique across processes."""

    async def stream_started(self, key: str, chat: str, started_ms: int) -> None:
        """A stream of ``chat`` runs."""

    async def stream_progress(self, key: str, chat: str, started_ms: int, sent_bytes: int,
                              msg_id: str) -> None:
        """It delivered ``msg_id``."""

    async def stream_ended(self, key: str, chat: str) -> None:
        """It ended."""

    async def remote_streams(self, chat: str) -> dict[str, tuple[int, int]]:
        """Other processes' running streams of ``chat``: key → (started ms, bytes)."""

    async def delivered(self, chat: str) -> set[str]:
        """Message ids any process delivered in ``chat``."""

    async def claim(self, msg_id: str) -> bool:
        """Take ``msg_id`` for one recovery; False if another process has it."""

    async def release(self, msg_id: str) -> None:
        """Give up a claim."""


def message_info(data: Any, endpoint: str, delivery: Delivery) -> MessageInfo:
    """Read ``data.messageInfo``; a malformed one is an InvalidResponseError."""
    try:
        return MessageInfo.from_data(data, delivery)
    except (KeyError, TypeError) as exc:
        raise InvalidResponseError(
            status=200, body=str(data)[:BODY_EXCERPT_CHARS], endpoint=endpoint
        ) from exc


def retryable(exc: YunhuError, *, idempotent: bool) -> bool:
    """Whether a failed JSON call may be tried again.

    What cannot have taken effect always may: a connection that was never made,
    a 1007 answer and an HTTP 429 (a gateway's "too many requests"). Idempotent
    calls also retry other network failures and 5xx.
    """
    if isinstance(exc, (RateLimitedError, ConnectError)) or (
        isinstance(exc, HTTPStatusError) and exc.status == 429
    ):
        return True
    if isinstance(exc, HTTPStatusError) and exc.status == 429:
        return True  # refused before it was processed: safe for any call
    if not idempotent:
        return False
    return isinstance(exc, TransportError) or (
        isinstance(exc, HTTPStatusError) and exc.status >= 500
    )


class Api:
    """The JSON calls of one Bot (arguments already validated).

    Attributes:
        transport: The HTTP boundary.
        limits: The per-endpoint rate limiters.
        retry: The retry rules for one request.
        delivered: Ids of the messages this Bot created, newest last (bounded);
            recovery must never take one of them for a partly streamed message.
        streams: The streams of this Bot running now (recovery asks them what
            they sent, so it never takes their message for its own).
        claimed: Message ids a running recovery has taken as its own.
        shared: The registry of every process's streams (Redis), or None.
    """

    def __init__(
        self, transport: Transport, limits: Limits, retry: RetryPolicy, log: Logger,
        shared: SharedRegistry | None = None,
    ) -> None:
        self.shared = shared
        self.transport = transport
        self.limits = limits
        self.retry = retry
        self.delivered: deque[str] = deque(maxlen=1024)
        self.streams: set[InFlight] = set()
        self.claimed: set[str] = set()
        self._log = log

    async def call(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        idempotent: bool,
    ) -> Any:
        """One API call with rate limiting, retries and error translation. ``form``
        builds a multipart body (afresh for each attempt: a sent one cannot be resent)."""
        budget = self.retry.budget()
        limit_key = "bot/board" if endpoint.startswith("bot/board") else endpoint
        while True:
            await self.limits.acquire(limit_key)
            try:
                return await self.transport.call(
                    method, endpoint, params=params, payload=json,
                    form=form() if form else None,
                )
            except YunhuError as exc:
                if not retryable(exc, idempotent=idempotent) or not await budget.backoff(
                    exc, self._log.bind(endpoint=endpoint), "request_retry"
                ):
                    raise

    async def send(self, to: Recipient, content_type: str, content: dict[str, Any],
                   parent_id: str | None = None) -> MessageInfo:
        """``bot/send``; the created message (``delivery="send"``)."""
        payload: dict[str, Any] = {
            "recvId": to.id, "recvType": to.type,
            "contentType": content_type, "content": content,
        }
        if parent_id:
            payload["parentId"] = parent_id
        data = await self.call("POST", "bot/send", json=payload, idempotent=False)
        info = message_info(data, "bot/send", "send")
        self.delivered.append(info.msg_id)
        return info

    async def edit(self, msg_id: str, to: Recipient, content_type: str,
                   content: dict[str, Any]) -> None:
        """``bot/edit``: replace a message's content."""
        payload = {
            "msgId": msg_id, "recvId": to.id, "recvType": to.type,
            "contentType": content_type, "content": content,
        }
        await self.call("POST", "bot/edit", json=payload, idempotent=True)

    async def recall(self, msg_id: str, to: Recipient) -> None:
        """``bot/recall``: delete a message the bot sent."""
        payload = {"msgId": msg_id, "chatId": to.id, "chatType": to.type}
        await self.call("POST", "bot/recall", json=payload, idempotent=True)

    async def messages(self, to: Recipient, *, before: int,
                       message_id: str | None = None) -> list[dict[str, Any]]:
        """``bot/messages``: the chat's messages as YunHu lists them."""
        params = {"chat-id": to.id, "chat-type": to.type, "before": str(before)}
        if message_id:
            params["message-id"] = message_id
        data = await self.call("GET", "bot/messages", params=params, idempotent=True)
        items = data.get("list") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError(
                status=200, body=str(data)[:BODY_EXCERPT_CHARS], endpoint="bot/messages"
            )
        return [item for item in items if isinstance(item, dict)]

    async def batch_send(self, recv_type: str, ids: Sequence[str], content_type: str,
                         content: dict[str, Any]) -> list[MessageInfo]:
        """``bot/batch_send``: one message in each chat; the ones YunHu created."""
        payload = {"recvIds": list(ids), "recvType": recv_type,
                   "contentType": content_type, "content": content}
        data = await self.call("POST", "bot/batch_send", json=payload, idempotent=False)
        items = data.get("successList") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise InvalidResponseError(
                status=200, body=str(data)[:BODY_EXCERPT_CHARS], endpoint="bot/batch_send"
            )
        infos = [message_info({"messageInfo": item}, "bot/batch_send", "send") for item in items]
        self.delivered.extend(info.msg_id for info in infos)
        return infos

    async def upload(self, kind: str, filename: str, data: bytes, mime: str) -> str:
        """``{kind}/upload`` (multipart field ``kind``); the key YunHu answers."""
        endpoint, field = f"{kind}/upload", f"{kind}Key"

        def form() -> aiohttp.FormData:
            built = aiohttp.FormData()  # a file object: FormData refuses large bytes values
            built.add_field(kind, io.BytesIO(data), filename=filename, content_type=mime)
            return built

        answer = await self.call("POST", endpoint, form=form, idempotent=False)
        key = answer.get(field) if isinstance(answer, dict) else None
        if not isinstance(key, str) or not key:
            raise InvalidResponseError(
                status=200, body=str(answer)[:BODY_EXCERPT_CHARS], endpoint=endpoint
            )
        return key

    async def board(self, endpoint: str, payload: dict[str, Any]) -> None:
        """One of the four board calls; they answer no data."""
        await self.call("POST", endpoint, json=payload, idempotent=True)
