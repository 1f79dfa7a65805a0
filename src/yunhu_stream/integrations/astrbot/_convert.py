"""Webhook events as AstrBot sees messages: every event type becomes an ``AstrBotMessage``.

========================  ==============  ===========================================
YunHu event               message type    components / ``message_str``
========================  ==============  ===========================================
message, group            GroupMessage    ``Reply`` (quote), ``At``, ``Plain``,
                                          ``Image``, ``File``, ``Video``, ``Record``
message, private          FriendMessage   the same
command (instruction)     as above        ``Plain("/name args")``, so AstrBot's
                                          ``/`` wake prefix and commands match
button report             OtherMessage    ``Plain(value)``
shortcut menu             OtherMessage    ``Plain(menuId)``
follow, join, leave,      OtherMessage    no components; the event type is in the
unknown                                   ``yunhu_event_type`` extra
========================  ==============  ===========================================

``OtherMessage`` events never start AstrBot's default LLM reply (plugins see them
all); their session id is the chat a reply goes to, ``group:ID`` or ``user:ID``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from astrbot.api.message_components import (
    At,
    BaseMessageComponent,
    File,
    Image,
    Plain,
    Record,
    Reply,
    Video,
)
from astrbot.api.platform import AstrBotMessage, Group, MessageMember, MessageType

from ... import errors
from ..._client import Bot
from ..._log import get_logger
from ..._types import Recipient
from ...events import (
    ButtonReportEvent,
    Event,
    MessageEvent,
    ShortcutMenuEvent,
)

log = get_logger("integrations")

# A mention as YunHu clients write it: "@", the name, U+200B (see yunhu_stream.mentions).
_MENTION = re.compile(r"@([^\u200b\r\n]{1,64}?)\u200b[ \t]?")

# Media fields that may hold a bare file name instead of a URL, and the CDN host
# YunHu serves them from (as nonebot-adapter-yunhu resolves them).
_MEDIA = {
    "image": ("imageUrl", "https://chat-img.jwznb.com/"),
    "file": ("fileUrl", "https://chat-file.jwznb.com/"),
    "video": ("videoUrl", "https://chat-video1.jwznb.com/"),
    "audio": ("audioUrl", "https://chat-audio1.jwznb.com/"),
}


async def to_astrbot_message(event: Event, *, bot: Bot, bot_id: str) -> AstrBotMessage:
    """The ``AstrBotMessage`` for a parsed webhook event (see the module table).

    For a message that quotes another, the quoted message is looked up with
    ``bot/messages`` to fill the ``Reply``'s sender and text; if that fails the
    ``Reply`` carries the id only.
    """
    abm = AstrBotMessage()
    abm.raw_message = dict(event.raw)
    abm.message_id = event.event_id
    abm.timestamp = event.event_time // 1000
    if isinstance(event, MessageEvent):
        await _fill_message(abm, event, bot, bot_id)
        return abm
    recipient = event.reply_recipient
    abm.self_id = bot_id
    abm.type = MessageType.OTHER_MESSAGE
    abm.session_id = str(recipient)
    if recipient.type == "group":
        abm.group = Group(group_id=recipient.id)
    abm.sender = MessageMember(user_id=_actor(event), nickname=getattr(event, "nickname", ""))
    text = ""
    if isinstance(event, ButtonReportEvent):
        text, abm.message_id = event.value, event.msg_id
    elif isinstance(event, ShortcutMenuEvent):
        text = event.menu_id
    abm.message = [Plain(text)] if text else []
    abm.message_str = text
    return abm


def replyable(event: Event) -> bool:
    """Whether AstrBot can answer ``event`` (it names a chat a reply goes to)."""
    try:
        event.reply_recipient  # noqa: B018 - the property raises for events without a chat
    except ValueError:
        return False
    return True


def _actor(event: Event) -> str:
    for name in ("user_id", "sender_id"):
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


async def _fill_message(abm: AstrBotMessage, event: MessageEvent, bot: Bot, bot_id: str) -> None:
    group = event.is_group
    abm.type = MessageType.GROUP_MESSAGE if group else MessageType.FRIEND_MESSAGE
    # In a private chat YunHu's chatId is the bot's own id.
    abm.self_id = bot_id or ("" if group else event.chat.id)
    abm.sender = MessageMember(user_id=event.sender.id, nickname=event.sender.nickname)
    if group:
        abm.group = Group(group_id=event.chat.id)
    abm.session_id = event.chat.id if group else event.sender.id
    abm.message_id = event.message.msg_id
    abm.timestamp = event.message.send_time // 1000
    parts: list[BaseMessageComponent] = []
    if event.message.parent_id:
        parts.append(await _quoted(event, bot))
    body = _body(event)
    parts.extend(body)
    abm.message = parts
    abm.message_str = "".join(p.text for p in body if isinstance(p, Plain)).strip()


def _body(event: MessageEvent) -> list[BaseMessageComponent]:
    message = event.message
    content = message.content
    kind = message.content_type
    media = _MEDIA.get(kind)
    if media is not None:
        field, host = media
        url = _media_url(content.get(field), host)
        if url is None:
            log.warning("astrbot_media_without_url", content_type=kind, msg_id=message.msg_id)
            return []
        name = content.get("fileName") or content.get("imageName") or url.rsplit("/", 1)[-1]
        if kind == "image":
            return [Image(file=url, url=url)]
        if kind == "file":
            return [File(name=str(name), url=url)]
        if kind == "video":
            return [Video(file=url)]
        return [Record(file=url, url=url)]
    text = event.text
    if kind == "form" and not text:
        form = content.get("formJson")
        text = json.dumps(form, ensure_ascii=False) if form is not None else ""
    if event.is_command and event.command_name:
        text = f"/{event.command_name} {text}".rstrip()
    return _with_mentions(text, event.message.at)


def _with_mentions(text: str, at: tuple[str, ...]) -> list[BaseMessageComponent]:
    """``At`` components where the text mentions someone, ``Plain`` for the rest.

    Mentions in the text are paired with the ``at`` ids in order; when their count
    differs from the ids', the ids come first and the text follows without the mentions.
    """
    found = list(_MENTION.finditer(text))
    if len(found) != len(at):
        parts: list[BaseMessageComponent] = [At(qq=uid, name="") for uid in at]
        rest = _MENTION.sub("", text)
        return [*parts, Plain(rest)] if rest else parts
    parts, start = [], 0
    for uid, match in zip(at, found, strict=True):
        if match.start() > start:
            parts.append(Plain(text[start:match.start()]))
        parts.append(At(qq=uid, name=match.group(1)))
        start = match.end()
    if start < len(text):
        parts.append(Plain(text[start:]))
    return parts


def _media_url(value: object, host: str) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if value.startswith(("http://", "https://")) else host + value.lstrip("/")


async def _quoted(event: MessageEvent, bot: Bot) -> Reply:
    """A ``Reply`` for the quoted message, filled from ``bot/messages`` when it is found."""
    parent = event.message.parent_id
    assert parent is not None
    chat = Recipient.group(event.chat.id) if event.is_group else Recipient.user(event.sender.id)
    try:
        items = await bot.messages(chat, message_id=parent, before=1)
    except errors.YunhuError as exc:
        log.info("astrbot_quote_lookup_failed", error=type(exc).__name__, parent_id=parent)
        items = []
    item: Mapping[str, Any] = next((i for i in items if i.get("msgId") == parent), {})
    content = item.get("content")
    quoted = content.get("text") if isinstance(content, Mapping) else None
    quoted = quoted if isinstance(quoted, str) else ""
    sender = item.get("senderId")
    return Reply(
        id=parent,
        sender_id=str(sender) if sender is not None else "",
        sender_nickname=str(item.get("senderNickname") or ""),
        time=int(item.get("sendTime") or 0) // 1000,
        message_str=quoted,
        text=quoted,
        chain=[Plain(quoted)] if quoted else [],
    )
