"""Recovery: finish a partly shown message by editing it, or send the whole text.

When a stream breaks after part of the message may be showing, the delivery
hands over here: :meth:`Recovery.find_partial` looks for the message the failed
attempt left in the chat, and :meth:`Recovery.finish` keeps it up to date with
``bot/edit`` while the caller goes on writing, then gives it the whole text (or,
if it cannot be found or edited, sends the whole text with ``bot/send``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._content import content
from ._exceptions import YunhuError
from ._types import MessageInfo

if TYPE_CHECKING:
    from ._delivery import Delivery

LOOKBACK_MESSAGES = 50
"""How many of the chat's latest messages are searched for the partial message."""

CLOCK_SKEW_MS = 10_000
"""How far YunHu's clock may run behind ours when comparing send times."""


class Recovery:
    """One recovery of one message of a stream (see the module docstring)."""

    def __init__(self, delivery: Delivery) -> None:
        self._d = delivery

    async def find_partial(self) -> str | None:
        """The id of the message the failed attempt left in the chat, if it can be found.

        That is the newest bot message, created no earlier than the attempt (less
        clock skew), that this Bot did not deliver itself, and whose text is a
        prefix of ours. Streamed messages (marked with YunHu's AI ``tip``) win ties.
        """
        d = self._d
        text = d.buffer.message_text()
        delivered = d.api.delivered
        try:
            items = await d.api.messages(d.recipient, before=LOOKBACK_MESSAGES)
        except YunhuError as exc:
            d.log.warning("recovery_lookup_failed", error=type(exc).__name__)
            return None
        best: tuple[int, bool, str] | None = None
        for item in items:
            body = item.get("content")
            shown = body.get("text") if isinstance(body, dict) else None
            msg_id, sent_at = item.get("msgId"), item.get("sendTime")
            if (
                item.get("senderType") == "bot"
                and isinstance(shown, str) and shown and text.startswith(shown)
                and isinstance(msg_id, str) and msg_id not in delivered
                and isinstance(sent_at, int)
                and sent_at >= d.attempt_started_ms - CLOCK_SKEW_MS
            ):
                candidate = (sent_at, isinstance(body, dict) and "tip" in body, msg_id)
                if best is None or candidate[:2] >= best[:2]:
                    best = candidate
        return best[2] if best else None

    async def finish(self, cause: YunhuError, found: str | None) -> MessageInfo:
        """Follow the writes with edits of ``found`` until the stream ends, then finish it."""
        d = self._d
        buf, settings = d.buffer, d.settings
        buf.split = None  # after a failure the rest stays in this one message
        buf.unbounded = True
        buf.deliver_all()
        d.log.warning("stream_recovering", error=type(cause).__name__,
                      found_msg_id=found, sent_bytes=d.attempt_sent)
        loop = asyncio.get_running_loop()
        next_edit, last_text = loop.time(), None
        while not buf.eof:
            await d.wait_for_writes(settings.edit_interval)
            buf.deliver_all()
            now = loop.time()
            text = buf.message_text()
            if found and not buf.eof and now >= next_edit and text != last_text:
                next_edit = now + settings.edit_interval
                try:
                    await d.api.edit(found, d.recipient, d.content_type, content(text, None, None))
                    last_text = text
                except YunhuError as exc:
                    d.log.warning("recovery_edit_failed", error=type(exc).__name__)
        buf.deliver_all()  # writes may have landed while the lookup was in flight
        text = buf.message_text()
        if found:
            try:
                await d.api.edit(found, d.recipient, d.content_type,
                                 content(text, d.buttons, d.at))
            except YunhuError as exc:
                d.log.warning("recovery_edit_failed", error=type(exc).__name__, final=True)
            else:
                d.decorated = found
                return MessageInfo(found, d.recipient.id, d.recipient.type, "stream+edit")
        return await d.send_whole(text, parent_id=None)
