"""``YunhuStreamPlatform``: the AstrBot platform adapter (webhook intake, Bot, lifecycle)."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from typing import Any

from aiohttp import web
from astrbot.api.event import MessageChain
from astrbot.api.platform import (
    MessageType,
    Platform,
    PlatformMetadata,
    register_platform_adapter,
)
from astrbot.core.platform.message_session import MessageSession

from ... import errors
from ..._client import Bot
from ..._log import get_logger
from ..._types import Recipient
from ...events import Event, EventParseError, MessageEvent, parse_event
from .._astrbot_config import (
    ADAPTER_NAME,
    DEFAULT_CONFIG,
    DESCRIPTION,
    DISPLAY_NAME,
    Settings,
    parse_settings,
)
from ._convert import replyable, to_astrbot_message
from ._event import YunhuStreamEvent
from ._send import send_chain

log = get_logger("integrations")

DEDUP_SIZE = 4096
"""How many recent ``eventId`` values are remembered, so that redeliveries are dropped."""

MAX_BODY_BYTES = 1024 * 1024
"""Largest webhook body the adapter's own server accepts (HTTP 413 beyond)."""

Answer = tuple[dict[str, Any], int]


@register_platform_adapter(
    ADAPTER_NAME,
    DESCRIPTION,
    default_config_tmpl=DEFAULT_CONFIG,
    adapter_display_name=DISPLAY_NAME,
    support_streaming_message=True,
)
class YunhuStreamPlatform(Platform):  # type: ignore[misc]  # AstrBot ships no types
    """One YunHu bot in AstrBot: receives its webhook events, owns its :class:`Bot`.

    AstrBot creates it from a platform instance's config (see ``docs/integrations.md``
    for the fields), calls :meth:`run` and, at shutdown or reload, :meth:`terminate`.
    Every send and stream of the instance goes through one Bot, so they share one
    connection pool and one rate limiter.
    """

    def __init__(self, platform_config: dict[str, Any], platform_settings: dict[str, Any],
                 event_queue: asyncio.Queue[Any]) -> None:
        super().__init__(platform_config, event_queue)
        self.astrbot_settings = platform_settings
        # AstrBot logs a failing adapter constructor together with the whole platform
        # config (the token included), so a bad config is reported from run() instead.
        self._config_error: errors.ConfigurationError | None = None
        try:
            self.settings: Settings = parse_settings(platform_config)
        except errors.ConfigurationError as exc:
            self._config_error = exc
        self._bot: Bot | None = None
        self._bot_id = "" if self._config_error else self.settings.bot_id
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self._metadata = PlatformMetadata(
            name=ADAPTER_NAME, description=DESCRIPTION, id=str(platform_config.get("id")),
            adapter_display_name=DISPLAY_NAME, support_streaming_message=True,
        )

    def meta(self) -> PlatformMetadata:
        """What AstrBot knows about this instance (``support_streaming_message=True``)."""
        return self._metadata

    @property
    def bot(self) -> Bot:
        """The instance's :class:`yunhu_stream.Bot` (for ``edit``, ``recall``, streams).

        Raises:
            errors.StreamClosedError: the platform is not running.
        """
        if self._bot is None:
            raise errors.StreamClosedError(
                f"the YunHu platform {self._metadata.id!r} is not running"
            )
        return self._bot

    def get_client(self) -> Bot:
        """AstrBot's name for :attr:`bot`."""
        return self.bot

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Open the Bot and receive events until :meth:`terminate`.

        Raises:
            errors.ConfigurationError: the platform's config is invalid (shown in
                AstrBot's platform status and log, without the token).
            OSError: the webhook port cannot be bound.
        """
        if self._config_error is not None:
            raise self._config_error
        s = self.settings
        self._bot = Bot(s.token, base_url=s.base_url, rate_limit=s.rate_limit)
        if s.unified_webhook:
            self._announce_unified_webhook()
        else:
            app = web.Application(client_max_size=MAX_BODY_BYTES)
            app.router.add_post(s.webhook_path, self._handle_own_webhook)
            # access_log=None: the path is the webhook's only secret.
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, s.webhook_host, s.webhook_port).start()
            except BaseException:
                await runner.cleanup()
                raise
            self._runner = runner
            log.info("astrbot_webhook_ready", platform_id=self._metadata.id,
                     host=s.webhook_host, port=s.webhook_port)
        await self._stopped.wait()

    def _announce_unified_webhook(self) -> None:
        from astrbot.core import astrbot_config
        from astrbot.core.utils.webhook_utils import log_webhook_info

        if not self.config.get("webhook_uuid"):
            # AstrBot generates one only for its built-in adapters.
            self.config["webhook_uuid"] = uuid.uuid4().hex[:16]
            astrbot_config.save_config()
        log_webhook_info(f"{self._metadata.id}({DISPLAY_NAME})", self.config["webhook_uuid"])

    async def terminate(self) -> None:
        """Stop receiving, cancel conversions in flight, close the Bot. Idempotent."""
        self._stopped.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.aclose()
            log.info("astrbot_platform_stopped", platform_id=self._metadata.id)

    # -- intake --------------------------------------------------------------------------

    async def _handle_own_webhook(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        payload, status = self.accept(body)
        return web.json_response(payload, status=status)

    async def webhook_callback(self, request: Any) -> Answer:
        """AstrBot's unified webhook (``/api/platform/webhook/<webhook_uuid>``) lands here."""
        if not self.settings.unified_webhook:
            return {"ok": False, "error": "unified webhook mode is off for this platform"}, 400
        return self.accept(await request.get_data())

    def accept(self, body: bytes) -> Answer:
        """Take one webhook body: parse it, drop redeliveries, hand it to AstrBot.

        Returns at once (YunHu gets its answer); the event is converted in a task.

        Returns:
            The JSON answer and HTTP status: 200 for an accepted or duplicate event,
            400 (with the reason) for a body that is not a YunHu event, 503 when stopped.
        """
        if self._bot is None:
            return {"ok": False, "error": "the platform is not running"}, 503
        try:
            event = parse_event(body)
        except EventParseError as exc:
            log.warning("astrbot_webhook_rejected", reason=str(exc)[:200])
            return {"ok": False, "error": str(exc)[:200]}, 400
        if self._duplicate(event.event_id):
            log.info("event_duplicate", event_id=event.event_id, event_type=event.event_type)
            return {"ok": True, "eventId": event.event_id, "status": "duplicate"}, 200
        if not replyable(event):
            log.info("astrbot_event_ignored", event_id=event.event_id,
                     event_type=event.event_type, reason="it names no chat to answer in")
            return {"ok": True, "eventId": event.event_id, "status": "unhandled"}, 200
        task = asyncio.get_running_loop().create_task(self._commit(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"ok": True, "eventId": event.event_id, "status": "accepted"}, 200

    def _duplicate(self, event_id: str) -> bool:
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return True
        self._seen[event_id] = None
        if len(self._seen) > DEDUP_SIZE:
            self._seen.popitem(last=False)
        return False

    async def _commit(self, event: Event) -> None:
        shared = self.bot.shared  # Redis (YUNHU_REDIS_URL): another worker may have it
        if shared is not None and await shared.first_delivery(event.event_id) is False:
            log.info("event_duplicate", event_id=event.event_id,
                     event_type=event.event_type, shared=True)
            return
        if isinstance(event, MessageEvent) and not event.is_group and not self._bot_id:
            self._bot_id = event.chat.id  # a private chat's chatId is the bot's id
            log.info("astrbot_bot_id_learned", bot_id=self._bot_id)
        try:
            message = await to_astrbot_message(event, bot=self.bot, bot_id=self._bot_id)
        except Exception:
            log.exception("astrbot_event_conversion_failed", event_id=event.event_id,
                          event_type=event.event_type)
            return
        self.commit_event(YunhuStreamEvent(message, self._metadata, self, event))
        log.debug("astrbot_event_committed", event_id=event.event_id,
                  event_type=event.event_type, message_type=message.type.value)

    # -- proactive sends -----------------------------------------------------------------

    async def send_by_session(self, session: MessageSession, message_chain: MessageChain) -> None:
        """Send to a stored session (plugins, scheduled jobs): group, user or ``type:ID``."""
        if session.message_type == MessageType.GROUP_MESSAGE:
            to = Recipient.group(session.session_id)
        elif session.message_type == MessageType.FRIEND_MESSAGE:
            to = Recipient.user(session.session_id)
        else:
            to = Recipient.parse(session.session_id)
        await send_chain(self.bot, to, message_chain, self.settings, None)
        await super().send_by_session(session, message_chain)
