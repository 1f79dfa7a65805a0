"""The event dataclasses; parsing lives in ``_event_parse``, the public names in ``events``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._exceptions import ConfigurationError
from .._types import Recipient

MESSAGE_NORMAL = "message.receive.normal"
MESSAGE_INSTRUCTION = "message.receive.instruction"
BOT_FOLLOWED = "bot.followed"
BOT_UNFOLLOWED = "bot.unfollowed"
GROUP_JOIN = "group.join"
GROUP_LEAVE = "group.leave"
BUTTON_REPORT_INLINE = "button.report.inline"
SHORTCUT_MENU = "bot.shortcut.menu"
BOT_SETTING = "bot.setting"
A2UI_BUTTON_REPORT = "a2ui.button.report"

KNOWN_EVENT_TYPES: tuple[str, ...] = (
    MESSAGE_NORMAL,
    MESSAGE_INSTRUCTION,
    BOT_FOLLOWED,
    BOT_UNFOLLOWED,
    GROUP_JOIN,
    GROUP_LEAVE,
    BUTTON_REPORT_INLINE,
    SHORTCUT_MENU,
    BOT_SETTING,
    A2UI_BUTTON_REPORT,
)
"""Every event type :func:`parse_event` turns into a specific class."""

# Chat types that mean "a private chat between one user and the bot". YunHu
# documents "bot"; "user" is accepted too so a private chat is never sent to a group.
_PRIVATE_CHAT_TYPES = ("bot", "user")


def _reply_to_chat(chat_type: str, group_id: str, user_id: str, what: str) -> Recipient:
    if chat_type == "group":
        return Recipient.group(group_id)
    if chat_type in _PRIVATE_CHAT_TYPES:
        return Recipient.user(user_id)
    raise ConfigurationError(
        f"cannot reply to {what}: unknown chat type {chat_type!r} (expected 'group' or 'bot')"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every webhook event has (from the envelope's ``header``).

    Attributes:
        event_id: ``header.eventId``, unique per event (redeliveries repeat it).
        event_type: ``header.eventType``, e.g. ``"message.receive.normal"``.
        event_time: ``header.eventTime``, milliseconds since the epoch.
        version: The envelope's ``version`` (``"1.0"`` today).
        raw: The whole JSON object as received. Treat it as read-only.
    """

    event_id: str
    event_type: str
    event_time: int
    version: str = "1.0"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def time(self) -> datetime:
        """``event_time`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.event_time / 1000, tz=timezone.utc)

    @property
    def reply_recipient(self) -> Recipient:
        """Where a reply to this event goes (see the module docs for the rules).

        Raises:
            ValueError: when the event has no chat a reply could go to.
        """
        raise ConfigurationError(f"a {self.event_type!r} event has no chat to reply to")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    """Who sent a message (``event.sender``).

    Attributes:
        id: ``senderId``, the user's id; private replies go here.
        type: ``senderType`` (``"user"``).
        user_level: ``senderUserLevel``: owner, administrator, member or unknown.
        nickname: ``senderNickname``.
    """

    id: str
    type: str = "user"
    user_level: str = "unknown"
    nickname: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Chat:
    """The chat a message was sent in (``event.chat``).

    Attributes:
        id: ``chatId``: the group id, or the bot's id in a private chat.
        type: ``chatType``: ``"group"`` or ``"bot"`` (private chat).
    """

    id: str
    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """The message itself (``event.message``).

    Attributes:
        msg_id: ``msgId``.
        content_type: ``contentType``: text, markdown, html, image, file, video,
            form, tip or anything newer.
        content: ``content`` as received (``text``, ``at``, ``imageUrl``, ``formJson``…).
        send_time: ``sendTime`` in milliseconds (the event time when absent).
        parent_id: ``parentId``, the quoted message, or ``None``.
        command_id: ``commandId`` (or ``instructionId``), ``None`` when 0 or absent.
        command_name: ``commandName`` (or ``instructionName``), ``None`` when empty.
    """

    msg_id: str
    content_type: str
    content: Mapping[str, Any] = field(default_factory=dict, compare=False)
    send_time: int = 0
    parent_id: str | None = None
    command_id: int | None = None
    command_name: str | None = None

    @property
    def text(self) -> str:
        """``content.text`` when it is a string, else ``""`` (images, forms…)."""
        text = self.content.get("text")
        return text if isinstance(text, str) else ""

    @property
    def at(self) -> tuple[str, ...]:
        """The user ids mentioned in the message (``content.at``)."""
        at = self.content.get("at")
        if not isinstance(at, list):
            return ()
        return tuple(str(uid) for uid in at if isinstance(uid, (str, int)))


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEvent(Event):
    """``message.receive.normal`` or ``message.receive.instruction`` (a command)."""

    sender: Sender
    chat: Chat
    message: Message

    @property
    def text(self) -> str:
        """The message's text (``""`` for images, files and forms)."""
        return self.message.text

    @property
    def is_command(self) -> bool:
        """True for an instruction event or a message that carries a command."""
        return (
            self.event_type == MESSAGE_INSTRUCTION
            or self.message.command_id is not None
            or self.message.command_name is not None
        )

    @property
    def command_name(self) -> str | None:
        """The command's name, or ``None`` for a plain message."""
        return self.message.command_name

    @property
    def command_id(self) -> int | None:
        """The command's id, or ``None`` for a plain message."""
        return self.message.command_id

    @property
    def is_group(self) -> bool:
        """True when the message was sent in a group."""
        return self.chat.type == "group"

    @property
    def reply_recipient(self) -> Recipient:
        """The group for group messages, the sender for private ones.

        Raises:
            ValueError: for a chat type other than group or bot.
        """
        return _reply_to_chat(self.chat.type, self.chat.id, self.sender.id, "this message")


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChatUserEvent(Event):
    """Fields shared by follow and group-membership events."""

    chat_id: str
    chat_type: str
    user_id: str
    nickname: str = ""
    avatar_url: str = ""
    time_ms: int = 0

    @property
    def reply_recipient(self) -> Recipient:
        """The group for a group chat, the user for a private chat.

        Raises:
            ValueError: for a chat type other than group or bot.
        """
        return _reply_to_chat(self.chat_type, self.chat_id, self.user_id, "this event")


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowEvent(_ChatUserEvent):
    """``bot.followed`` or ``bot.unfollowed``: a user added or removed the bot.

    Attributes:
        chat_id: ``chatId`` (the bot's id).
        chat_type: ``chatType`` (``"bot"``).
        user_id: ``userId``, the user who (un)followed; replies go to them.
        nickname: ``nickname``.
        avatar_url: ``avatarUrl``.
        time_ms: ``time`` in milliseconds.

    A reply to ``bot.unfollowed`` is addressed to the user, but YunHu will
    refuse it (code 1003): they are no longer the bot's friend.
    """

    @property
    def followed(self) -> bool:
        """True for ``bot.followed``, False for ``bot.unfollowed``."""
        return self.event_type == BOT_FOLLOWED


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMemberEvent(_ChatUserEvent):
    """``group.join`` or ``group.leave``: a user joined or left a group the bot is in.

    Attributes:
        chat_id: ``chatId``, the group; replies go there.
        chat_type: ``chatType`` (``"group"``).
        user_id: ``userId``, the user who joined or left.
        nickname: ``nickname``.
        avatar_url: ``avatarUrl``.
        time_ms: ``time`` in milliseconds.
    """

    @property
    def joined(self) -> bool:
        """True for ``group.join``, False for ``group.leave``."""
        return self.event_type == GROUP_JOIN


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonReportEvent(Event):
    """``button.report.inline``: a user clicked a button with ``actionType`` 3.

    Attributes:
        msg_id: ``msgId``, the message holding the button.
        recv_id: ``recvId``: the group id, or the bot's id in a private chat.
        recv_type: ``recvType``: ``"group"``, or ``"bot"`` in a private chat.
        user_id: ``userId``, who clicked.
        value: ``value``, the button's value.
        time_ms: ``time`` in milliseconds.
    """

    msg_id: str
    recv_id: str
    recv_type: str
    user_id: str
    value: str = ""
    time_ms: int = 0

    @property
    def reply_recipient(self) -> Recipient:
        """The group for a button in a group, else the user who clicked.

        Raises:
            ValueError: for a ``recvType`` other than group, bot or user.
        """
        return _reply_to_chat(self.recv_type, self.recv_id, self.user_id, "this button report")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortcutMenuEvent(Event):
    """``bot.shortcut.menu``: a user pressed one of the bot's shortcut menu entries.

    Attributes:
        menu_id: ``menuId``.
        chat_id: ``chatId``.
        chat_type: ``chatType``: ``"group"`` or ``"bot"``.
        sender_id: ``senderId``, who pressed it.
        bot_id: ``botId``.
        menu_type: ``menuType`` (1 button, 2 checkbox, 3 list in public SDKs).
        menu_action: ``menuAction``.
        sender_type: ``senderType``.
        send_time: ``sendTime`` as sent (units are not documented).
    """

    menu_id: str
    chat_id: str
    chat_type: str
    sender_id: str
    bot_id: str = ""
    menu_type: int = 0
    menu_action: int = 0
    sender_type: str = "user"
    send_time: int = 0

    @property
    def reply_recipient(self) -> Recipient:
        """The group for a group chat, else the user who pressed the entry.

        Raises:
            ValueError: for a chat type other than group or bot.
        """
        return _reply_to_chat(self.chat_type, self.chat_id, self.sender_id, "this menu event")


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingEvent(Event):
    """``bot.setting``: someone changed the bot's settings form in a chat (a newer event
    type, typed but open: ``data`` keeps the whole ``event`` object).

    Attributes:
        chat_id: ``chatId``.
        chat_type: ``chatType``.
        group_id: ``groupId`` (``""`` outside groups).
        group_name: ``groupName``.
        settings: ``settingJson`` decoded (``{}`` if absent or not a JSON object).
        data: The ``event`` object as received.
    """

    chat_id: str
    chat_type: str
    group_id: str = ""
    group_name: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def reply_recipient(self) -> Recipient:
        """The group the settings belong to.

        Raises:
            ValueError: outside a group (the event names no user to answer).
        """
        if self.chat_type == "group":
            return Recipient.group(self.chat_id)
        raise ValueError(f"a bot.setting event in a {self.chat_type!r} chat has no reply chat")


@dataclass(frozen=True, slots=True, kw_only=True)
class A2UIButtonEvent(Event):
    """``a2ui.button.report``: a user pressed a button of an A2UI message (a newer event
    type, typed but open: ``data`` keeps the whole ``event`` object).

    Attributes:
        msg_id: ``msgId``.
        recv_id: ``recvId``: the group, or the bot's id in a private chat.
        recv_type: ``recvType``: ``"group"``, or ``"bot"`` in a private chat.
        user_id: ``userId``, who pressed it.
        action_name: ``actionName``.
        component_id: ``sourceComponentId``.
        form_context: ``formContext`` (``{}`` if absent).
        data: The ``event`` object as received.
    """

    msg_id: str
    recv_id: str
    recv_type: str
    user_id: str
    action_name: str = ""
    component_id: str = ""
    form_context: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def reply_recipient(self) -> Recipient:
        """The group for a group message, else the user who pressed the button.

        Raises:
            ValueError: for a ``recvType`` other than group, bot or user.
        """
        return _reply_to_chat(self.recv_type, self.recv_id, self.user_id, "this A2UI report")


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An event type this library does not model; ``data`` is its ``event`` object.

    ``reply_recipient`` raises ValueError: there is no documented chat to reply to.
    """

    data: Any = field(default=None, repr=False, compare=False)
