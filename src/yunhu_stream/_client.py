"""``Bot``: the entry point; owns the transport, the rate limiters and the stream settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from . import _validate as validate
from ._api import Api
from ._buffer import TranscriptBuffer
from ._content import Buttons, check_at, check_buttons, check_text, content
from ._delivery import Delivery, StreamSettings
from ._exceptions import BotClosedError, ConfigurationError
from ._first_chunk import FirstChunk
from ._lifecycle import Lifecycle
from ._log import get_logger
from ._ratelimit import Limits
from ._retry import RetryPolicy
from ._streamer import Streamer
from ._transport import Transport, redact
from ._types import (
    MEDIA_TYPES,
    SEND_CONTENT_TYPES,
    STREAM_CONTENT_TYPES,
    MessageInfo,
    Recipient,
    Target,
    check_content_type,
)
from ._uploads import Source, read_upload

DEFAULT_BASE_URL = "https://chat-go.jwzhd.com/open-apis/v1"
DEFAULT_MAX_BUFFER_BYTES = 256 * 1024

log = get_logger("client")


@dataclass(frozen=True, slots=True)
class BotStatistics:
    """What a Bot has in flight (see :attr:`Bot.stats`)."""

    calls_in_flight: int  #: JSON calls (send, edit, …) waiting for their answer
    streams_in_flight: int  #: send-stream requests open (each holds one connection)


class Bot(Lifecycle):
    """A YunHu bot: the entry point for streaming and sending messages.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with Bot(token) as bot:
            async with bot.stream(to="user:7058262") as s:
                await s.write("Hello")

    A Bot may also be used without ``async with``: its HTTP session opens on the
    first request. After :meth:`aclose` every call raises ``BotClosedError``.

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

    _closed_error = BotClosedError

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
            raise ConfigurationError(
                "no bot token: pass Bot(token=...) or set the YUNHU_TOKEN environment variable"
            )
        url = base_url or os.environ.get("YUNHU_BASE_URL") or DEFAULT_BASE_URL
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url must be an http:// or https:// URL, not {redact(str(url))!r}"
            )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise validate.fail("session", "an aiohttp.ClientSession or None", session)
        self.connect_timeout = validate.seconds("connect_timeout", connect_timeout)
        self.response_timeout = validate.seconds("response_timeout", response_timeout)
        self.idle_timeout = validate.optional_seconds("idle_timeout", idle_timeout)
        self.edit_interval = validate.seconds("edit_interval", edit_interval)
        self.retry_max_wait = validate.seconds("retry_max_wait", retry_max_wait)
        self.max_buffer_bytes = validate.integer("max_buffer_bytes", max_buffer_bytes, minimum=1)
        self.retry_attempts = validate.integer("retry_attempts", retry_attempts, minimum=1)
        self.rate_limit = validate.positive_number("rate_limit", rate_limit, allow_none=True)
        self.recover = validate.boolean("recover", recover)
        self._transport = Transport(
            token.strip(), url.rstrip("/"), session=session,
            connect_timeout=self.connect_timeout, response_timeout=self.response_timeout,
        )
        self._api = Api(
            self._transport, Limits(self.rate_limit),
            RetryPolicy(self.retry_attempts, self.retry_max_wait), log,
        )
        self._settings = StreamSettings(
            recover=self.recover, idle_timeout=self.idle_timeout,
            edit_interval=self.edit_interval, response_timeout=self.response_timeout,
        )

    def __repr__(self) -> str:
        return f"Bot(base_url={self.base_url!r}, token='***')"

    @property
    def base_url(self) -> str:
        """The API root every endpoint is resolved against."""
        return self._transport.base_url

    @property
    def stats(self) -> BotStatistics:
        """A snapshot of what this Bot has in flight."""
        t = self._transport
        return BotStatistics(calls_in_flight=t.calls_in_flight,
                             streams_in_flight=t.streams_in_flight)

    async def _open(self) -> None:
        self._transport.session()

    async def _close(self) -> None:
        await self._transport.aclose()

    close = Lifecycle.aclose
    """Alias of :meth:`aclose`."""

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
        max_text_bytes: int | None = None,
        first_chunk: FirstChunk | None = None,
        gap: float | None = None,
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
                many UTF-8 bytes, at a paragraph, line or sentence end when possible;
                Markdown messages never inside a code block or table row (a code block
                open at the split is closed and reopened, see docs/streaming.md).
            max_buffer_bytes: Bound of unsent text; ``write()`` waits beyond it.
            max_text_bytes: Keep at most about this many bytes of delivered messages
                for :attr:`Streamer.text` (with ``max_message_bytes``, a stream that
                rolls over then runs in constant memory). ``None`` keeps it all.
            first_chunk: When the first chunk may go (:class:`FirstChunk`: never with
                nothing but Markdown markup, and optionally a minimum of characters, a
                sentence end, a deadline). None (the default): at the first write.
            gap: Seconds without a write after which the current message ends where it
                is; text written later continues in a new message (a tool call, a slow
                model). None (the default): messages wait as long as it takes.

        Raises:
            ConfigurationError: for a bad ``to``, ``content_type``, ``buttons``, ``at``,
                ``quote``, ``reply_to`` or size (a ``ValueError``).
            BotClosedError: the Bot was closed.
        """
        self._check_not_closed()
        recipient = Recipient.coerce(to)
        check_content_type(content_type, STREAM_CONTENT_TYPES)
        validate.choice("quote", quote, ("drop", "fallback"))
        validate.optional_identifier("reply_to", reply_to)
        validate.optional_integer("max_message_bytes", max_message_bytes, minimum=64)
        validate.optional_integer("max_text_bytes", max_text_bytes, minimum=0)
        if first_chunk is not None and not isinstance(first_chunk, FirstChunk):
            raise validate.fail("first_chunk", "a FirstChunk or None", first_chunk)
        validate.optional_seconds("gap", gap)
        buffer_bytes = (
            self.max_buffer_bytes
            if max_buffer_bytes is None
            else validate.integer("max_buffer_bytes", max_buffer_bytes, minimum=1)
        )
        stream_log = log.bind(recv_id=recipient.id, recv_type=recipient.type)
        if reply_to is not None and quote == "drop":
            stream_log.debug("quote_dropped", reply_to=reply_to,
                      reason="send-stream has no parentId; pass quote='fallback' to keep it")
        buffer = TranscriptBuffer(buffer_bytes, max_message_bytes, max_text_bytes,
                                  markdown=content_type == "markdown")
        # A quoted fallback is sent whole at close: its buffer has no bound to wait on
        # (set here, not when the delivery task first runs, so write_nowait() never
        # sees a bound before then).
        buffer.unbounded = reply_to is not None and quote == "fallback"
        delivery = Delivery(
            self._api, self._settings, recipient, content_type, buffer, stream_log,
            buttons=check_buttons(buttons), at=check_at(at),
            reply_to=reply_to if quote == "fallback" else None,
            first_chunk=first_chunk, gap=gap,
        )
        return Streamer(recipient, content_type, buffer, delivery, stream_log)

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
            text: The message text (must not be empty); for ``image``, ``video`` and
                ``file`` the key an ``upload_*`` call returned.
            content_type: ``"text"``, ``"markdown"``, ``"html"``, ``"image"``,
                ``"video"`` or ``"file"``.
            buttons: Rows of button dicts, or a flat list of them (one row).
            parent_id: Id of the message to quote.
            at: User ids mentioned in the text.

        Returns:
            The created message, with ``delivery="send"``.

        Raises:
            ConfigurationError: a bad argument (``TypeError`` for text that is not a str).
            APIError, TransportError, …: the request failed (see ``errors``).
        """
        recipient = Recipient.coerce(to)
        check_text(text)
        if not text:
            raise ConfigurationError("text must not be empty (YunHu rejects empty messages)")
        check_content_type(content_type, SEND_CONTENT_TYPES + MEDIA_TYPES)
        validate.optional_identifier("parent_id", parent_id)
        body = content(text, check_buttons(buttons), check_at(at))
        if content_type in MEDIA_TYPES:
            body[f"{content_type}Key"] = body.pop("text")
        return await self._api.send(recipient, content_type, body, parent_id=parent_id)

    async def batch_send(
        self,
        to: list[str],
        text: str,
        *,
        recv_type: Literal["user", "group"] = "user",
        content_type: str = "text",
        buttons: Buttons | None = None,
        at: list[str] | None = None,
    ) -> list[MessageInfo]:
        """Send one message to many chats with ``bot/batch_send``.

        Args:
            to: The user (or group) ids.
            text: As for :meth:`send` (a media key for media types).
            recv_type: ``"user"`` or ``"group"``: what the ids are.
            content_type, buttons, at: As for :meth:`send`.

        Returns:
            The messages YunHu created (``successList``), one per chat it reached.

        Raises:
            ConfigurationError: a bad argument.
            APIError, TransportError, …: the request failed.
        """
        if isinstance(to, str) or not isinstance(to, list) or not to:
            raise ConfigurationError(f"to must be a non-empty list of ids, not {to!r}")
        ids = [validate.identifier("to[]", i) for i in to]
        validate.choice("recv_type", recv_type, ("user", "group"))
        check_text(text)
        if not text:
            raise ConfigurationError("text must not be empty (YunHu rejects empty messages)")
        check_content_type(content_type, SEND_CONTENT_TYPES + MEDIA_TYPES)
        body = content(text, check_buttons(buttons), check_at(at))
        if content_type in MEDIA_TYPES:
            body[f"{content_type}Key"] = body.pop("text")
        return await self._api.batch_send(recv_type, ids, content_type, body)

    async def upload_image(self, source: Source) -> str:
        """Upload an image (at most 10 MB) for a later ``send(..., content_type="image")``.

        Args:
            source: A path, bytes, or a binary file object.

        Returns:
            The ``imageKey``.

        Raises:
            ConfigurationError: an unusable source, an empty one or one over the limit.
            APIError, TransportError, …: the request failed.
        """
        return await self._upload("image", source)

    async def upload_video(self, source: Source) -> str:
        """Upload a video (at most 20 MB); the ``videoKey``. See :meth:`upload_image`."""
        return await self._upload("video", source)

    async def upload_file(self, source: Source) -> str:
        """Upload a file (at most 20 MB); the ``fileKey``. See :meth:`upload_image`."""
        return await self._upload("file", source)

    async def _upload(self, kind: str, source: Source) -> str:
        filename, data, mime = read_upload(kind, source)
        return await self._api.upload(kind, filename, data, mime)

    async def set_board(
        self,
        to: Target | None,
        text: str,
        *,
        content_type: str = "text",
        member: str | None = None,
        expire_at: int = 0,
    ) -> None:
        """Pin a board (看板) above a chat (``bot/board``), or for everyone (``to=None``,
        ``bot/board-all``).

        Args:
            to: The chat, or None for every user of the bot.
            text: The board's text.
            content_type: ``"text"``, ``"markdown"`` or ``"html"``.
            member: Show it only to this member of the chat.
            expire_at: Unix time in seconds when it disappears; 0 = never.

        Raises:
            ConfigurationError: a bad argument (``member`` without ``to``, too).
        """
        check_text(text)
        if not text:
            raise ConfigurationError("text must not be empty (YunHu rejects empty boards)")
        check_content_type(content_type, SEND_CONTENT_TYPES)
        validate.optional_identifier("member", member)
        validate.integer("expire_at", expire_at, minimum=0)
        payload: dict[str, Any] = {
            "contentType": content_type, "content": text, "expireTime": expire_at,
        }
        await self._api.board(*self._board_target(to, member, payload, "bot/board"))

    async def dismiss_board(self, to: Target | None, *, member: str | None = None) -> None:
        """Remove a chat's boards (one member's with ``member``), or with ``to=None`` the
        board for everyone (``bot/board-dismiss`` / ``bot/board-all-dismiss``)."""
        validate.optional_identifier("member", member)
        await self._api.board(*self._board_target(to, member, {}, "bot/board-dismiss"))

    @staticmethod
    def _board_target(
        to: Target | None, member: str | None, payload: dict[str, Any], endpoint: str
    ) -> tuple[str, dict[str, Any]]:
        if to is None:
            if member is not None:
                raise ConfigurationError("member needs a chat: pass to= as well")
            return endpoint.replace("bot/board", "bot/board-all"), payload
        recipient = Recipient.coerce(to)
        payload.update(chatId=recipient.id, chatType=recipient.type)
        if member is not None:
            payload["memberId"] = member
        return endpoint, payload

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
        validate.identifier("msg_id", msg_id)
        check_content_type(content_type, SEND_CONTENT_TYPES)
        body = content(text, check_buttons(buttons), check_at(at))
        await self._api.edit(msg_id, recipient, content_type, body)

    async def recall(self, msg_id: str, to: Target) -> None:
        """Recall (delete) a message the bot sent."""
        recipient = Recipient.coerce(to)
        validate.identifier("msg_id", msg_id)
        await self._api.recall(msg_id, recipient)

    async def messages(
        self, to: Target, *, before: int = 20, message_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The chat's recent messages from ``bot/messages``, as YunHu returns them."""
        recipient = Recipient.coerce(to)
        validate.integer("before", before, minimum=1)
        validate.optional_identifier("message_id", message_id)
        return await self._api.messages(recipient, before=before, message_id=message_id)
