"""AstrBot message chains into YunHu: whole sends, and the streamed reply.

Both follow one set of rules for the components of a chain:

* ``Plain`` is text; ``At`` writes the mention (``@name`` + U+200B) and puts the id in
  the message's ``at`` list; ``Reply`` quotes (``parentId``) the message it precedes.
* ``Image``, ``File``, ``Video`` and ``Record`` end the text message they follow and
  are uploaded and sent as their own message.
* Buttons (set on the event, see :meth:`YunhuStreamEvent.set_buttons`) go on the last
  text message of the reply.
* Anything else is logged (``astrbot_component_skipped``) and left out.

A streamed reply (:class:`StreamingReply`) sends its text with one ``bot/send-stream``
per message, as it arrives; a ``break`` chain (AstrBot's mark between agent steps)
ends the message and the next text starts another. YunHu cannot quote a streamed
message, so a quoted part is sent whole when it ends (the library's quote fallback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astrbot.api.event import MessageChain
from astrbot.api.message_components import (
    At,
    AtAll,
    BaseMessageComponent,
    File,
    Image,
    Plain,
    Record,
    Reply,
    Video,
)

from ..._client import Bot
from ..._first_chunk import FirstChunk
from ..._log import get_logger
from ..._streamer import Streamer
from ..._types import Recipient
from ...mentions import mention
from .._astrbot_config import Settings

log = get_logger("integrations")

Buttons = list[list[dict[str, Any]]]

_MEDIA = (Image, File, Video, Record)

_FIRST_CHUNK = {
    "at_once": None,
    "words": FirstChunk(),
    "sentence": FirstChunk(sentence=True, max_wait=1.0),
}


def mention_of(comp: At) -> tuple[str, str | None]:
    """The text an ``At`` writes, and the id it adds to ``at`` (None for @all)."""
    if isinstance(comp, AtAll) or str(comp.qq) == "all":
        return "@全体成员 ", None  # YunHu documents no @all: it stays visible text
    uid = str(comp.qq)
    return mention(comp.name or uid, uid).text, uid


async def send_media(bot: Bot, to: Recipient, comp: BaseMessageComponent) -> None:
    """Upload an image, file, video or voice component and send it as its own message.

    YunHu has no voice messages: a ``Record`` goes as a file. A part that cannot be read
    or uploaded is logged (``astrbot_media_not_sent``) and the rest of the reply goes on.
    """
    try:
        if isinstance(comp, Image):
            path, kind = await comp.convert_to_file_path(), "image"
        elif isinstance(comp, Video):
            path, kind = await comp.convert_to_file_path(), "video"
        elif isinstance(comp, Record):
            path, kind = await comp.convert_to_file_path(), "file"
        else:  # File
            path, kind = await comp.get_file(), "file"
        if not path:
            raise FileNotFoundError("the component names no file")
        upload = {"image": bot.upload_image, "video": bot.upload_video, "file": bot.upload_file}
        key = await upload[kind](Path(path))
        await bot.send(to, key, content_type=kind)
    except Exception as exc:  # AstrBot's converters raise bare Exception for a bad source
        log.warning("astrbot_media_not_sent", component=type(comp).__name__, recv_id=to.id,
                    error=type(exc).__name__, detail=str(exc)[:200])


def _skipped(comp: BaseMessageComponent) -> None:
    log.warning("astrbot_component_skipped", component=type(comp).__name__)


class _Text:
    """The text message being put together from Plain/At/Reply parts."""

    def __init__(self) -> None:
        self.text = ""
        self.at: list[str] = []
        self.parent_id: str | None = None

    def add(self, comp: BaseMessageComponent) -> bool:
        """Take a text-like part; False for anything else."""
        if isinstance(comp, Plain):
            self.text += comp.text
        elif isinstance(comp, At):
            text, uid = mention_of(comp)
            self.text += text
            if uid is not None and uid not in self.at:
                self.at.append(uid)
        elif isinstance(comp, Reply):
            self.parent_id = str(comp.id)
        else:
            return False
        return True


async def send_chain(
    bot: Bot, to: Recipient, chain: MessageChain, settings: Settings, buttons: Buttons | None,
) -> None:
    """Send a whole chain with ``bot/send`` (text) and uploads (media), in order."""
    parts: list[_Text | BaseMessageComponent] = []
    current: _Text | None = None
    for comp in chain.chain:
        if current is None:
            current = _Text()
        if current.add(comp):
            continue
        parts.append(current)
        current = None
        parts.append(comp)
    if current is not None:
        parts.append(current)
    texts = [p for p in parts if isinstance(p, _Text) and p.text.strip()]
    last = texts[-1] if texts else None
    if buttons and last is None:
        log.warning("astrbot_buttons_not_attached", reason="the reply has no text message")
    for part in parts:
        if isinstance(part, _Text):
            if part.text.strip():
                await bot.send(to, part.text, content_type=settings.content_type,
                               at=part.at or None, parent_id=part.parent_id,
                               buttons=buttons if part is last else None)
        elif isinstance(part, _MEDIA):
            await send_media(bot, to, part)
        else:
            _skipped(part)


class StreamingReply:
    """Feeds AstrBot's streamed chains into YunHu, one streamed message at a time.

    Args:
        bot: The platform's Bot (its rate limiter is shared with every other send).
        to: The chat the reply goes to.
        settings: The platform's settings (content type, rollover size).
        buttons: Buttons for the last text message, or None.
        lead: Parts that open the reply's first text message (the sender's mention
            when AstrBot's ``reply_with_mention`` is on).
    """

    def __init__(self, bot: Bot, to: Recipient, settings: Settings, *,
                 buttons: Buttons | None = None,
                 lead: list[BaseMessageComponent] | None = None) -> None:
        self._bot = bot
        self._to = to
        self._settings = settings
        self._buttons = buttons
        self._stream: Streamer | None = None
        self._pending = _Text()  # parts that wait for the message's first text
        for comp in lead or []:
            self._pending.add(comp)

    async def feed(self, chain: MessageChain) -> None:
        """Take one chain from AstrBot's stream."""
        if chain.type == "break":
            await self._end_message()
            return
        for comp in chain.chain:
            await self._take(comp)

    async def _take(self, comp: BaseMessageComponent) -> None:
        if isinstance(comp, Plain):
            if comp.text:
                await self._write(comp.text)
        elif isinstance(comp, At):
            if self._stream is None:
                self._pending.add(comp)
                return
            text, uid = mention_of(comp)
            if uid is not None:
                self._stream.attach(at=[uid])
            await self._stream.write(text)
        elif isinstance(comp, Reply):
            await self._end_message()  # a quote belongs to the message it starts
            self._pending.add(comp)
        elif isinstance(comp, _MEDIA):
            await self._end_message()
            await send_media(self._bot, self._to, comp)
        else:
            _skipped(comp)

    async def _write(self, text: str) -> None:
        if self._stream is None:
            pending, self._pending = self._pending, _Text()
            settings = self._settings
            self._stream = self._bot.stream(
                self._to, content_type=settings.content_type,
                at=pending.at or None, reply_to=pending.parent_id,
                quote="fallback", max_message_bytes=settings.max_message_bytes,
                first_chunk=_FIRST_CHUNK[settings.first_chunk], gap=settings.gap,
            )
            text = pending.text + text
        await self._stream.write(text)

    async def _end_message(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()

    async def finish(self) -> None:
        """The stream ended: close the open message, with the buttons."""
        if self._buttons:
            if self._stream is not None:
                self._stream.attach(buttons=self._buttons)
            else:
                log.warning("astrbot_buttons_not_attached",
                            reason="the reply did not end with a text message")
        await self._end_message()

    async def fail(self) -> None:
        """AstrBot's generator raised: deliver what it produced (never drop it)."""
        await self._end_message()

    async def abort(self) -> None:
        """Cancelled: cut the open message off."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.abort()
