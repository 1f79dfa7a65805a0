"""Builders of the webhook bodies YunHu POSTs to a bot, shaped as YunHu sends them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .._types import Recipient
from ..events._models import (
    A2UI_BUTTON_REPORT,
    BOT_FOLLOWED,
    BOT_SETTING,
    BOT_UNFOLLOWED,
    BUTTON_REPORT_INLINE,
    GROUP_JOIN,
    GROUP_LEAVE,
    MESSAGE_INSTRUCTION,
    MESSAGE_NORMAL,
    SHORTCUT_MENU,
)

DEFAULT_USER_ID = "7756242"
"""The user who sends, clicks or follows when a builder is not told otherwise."""

DEFAULT_BOT_ID = "37090343"
"""The bot's id: YunHu's ``chatId`` (or ``recvId``) of a private chat."""

DEFAULT_CHAT = "group:307149245"
"""The chat a message, button click or menu press happens in by default."""

DEFAULT_AVATAR_URL = "https://chat-img.jwznb.com/c07a80a9e21dd8d10abd2bd272c39fc8.jpg"
"""``senderAvatarUrl`` / ``avatarUrl`` (nonebot-adapter-yunhu requires the field)."""

INCOMING_CONTENT_TYPES: tuple[str, ...] = (
    "text", "markdown", "html", "image", "file", "video", "form", "tip",
)
"""The ``contentType`` values :func:`message_event` accepts."""

_USER_LEVELS = ("owner", "administrator", "member", "unknown")


# -- argument checks ---------------------------------------------------------------------


def _check_id(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or value.strip() != value:
        raise ValueError(
            f"{name} must be a non-empty string without surrounding spaces "
            f"(e.g. '7756242'), not {value!r}"
        )
    return value


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def _check_choice(name: str, value: object, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, accepted))}, not {value!r}")
    return value


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")
    return value


def _check_chat(chat: object) -> Recipient:
    if isinstance(chat, Recipient):
        return chat
    if isinstance(chat, str):
        return Recipient.parse(chat)  # its ValueError names the accepted forms
    raise ValueError(
        f"chat must be a Recipient or a string 'group:ID' or 'user:ID', not {chat!r}"
    )


def _participant(chat: Recipient, name: str, given: str | None) -> str:
    """The user acting in ``chat``: in a private chat it can only be that user."""
    if given is not None:
        _check_id(name, given)
    if chat.type == "user":
        if given is not None and given != chat.id:
            raise ValueError(
                f"a private chat is with the user who acts in it: chat={str(chat)!r} "
                f"but {name}={given!r} (leave {name} out, or make them match)"
            )
        return chat.id
    return DEFAULT_USER_ID if given is None else given


def _header(event_id: str | None, time_ms: int | None) -> tuple[str, int]:
    now = int(time.time() * 1000) if time_ms is None else _check_int("time_ms", time_ms, minimum=0)
    return (uuid.uuid4().hex if event_id is None else _check_id("event_id", event_id)), now


def _envelope(event_type: str, event_id: str, now: int, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "header": {"eventId": event_id, "eventType": event_type, "eventTime": now},
        "event": event,
    }


# -- webhook bodies ----------------------------------------------------------------------


def message_event(
    text: str,
    *,
    chat: Recipient | str = DEFAULT_CHAT,
    sender_id: str | None = None,
    sender_nickname: str = "小明",
    sender_level: str = "member",
    command: str | None = None,
    command_id: int | None = None,
    content_type: str = "text",
    content: Mapping[str, Any] | None = None,
    at: Sequence[str] = (),
    parent_id: str | None = None,
    bot_id: str = DEFAULT_BOT_ID,
    event_id: str | None = None,
    msg_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``message.receive.normal`` body, or ``message.receive.instruction`` with ``command``.

    Args:
        text: ``content.text`` (may be ``""``, e.g. for an image).
        chat: ``"group:ID"`` / ``Recipient.group(ID)`` for a group message, or
            ``"user:ID"`` / ``Recipient.user(ID)`` for a private message from user ID
            (YunHu sends those with ``chatType`` ``"bot"`` and the bot's id as ``chatId``).
        sender_id: Who sent it; defaults to :data:`DEFAULT_USER_ID` in a group and to
            the chat's user in a private chat (where any other value is an error).
        sender_nickname: ``senderNickname``.
        sender_level: ``senderUserLevel``: owner, administrator, member or unknown.
        command: The command's name (``commandName``); makes it an instruction event.
        command_id: ``commandId``; only with ``command`` (default 1).
        content_type: ``contentType``, one of :data:`INCOMING_CONTENT_TYPES`.
        content: More ``content`` fields (``imageUrl``, ``formJson``…), merged after ``text``.
        at: User ids mentioned (``content.at``), e.g. the bot's id.
        parent_id: ``parentId``, the quoted message.
        bot_id: The bot's id, used as ``chatId`` of a private chat.
        event_id: ``header.eventId``; a fresh one when ``None``.
        msg_id: ``message.msgId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``sendTime`` in ms since the epoch; now when ``None``.

    Returns:
        The body as a new dict of JSON-serialisable values.

    Raises:
        ValueError: for a chat that is not a group or user recipient, an empty or
            padded id, an unknown content type or user level, a ``command_id``
            without ``command``, or a ``sender_id`` that differs from a private chat's user.
        TypeError: for a ``text``, ``sender_nickname`` or ``content`` of the wrong type.
    """
    _check_str("text", text)
    recipient = _check_chat(chat)
    sender = _participant(recipient, "sender_id", sender_id)
    _check_str("sender_nickname", sender_nickname)
    _check_choice("sender_level", sender_level, _USER_LEVELS)
    _check_choice("content_type", content_type, INCOMING_CONTENT_TYPES)
    _check_id("bot_id", bot_id)
    if command is None:
        if command_id is not None:
            raise ValueError("command_id needs a command name: pass command='NAME' too")
        name, number = "", 0
    else:
        name = _check_id("command", command)
        number = 1 if command_id is None else _check_int("command_id", command_id, minimum=1)
    if content is not None and not isinstance(content, Mapping):
        raise TypeError(f"content must be a mapping, not {type(content).__name__}")
    if isinstance(at, str):
        raise ValueError(f"at must be a sequence of user ids, not the string {at!r}")
    mentioned = [_check_id("at[]", uid) for uid in at]
    if parent_id is not None:
        _check_id("parent_id", parent_id)
    event_type = MESSAGE_NORMAL if command is None else MESSAGE_INSTRUCTION
    eid, now = _header(event_id, time_ms)
    mid = uuid.uuid4().hex if msg_id is None else _check_id("msg_id", msg_id)

    body: dict[str, Any] = {"text": text}
    if mentioned:
        body["at"] = mentioned
    if content is not None:
        body.update(content)
    chat_id, chat_type = (
        (recipient.id, "group") if recipient.type == "group" else (bot_id, "bot")
    )
    return _envelope(event_type, eid, now, {
        "sender": {
            "senderId": sender,
            "senderType": "user",
            "senderUserLevel": sender_level,
            "senderNickname": sender_nickname,
            "senderAvatarUrl": DEFAULT_AVATAR_URL,
        },
        "chat": {"chatId": chat_id, "chatType": chat_type},
        "message": {
            "msgId": mid,
            "parentId": parent_id or "",
            "sendTime": now,
            "chatId": chat_id,
            "chatType": chat_type,
            "contentType": content_type,
            "content": body,
            "instructionId": number,
            "instructionName": name,
            "commandId": number,
            "commandName": name,
        },
    })


def button_event(
    value: str,
    *,
    chat: Recipient | str = DEFAULT_CHAT,
    user_id: str | None = None,
    msg_id: str | None = None,
    bot_id: str = DEFAULT_BOT_ID,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``button.report.inline`` body: a user clicked a button whose ``actionType`` is 3.

    Args:
        value: The button's ``value``.
        chat: Where the button's message is: ``"group:ID"`` (``recvType`` group), or
            ``"user:ID"`` for a private chat (``recvType`` ``"bot"``, ``recvId`` the bot).
        user_id: Who clicked; defaults as ``sender_id`` does in :func:`message_event`.
        msg_id: The message holding the button; a fresh id when ``None``.
        bot_id: The bot's id, ``recvId`` in a private chat.
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``time`` in ms; now when ``None``.

    Returns:
        The body as a new dict.

    Raises:
        ValueError: for a bad chat or id, or a ``user_id`` other than a private chat's user.
        TypeError: for a ``value`` that is not a str.
    """
    _check_str("value", value)
    recipient = _check_chat(chat)
    user = _participant(recipient, "user_id", user_id)
    _check_id("bot_id", bot_id)
    eid, now = _header(event_id, time_ms)
    mid = uuid.uuid4().hex if msg_id is None else _check_id("msg_id", msg_id)
    recv_id, recv_type = (
        (recipient.id, "group") if recipient.type == "group" else (bot_id, "bot")
    )
    return _envelope(BUTTON_REPORT_INLINE, eid, now, {
        "time": now, "msgId": mid, "recvId": recv_id, "recvType": recv_type,
        "userId": user, "value": value,
    })


def follow_event(
    user_id: str = DEFAULT_USER_ID,
    *,
    followed: bool = True,
    nickname: str = "小明",
    avatar_url: str = DEFAULT_AVATAR_URL,
    bot_id: str = DEFAULT_BOT_ID,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``bot.followed`` body (``bot.unfollowed`` with ``followed=False``).

    Args:
        user_id: The user who (un)followed the bot; a reply goes to them.
        followed: True for ``bot.followed``, False for ``bot.unfollowed``.
        nickname: ``nickname``.
        avatar_url: ``avatarUrl``.
        bot_id: The bot's id, the event's ``chatId``.
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``time`` in ms; now when ``None``.

    Returns:
        The body as a new dict.

    Raises:
        ValueError: for an empty or padded id, or a ``followed`` that is not a bool.
        TypeError: for a ``nickname`` or ``avatar_url`` that is not a str.
    """
    _check_id("user_id", user_id)
    if not isinstance(followed, bool):
        raise ValueError(f"followed must be True or False, not {followed!r}")
    _check_str("nickname", nickname)
    _check_str("avatar_url", avatar_url)
    _check_id("bot_id", bot_id)
    event_type = BOT_FOLLOWED if followed else BOT_UNFOLLOWED
    eid, now = _header(event_id, time_ms)
    return _envelope(event_type, eid, now, {
        "time": now, "chatId": bot_id, "chatType": "bot", "userId": user_id,
        "nickname": nickname, "avatarUrl": avatar_url,
    })


def menu_event(
    menu_id: str,
    *,
    chat: Recipient | str = DEFAULT_CHAT,
    sender_id: str | None = None,
    menu_type: int = 1,
    menu_action: int = 1,
    bot_id: str = DEFAULT_BOT_ID,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``bot.shortcut.menu`` body: a user pressed one of the bot's shortcut menu entries.

    Args:
        menu_id: ``menuId``, e.g. ``"VO9SDAQ9"``.
        chat: ``"group:ID"``, or ``"user:ID"`` for a private chat (``chatType``
            ``"bot"``, ``chatId`` the bot).
        sender_id: Who pressed it; defaults as in :func:`message_event`.
        menu_type: ``menuType`` (1 button, 2 checkbox, 3 list).
        menu_action: ``menuAction``.
        bot_id: The bot's id (``botId``; ``chatId`` of a private chat).
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` in ms; now when ``None``. ``sendTime`` is the same moment
            in **seconds**, as in YunHu's documented example of this event.

    Returns:
        The body as a new dict.

    Raises:
        ValueError: for a bad chat or id, a ``menu_type``/``menu_action`` below 0, or a
            ``sender_id`` other than a private chat's user.
    """
    _check_id("menu_id", menu_id)
    recipient = _check_chat(chat)
    sender = _participant(recipient, "sender_id", sender_id)
    _check_int("menu_type", menu_type, minimum=0)
    _check_int("menu_action", menu_action, minimum=0)
    _check_id("bot_id", bot_id)
    eid, now = _header(event_id, time_ms)
    chat_id, chat_type = (
        (recipient.id, "group") if recipient.type == "group" else (bot_id, "bot")
    )
    return _envelope(SHORTCUT_MENU, eid, now, {
        "botId": bot_id, "menuId": menu_id, "menuType": menu_type, "menuAction": menu_action,
        "chatId": chat_id, "chatType": chat_type, "senderType": "user",
        "senderId": sender, "sendTime": now // 1000,
    })


def group_event(
    group_id: str,
    user_id: str = DEFAULT_USER_ID,
    *,
    joined: bool = True,
    nickname: str = "小明",
    avatar_url: str = DEFAULT_AVATAR_URL,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``group.join`` body (``group.leave`` with ``joined=False``).

    Args:
        group_id: The group (``chatId``); a reply goes there.
        user_id: Who joined or left.
        joined: True for ``group.join``, False for ``group.leave``.
        nickname, avatar_url: ``nickname`` and ``avatarUrl``.
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``time`` in ms; now when ``None``.

    Raises:
        ValueError: for an empty or padded id, or a ``joined`` that is not a bool.
        TypeError: for a ``nickname`` or ``avatar_url`` that is not a str.
    """
    _check_id("group_id", group_id)
    _check_id("user_id", user_id)
    if not isinstance(joined, bool):
        raise ValueError(f"joined must be True or False, not {joined!r}")
    _check_str("nickname", nickname)
    _check_str("avatar_url", avatar_url)
    eid, now = _header(event_id, time_ms)
    return _envelope(GROUP_JOIN if joined else GROUP_LEAVE, eid, now, {
        "time": now, "chatId": group_id, "chatType": "group", "userId": user_id,
        "nickname": nickname, "avatarUrl": avatar_url,
    })


def setting_event(
    settings: Mapping[str, Any],
    *,
    chat: Recipient | str = DEFAULT_CHAT,
    group_name: str = "流式测试群",
    avatar_url: str = DEFAULT_AVATAR_URL,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """A ``bot.setting`` body: someone changed the bot's settings form in a chat.

    Args:
        settings: The form, ``{id: {"id", "type", "label", "value"}}``; sent as the
            JSON string ``settingJson``, as YunHu does.
        chat: Where (``"group:ID"`` or ``"user:ID"``).
        group_name, avatar_url: ``groupName`` and ``avatarUrl``.
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``time`` in ms; now when ``None``.

    Raises:
        ValueError: for a bad chat.
        TypeError: for ``settings`` that is not a mapping of JSON values.
    """
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping, not {type(settings).__name__}")
    recipient = _check_chat(chat)
    _check_str("group_name", group_name)
    eid, now = _header(event_id, time_ms)
    return _envelope(BOT_SETTING, eid, now, {
        "time": now, "chatId": recipient.id, "chatType": recipient.type,
        "groupId": recipient.id if recipient.type == "group" else "",
        "groupName": group_name, "avatarUrl": avatar_url,
        "settingJson": json.dumps(dict(settings), ensure_ascii=False),
    })


def a2ui_event(
    action_name: str,
    *,
    chat: Recipient | str = DEFAULT_CHAT,
    user_id: str | None = None,
    nickname: str = "小明",
    msg_id: str | None = None,
    component_id: str = "button-1",
    form_context: Mapping[str, Any] | None = None,
    bot_id: str = DEFAULT_BOT_ID,
    event_id: str | None = None,
    time_ms: int | None = None,
) -> dict[str, Any]:
    """An ``a2ui.button.report`` body: a user pressed a button of an A2UI message.

    Args:
        action_name: ``actionName``, the button's action.
        chat: Where the message is; a private chat is reported like a button click
            (``recvType`` ``"bot"``, ``recvId`` the bot).
        user_id: Who pressed it; defaults as in :func:`button_event`.
        nickname: ``nickname``.
        msg_id: ``msgId``; a fresh one when ``None``.
        component_id: ``sourceComponentId``.
        form_context: ``formContext``, the form's values (default ``{}``).
        bot_id: The bot's id, ``recvId`` in a private chat.
        event_id: ``header.eventId``; a fresh one when ``None``.
        time_ms: ``eventTime`` and ``time`` in ms; now when ``None``.

    Raises:
        ValueError: for a bad chat or id.
        TypeError: for an ``action_name`` that is not a str or a ``form_context`` that
            is not a mapping.
    """
    _check_str("action_name", action_name)
    recipient = _check_chat(chat)
    user = _participant(recipient, "user_id", user_id)
    if form_context is not None and not isinstance(form_context, Mapping):
        raise TypeError(f"form_context must be a mapping, not {type(form_context).__name__}")
    eid, now = _header(event_id, time_ms)
    mid = uuid.uuid4().hex if msg_id is None else _check_id("msg_id", msg_id)
    recv_id, recv_type = (
        (recipient.id, "group") if recipient.type == "group" else (bot_id, "bot")
    )
    return _envelope(A2UI_BUTTON_REPORT, eid, now, {
        "time": now, "msgId": mid, "recvId": recv_id, "recvType": recv_type,
        "userId": user, "nickname": nickname, "actionName": action_name,
        "sourceComponentId": component_id, "formContext": dict(form_context or {}),
    })
