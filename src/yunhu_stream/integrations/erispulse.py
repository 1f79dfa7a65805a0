"""ErisPulse module: stream replies from handlers with ``async with stream(event)``.

``ErisPulse-YunhuAdapter`` streams only from a generator handed over in one
call. With this module a handler holds a real :class:`~yunhu_stream.Streamer`
and writes whenever it has something::

    from ErisPulse import message
    from yunhu_stream.integrations.erispulse import stream

    @message.on_message()
    async def answer(event):
        async with stream(event) as s:           # replies where the event came from
            async for piece in generate_answer(event.get_text()):
                await s.write(piece)

The module, ``YunhuStream``, is found through the ``erispulse.module`` entry
point that ``pip install 'yunhu-stream[erispulse]'`` installs. It loads eagerly,
uses the token of the YunHu adapter account the event came in on, and closes
its HTTP sessions when ErisPulse unloads it (at shutdown or reload).

Configuration, in ErisPulse's ``config/config.toml`` (all optional)::

    [YunhuStream]
    base_url = ""            # empty: wherever Yunhu_Adapter.base_url points
    connect_timeout = 10.0
    response_timeout = 60.0
    max_buffer_bytes = 262144
    rate_limit = 10.0        # requests per second per endpoint; 0 disables

To test against :mod:`yunhu_stream.emulator`, point ``Yunhu_Adapter.base_url``
at the emulator's ``base_url``: the adapter and this module both follow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:
    from ErisPulse import BaseConfig, BaseModule, ModuleMeta
    from ErisPulse import adapter as _adapters
    from ErisPulse.loaders import ModuleLoadStrategy
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "yunhu_stream.integrations.erispulse needs ErisPulse and ErisPulse-YunhuAdapter; "
        "install them with: pip install 'yunhu-stream[erispulse]' "
        f"(import failed: {exc})"
    ) from exc


from .. import errors
from .._client import Bot
from .._log import get_logger
from .._streamer import Streamer
from .._types import Recipient
from .._version import __version__
from ..events import parse_event
from ._pool import BotPool

__all__ = [
    "MODULE_NAME",
    "StreamConfig",
    "YunhuStream",
    "get_stream_bot",
    "reply_recipient",
    "stream",
]

log = get_logger("integrations")

MODULE_NAME = "YunhuStream"
"""The module's name in ErisPulse (entry point, ``sdk.YunhuStream``, config section)."""

PLATFORM = "yunhu"


@dataclass
class StreamConfig(BaseConfig):
    """The ``[YunhuStream]`` section of ErisPulse's ``config/config.toml``."""

    base_url: str = field(default="", metadata={
        "description": "API root; empty follows Yunhu_Adapter.base_url", "required": False})
    connect_timeout: float = field(default=10.0, metadata={
        "description": "seconds to establish a connection", "required": False})
    response_timeout: float = field(default=60.0, metadata={
        "description": "seconds to wait for YunHu's answer once a body is sent",
        "required": False})
    max_buffer_bytes: int = field(default=256 * 1024, metadata={
        "description": "unsent text (UTF-8 bytes) one stream may hold", "required": False})
    rate_limit: float = field(default=10.0, metadata={
        "description": "requests per second per endpoint; 0 disables", "required": False})


_active: YunhuStream | None = None
"""The loaded module instance that module-level :func:`stream` uses."""


class YunhuStream(BaseModule):
    """The ErisPulse module owning this library's Bots (one per YunHu account token).

    ErisPulse creates it from the entry point, calls :meth:`on_load` at start-up
    and :meth:`on_unload` at shutdown; handlers use :func:`stream`, or
    ``sdk.YunhuStream.stream(...)``.
    """

    ConfigClass = StreamConfig

    def __init__(self, sdk: Any = None) -> None:
        self.sdk = sdk
        self._pool = BotPool(f"ErisPulse module {MODULE_NAME}")

    @staticmethod
    def get_meta() -> ModuleMeta:
        """What ErisPulse shows about this module."""
        return ModuleMeta(
            name=MODULE_NAME,
            description="Stream replies into YunHu as they are produced: "
                        "async with stream(event) as s",
            version=__version__,
            homepage="https://pypi.org/project/yunhu-stream/",
            group="library",
            tags=["yunhu", "streaming"],
        )

    @staticmethod
    def get_load_strategy() -> ModuleLoadStrategy:
        """Load at start-up (not lazily), so handlers can stream from the first event."""
        return ModuleLoadStrategy(lazy_load=False, priority=100)  # type: ignore[no-untyped-call]

    async def on_load(self, event: Mapping[str, Any]) -> bool:
        """Open for streaming with the current configuration; make this the active module.

        Raises:
            errors.ConfigurationError: an option in ``[YunhuStream]`` is invalid.
        """
        global _active
        options = self._bot_options()
        await self._pool.open(options)
        _active = self
        log.info("erispulse_module_loaded", base_url=options["base_url"])
        return True

    async def on_unload(self, event: Mapping[str, Any]) -> bool:
        """Close every Bot this module opened (their streams end with them)."""
        global _active
        if _active is self:
            _active = None
        await self._pool.aclose()
        log.info("erispulse_module_unloaded")
        return True

    def _bot_options(self) -> dict[str, Any]:
        cfg = self.cfg
        base_url = cfg.base_url or None
        if base_url is None:
            yunhu = _adapters.get(PLATFORM)
            base_url = getattr(yunhu, "base_url", None) or None
        return {
            "base_url": base_url,
            "connect_timeout": cfg.connect_timeout,
            "response_timeout": cfg.response_timeout,
            "max_buffer_bytes": cfg.max_buffer_bytes,
            "rate_limit": cfg.rate_limit or None,
        }

    def get_bot(self, event: Mapping[str, Any] | None = None, *,
                account: str | None = None) -> Bot:
        """The Bot for ``account``, else for the account ``event`` came in on, else the
        YunHu adapter's first enabled account.

        Raises:
            errors.ConfigurationError: no YunHu adapter, no such account, or no token.
            errors.BotClosedError: the module has been unloaded.
        """
        return self._pool.get(_account_token(event, account))

    def stream(
        self,
        event: Mapping[str, Any] | None = None,
        /,
        *,
        to: object = None,
        account: str | None = None,
        content_type: str = "text",
        **options: Any,
    ) -> Streamer:
        """Same as the module-level :func:`stream`, on this module instance."""
        if (event is None) == (to is None):
            raise TypeError("stream() needs exactly one of: an event to reply to, or to=")
        if isinstance(to, Mapping):
            event, target = to, reply_recipient(to)
        elif event is not None:
            target = reply_recipient(event)
        else:
            target = Recipient.coerce(to)
        bot = self.get_bot(event, account=account)
        return bot.stream(target, content_type=content_type, **options)


def _account_token(event: Mapping[str, Any] | None, account: str | None) -> str:
    yunhu = _adapters.get(PLATFORM)
    if yunhu is None:
        raise errors.ConfigurationError(
            "ErisPulse has no 'yunhu' adapter loaded: install ErisPulse-YunhuAdapter "
            "and configure a Yunhu_Adapter account"
        )
    accounts: Mapping[str, Any] = yunhu.enabled_accounts
    if account is not None:
        config = accounts.get(account)
        if config is None:
            raise errors.ConfigurationError(
                f"no enabled YunHu account named {account!r}; "
                f"Yunhu_Adapter.accounts has {sorted(accounts) or 'none'}"
            )
    else:
        # The adapter stamps each event with the bot id it detected for the account
        # the event came in on; without one (or no event) the first account is used.
        bot_id = ((event or {}).get("self") or {}).get("user_id") or ""
        ids: Mapping[str, str] = getattr(yunhu, "_bot_ids", None) or {}
        name = next((n for n, i in ids.items() if bot_id and i == bot_id), None)
        config = accounts.get(name) if name is not None else None
        if config is None:
            config = next(iter(accounts.values()), None)
        if config is None:
            raise errors.ConfigurationError(
                "the YunHu adapter has no enabled account (Yunhu_Adapter.accounts)"
            )
    token = getattr(config, "token", "")
    if not isinstance(token, str) or not token:
        raise errors.ConfigurationError("the YunHu adapter account has no token configured")
    return token


def reply_recipient(event: Mapping[str, Any]) -> Recipient:
    """Where a reply to an ErisPulse event from the YunHu adapter goes.

    Uses the original webhook body the adapter keeps (``yunhu_raw``) and the
    rules of :mod:`yunhu_stream.events`: group messages to the group, private
    ones to the sender, button reports and follow events to the group or user
    they name. Without ``yunhu_raw`` it falls back to the OneBot 12 fields.

    Raises:
        TypeError: ``event`` is not an event from the YunHu adapter.
        ValueError: the event names no chat to reply to.
    """
    if not isinstance(event, Mapping):
        raise TypeError(
            f"cannot reply to a {type(event).__name__}: pass an ErisPulse event, "
            "or to='user:ID' / to='group:ID'"
        )
    platform = event.get("platform")
    if platform != PLATFORM:
        raise TypeError(
            f"cannot stream a reply to a {platform!r} event: yunhu-stream only reaches YunHu; "
            "pass to='user:ID' / to='group:ID' to stream into YunHu anyway"
        )
    raw = event.get(f"{PLATFORM}_raw")
    if isinstance(raw, Mapping) and raw:
        return parse_event(raw).reply_recipient
    if event.get("detail_type") == "group" and event.get("group_id"):
        return Recipient.group(str(event["group_id"]))
    if event.get("user_id"):
        return Recipient.user(str(event["user_id"]))
    raise errors.ConfigurationError(
        "cannot reply to this event: it names neither a group nor a user"
    )


def _module() -> YunhuStream:
    if _active is None:
        raise errors.BotClosedError(
            f"the ErisPulse module {MODULE_NAME} is not loaded (ErisPulse has not started it, "
            "or has shut it down); is yunhu-stream[erispulse] installed in this environment?"
        )
    return _active


def get_stream_bot(event: Mapping[str, Any] | None = None, *,
                   account: str | None = None) -> Bot:
    """The :class:`yunhu_stream.Bot` for an event's account (see :meth:`YunhuStream.get_bot`).

    Use it for anything beyond :func:`stream`: ``send``, ``edit``, ``recall``.
    """
    return _module().get_bot(event, account=account)


def stream(
    event: Mapping[str, Any] | None = None,
    /,
    *,
    to: object = None,
    account: str | None = None,
    content_type: str = "text",
    **options: Any,
) -> Streamer:
    """A :class:`~yunhu_stream.Streamer` replying to ``event``, or to ``to``.

    Use it with ``async with``; nothing is sent before the first write::

        async with stream(event) as s:
            await s.write("Hello")

    Args:
        event: An ErisPulse event from the YunHu adapter: the reply goes to its
            group, or to its sender in a private chat.
        to: Instead of ``event``: ``"user:ID"``, ``"group:ID"``, a
            :class:`~yunhu_stream.Recipient` or an ErisPulse event.
        account: The ``Yunhu_Adapter.accounts`` name whose token to use; by
            default the account the event came in on (or the first enabled one).
        content_type: ``"text"`` or ``"markdown"``.
        **options: Passed to :meth:`yunhu_stream.Bot.stream` (``buttons=``,
            ``at=``, ``max_message_bytes=``, ...).

    Raises:
        TypeError: both or neither of ``event`` and ``to``; an event from another platform.
        ValueError: a bad ``to``, ``content_type`` or option.
        errors.ConfigurationError: no YunHu adapter or account to take a token from.
        errors.BotClosedError: the module is not loaded (ErisPulse not running).
    """
    return _module().stream(event, to=to, account=account, content_type=content_type,
                            **options)
