"""The Bots an integration opens for the framework's bot accounts, one per token."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from .. import errors
from .._client import Bot
from .._log import get_logger

log = get_logger("integrations")


class PoolState(enum.Enum):
    """Where a :class:`BotPool` is in the framework's lifespan."""

    OPEN = "open"
    CLOSED = "closed"


class BotPool:
    """Holds one :class:`~yunhu_stream.Bot` per bot token for a framework plugin.

    It starts closed: the framework's start-up calls :meth:`open`, its shutdown
    :meth:`aclose`. In between, a Bot is made on first use of its token, so
    accounts the framework connects late (or reconnects) get one too. The pool
    can be opened again after a close (frameworks that restart in-process do that).

    Args:
        owner: Name of the integration, used in log lines and errors.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._options: dict[str, Any] = {}
        self._bots: dict[str, Bot] = {}
        self.state = PoolState.CLOSED

    def __repr__(self) -> str:
        return f"BotPool(owner={self.owner!r}, state={self.state.value}, bots={len(self._bots)})"

    def __len__(self) -> int:
        return len(self._bots)

    async def open(self, bot_options: Mapping[str, Any]) -> None:
        """Accept :meth:`get` calls; every Bot is made with ``bot_options``.

        Args:
            bot_options: Keyword arguments for ``Bot`` (``base_url``, timeouts, ...).

        Raises:
            errors.ConfigurationError: an option is invalid (checked now, not at the
                first message).
            RuntimeError: Bots from an earlier open are still held (aclose() first).
        """
        if self._bots:
            raise RuntimeError(f"{self.owner}: open() while Bots are still open; aclose() first")
        options = dict(bot_options)
        await Bot("options-check", **options).aclose()  # validates the options, sends nothing
        self._options = options
        self.state = PoolState.OPEN

    def get(self, token: str) -> Bot:
        """Return the Bot for ``token``, making it on first use.

        Raises:
            errors.BotClosedError: the framework has shut down (the pool is closed).
            errors.ConfigurationError: an empty token or a bad Bot option.
        """
        if self.state is PoolState.CLOSED:
            raise errors.BotClosedError(
                f"{self.owner} is not running: streams can only start between the "
                "framework's start-up and its shutdown (which closes their Bots)"
            )
        if not isinstance(token, str) or not token.strip():
            raise errors.ConfigurationError(
                f"{self.owner}: the framework's YunHu bot has no token configured"
            )
        bot = self._bots.get(token)
        if bot is None:
            bot = self._bots[token] = Bot(token, **self._options)
            log.debug("integration_bot_opened", owner=self.owner, base_url=bot.base_url,
                      bots=len(self._bots))
        return bot

    async def aclose(self) -> None:
        """Close every Bot and refuse new ones until :meth:`open`. Idempotent."""
        self.state = PoolState.CLOSED
        bots, self._bots = list(self._bots.values()), {}
        for bot in bots:
            try:
                await bot.aclose()
            except Exception as exc:  # one failed close must not leave the others open
                log.warning("integration_bot_close_failed", owner=self.owner,
                            error=type(exc).__name__)
        if bots:
            log.debug("integration_bots_closed", owner=self.owner, bots=len(bots))
