"""``YunhuStreamEvent``: what AstrBot's pipeline answers through (send, send_streaming)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from astrbot.api.event import AstrMessageEvent, MessageChain
from astrbot.api.message_components import At, BaseMessageComponent, Plain
from astrbot.api.platform import AstrBotMessage, MessageType, PlatformMetadata

from ... import errors
from ..._content import check_buttons
from ..._log import get_logger
from ..._types import Recipient
from ...events import Event
from ._send import Buttons, StreamingReply, send_chain

if TYPE_CHECKING:
    from ._platform import YunhuStreamPlatform

log = get_logger("integrations")

BUTTONS_EXTRA = "yunhu_buttons"
"""The event extra holding the next reply's buttons (see :meth:`YunhuStreamEvent.set_buttons`)."""


class YunhuStreamEvent(AstrMessageEvent):  # type: ignore[misc]  # AstrBot ships no types
    """An AstrBot event from YunHu; replies go to the chat it came from.

    Attributes:
        yunhu_event: The parsed webhook event (:mod:`yunhu_stream.events`).
        recipient: Where replies go (the group, or the user in a private chat).
    """

    def __init__(self, message_obj: AstrBotMessage, platform_meta: PlatformMetadata,
                 platform: YunhuStreamPlatform, yunhu_event: Event) -> None:
        super().__init__(message_obj.message_str, message_obj, platform_meta,
                         message_obj.session_id)
        self.yunhu_event = yunhu_event
        self.recipient: Recipient = yunhu_event.reply_recipient
        self._platform = platform
        self.set_extra("yunhu_event_type", yunhu_event.event_type)

    def set_buttons(self, buttons: Sequence[Sequence[Any]]) -> None:
        """Put buttons on the reply's last text message (after the stream, by one edit).

        Platform-neutral plugins can set the ``yunhu_buttons`` extra to the same rows.

        Raises:
            ValueError: a row or button is malformed (the message says which).
        """
        self.set_extra(BUTTONS_EXTRA, check_buttons(buttons))

    def _take_buttons(self) -> Buttons | None:
        rows = self.get_extra(BUTTONS_EXTRA)
        if rows is None:
            return None
        self.set_extra(BUTTONS_EXTRA, None)  # one reply carries them
        try:
            return check_buttons(rows)
        except ValueError as exc:
            log.warning("astrbot_buttons_invalid", error=str(exc))
            return None

    async def send(self, message: MessageChain) -> None:
        """Send a whole chain: text with ``bot/send``, media uploaded and sent on their own."""
        buttons = None if message.type == "tool_call" else self._take_buttons()
        await send_chain(self._platform.bot, self.recipient, message,
                         self._platform.settings, buttons)
        await super().send(message)

    async def send_streaming(
        self, generator: AsyncGenerator[MessageChain, None], use_fallback: bool = False
    ) -> None:
        """Stream AstrBot's reply: text deltas into one ``bot/send-stream`` per message.

        A ``break`` chain ends the message and the next text starts another. When the
        generator fails, what it produced so far is delivered before the error goes on.
        """
        reply = StreamingReply(self._platform.bot, self.recipient, self._platform.settings,
                               buttons=self._take_buttons(), lead=self._lead())
        try:
            async for chain in generator:
                await reply.feed(chain)
        except asyncio.CancelledError:
            await reply.abort()
            raise
        except Exception:
            try:
                await reply.fail()
            except errors.YunhuError as exc:
                log.warning("astrbot_reply_failed", error=type(exc).__name__, detail=str(exc))
            raise
        await reply.finish()
        await super().send_streaming(generator, use_fallback)

    def _lead(self) -> list[BaseMessageComponent]:
        """The sender's mention when AstrBot's reply_with_mention is on (groups only).

        AstrBot's decorating stage skips streamed results, so the adapter applies it.
        """
        if (not self._platform.astrbot_settings.get("reply_with_mention")
                or self.get_message_type() != MessageType.GROUP_MESSAGE):
            return []
        return [At(qq=self.get_sender_id(), name=self.get_sender_name()), Plain("\n")]
