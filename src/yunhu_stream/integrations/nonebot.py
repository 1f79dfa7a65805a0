"""NoneBot2 plugin: stream replies from matchers with ``async with stream(bot, event)``.

``nonebot-adapter-yunhu`` can only send a whole text at once (NoneBot's HTTP
drivers cannot stream a request body). This plugin gives matchers a real
:class:`~yunhu_stream.Streamer` instead, using the token of the adapter's bot::

    from nonebot import on_message, require
    from nonebot.adapters.yunhu import Bot, MessageEvent

    require("yunhu_stream.integrations.nonebot")
    from yunhu_stream.integrations.nonebot import stream

    chat = on_message()

    @chat.handle()
    async def _(bot: Bot, event: MessageEvent) -> None:
        async with stream(bot, event) as s:      # replies where the event came from
            async for piece in generate_answer(event.get_plaintext()):
                await s.write(piece)

Load it like any plugin (``nonebot.load_plugin("yunhu_stream.integrations.nonebot")``
or ``plugins = ["yunhu_stream.integrations.nonebot"]`` in ``pyproject.toml``).
It opens its HTTP sessions lazily, one :class:`~yunhu_stream.Bot` per adapter bot
token, and closes them all on the driver's shutdown.

Configuration (NoneBot's ``.env`` / environment, all optional):

* ``YUNHU_STREAM_BASE_URL``: API root, default ``$YUNHU_BASE_URL`` or YunHu's
  public one. Point it at ``yunhu_stream.emulator`` to test.
* ``YUNHU_STREAM_CONNECT_TIMEOUT`` (10), ``YUNHU_STREAM_RESPONSE_TIMEOUT`` (60):
  seconds, as for :class:`~yunhu_stream.Bot`.
* ``YUNHU_STREAM_MAX_BUFFER_BYTES`` (262144): unsent text a stream may hold.
* ``YUNHU_STREAM_RATE_LIMIT`` (10): requests per second per endpoint.

Needs ``pip install 'yunhu-stream[nonebot]'``.
"""

from __future__ import annotations

from typing import Any

try:
    from nonebot import get_driver, get_plugin_config
    from nonebot.adapters.yunhu import Bot as YunHuBot
    from nonebot.adapters.yunhu import Event as YunHuEvent
    from nonebot.adapters.yunhu.config import Config as _AdapterConfig
    from nonebot.adapters.yunhu.event import ButtonReportNoticeEvent, MessageEvent, NoticeEvent
    from nonebot.compat import model_dump
    from nonebot.plugin import PluginMetadata
    from pydantic import BaseModel, Field
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "yunhu_stream.integrations.nonebot needs NoneBot2 and nonebot-adapter-yunhu; "
        "install them with: pip install 'yunhu-stream[nonebot]' "
        f"(import failed: {exc})"
    ) from exc


from .._client import Bot
from .._exceptions import ConfigurationError
from .._log import get_logger
from .._streamer import Streamer
from .._types import Recipient
from ..events import parse_event
from ._pool import BotPool

__all__ = [
    "Config",
    "get_stream_bot",
    "reply_recipient",
    "stream",
]

log = get_logger("integrations")

_OWNER = "yunhu_stream.integrations.nonebot"


class Config(BaseModel):
    """What this plugin reads from NoneBot's configuration (``.env`` or environment).

    The bot token is not here: each stream uses the token of the adapter bot
    it is given (``YUNHU_BOTS`` in the adapter's own configuration).
    """

    yunhu_stream_base_url: str | None = None
    """API root; ``None`` means ``$YUNHU_BASE_URL`` or YunHu's public API."""
    yunhu_stream_connect_timeout: float = Field(10.0, gt=0)
    """Seconds to establish a connection."""
    yunhu_stream_response_timeout: float = Field(60.0, gt=0)
    """Seconds to wait for YunHu's answer once a body has been sent."""
    yunhu_stream_max_buffer_bytes: int = Field(256 * 1024, ge=1)
    """Unsent text (UTF-8 bytes) one stream may hold before ``write()`` waits."""
    yunhu_stream_rate_limit: float | None = Field(10.0, gt=0)
    """Requests per second per endpoint and token; ``None`` disables the limiter."""


__plugin_meta__ = PluginMetadata(
    name="yunhu-stream",
    description="Stream replies into YunHu as they are produced: async with stream(bot, event)",
    usage=(
        'require("yunhu_stream.integrations.nonebot")\n'
        "from yunhu_stream.integrations.nonebot import stream\n"
        "async with stream(bot, event) as s:\n"
        "    await s.write(piece)"
    ),
    type="library",
    homepage="https://pypi.org/project/yunhu-stream/",
    config=Config,
    supported_adapters={"~yunhu"},
)

_config = get_plugin_config(Config)


def _bot_options(config: Config) -> dict[str, Any]:
    return {
        "base_url": config.yunhu_stream_base_url,
        "connect_timeout": config.yunhu_stream_connect_timeout,
        "response_timeout": config.yunhu_stream_response_timeout,
        "max_buffer_bytes": config.yunhu_stream_max_buffer_bytes,
        "rate_limit": config.yunhu_stream_rate_limit,
    }


_pool = BotPool(_OWNER)
_driver = get_driver()


@_driver.on_startup
async def _open_sessions() -> None:
    """Accept streams, and check every configured adapter bot's options now, not at
    its first message."""
    await _pool.open(_bot_options(_config))
    for bot_config in get_plugin_config(_AdapterConfig).yunhu_bots:
        if bot_config.token:
            _pool.get(bot_config.token)
    log.info("nonebot_plugin_started", bots=len(_pool))


@_driver.on_shutdown
async def _close_sessions() -> None:
    """Close every Bot this plugin opened (their streams end with them)."""
    await _pool.aclose()
    log.info("nonebot_plugin_stopped")


def get_stream_bot(bot: YunHuBot) -> Bot:
    """The :class:`yunhu_stream.Bot` that streams for the adapter bot ``bot``.

    Use it for anything beyond :func:`stream`: ``send``, ``edit``, ``recall``.

    Raises:
        TypeError: ``bot`` is not a ``nonebot.adapters.yunhu.Bot``.
        errors.BotClosedError: the driver has shut down.
        errors.ConfigurationError: the adapter bot has no token, or a plugin option is bad.
    """
    if not isinstance(bot, YunHuBot):
        raise TypeError(
            f"yunhu-stream needs a nonebot.adapters.yunhu.Bot, not {type(bot).__name__}; "
            "this plugin only streams to YunHu"
        )
    return _pool.get(bot.bot_config.token)


def _private_or_group(chat_type: str, group_id: str, user_id: str, what: str) -> Recipient:
    # The adapter rewrites a private chat's "bot" to "user" in notice models.
    if chat_type == "group":
        return Recipient.group(group_id)
    if chat_type in ("bot", "user"):
        return Recipient.user(user_id)
    raise ConfigurationError(f"cannot reply to {what}: unknown chat type {chat_type!r}")


def reply_recipient(event: YunHuEvent) -> Recipient:
    """Where a reply to ``event`` goes, by the same rules as :mod:`yunhu_stream.events`.

    Group messages go to the group, private messages to the sender; button
    reports and follow/join events to the group they name, or else to the user.

    Raises:
        TypeError: ``event`` is not a ``nonebot.adapters.yunhu`` event.
        ValueError: the event names no chat to reply to.
    """
    if not isinstance(event, YunHuEvent):
        raise TypeError(
            f"cannot reply to a {type(event).__name__}: pass a nonebot.adapters.yunhu event, "
            "or to='user:ID' / to='group:ID'"
        )
    if isinstance(event, MessageEvent):
        message = event.event.message
        return _private_or_group(
            message.chatType, message.chatId, event.event.sender.senderId, "this message"
        )
    if isinstance(event, ButtonReportNoticeEvent):
        notice = event.event
        return _private_or_group(notice.chatType, notice.chatId, notice.userId,
                                 "this button report")
    if isinstance(event, NoticeEvent) and hasattr(event.event, "chatType"):
        notice = event.event
        return _private_or_group(notice.chatType, notice.chatId, notice.userId, "this event")
    # Event types the adapter does not model (bot.shortcut.menu, ...) keep their raw
    # "event" object, so the envelope can be rebuilt and read by our own parser.
    raw = {"version": event.version, "header": model_dump(event.header), "event": event.event}
    return parse_event(raw).reply_recipient


def stream(
    bot: YunHuBot,
    event: YunHuEvent | None = None,
    /,
    *,
    to: object = None,
    content_type: str = "text",
    **options: Any,
) -> Streamer:
    """A :class:`~yunhu_stream.Streamer` replying to ``event``, or to ``to``.

    Use it with ``async with``; nothing is sent before the first write::

        async with stream(bot, event) as s:
            await s.write("Hello")

    Args:
        bot: The adapter bot the matcher received (its token is used).
        event: The event to reply to: its group, or its sender for private chats.
        to: Instead of ``event``: ``"user:ID"``, ``"group:ID"``, a
            :class:`~yunhu_stream.Recipient`, or any adapter event.
        content_type: ``"text"`` or ``"markdown"``.
        **options: Passed to :meth:`yunhu_stream.Bot.stream` (``buttons=``,
            ``at=``, ``max_message_bytes=``, ...).

    Raises:
        TypeError: both or neither of ``event`` and ``to``; a bot or event from
            another adapter.
        ValueError: a bad ``to``, ``content_type`` or option.
        errors.BotClosedError: the driver has shut down.
    """
    if (event is None) == (to is None):
        raise TypeError("stream() needs exactly one of: an event to reply to, or to=")
    stream_bot = get_stream_bot(bot)
    if event is not None:
        target = reply_recipient(event)
    elif isinstance(to, YunHuEvent):
        target = reply_recipient(to)
    else:
        target = Recipient.coerce(to)
    return stream_bot.stream(target, content_type=content_type, **options)
