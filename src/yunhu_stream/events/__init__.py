"""Typed models of the events YunHu POSTs to a bot's webhook, and :func:`parse_event`.

Every event is a frozen dataclass that keeps the JSON object it came from in
``raw``. Unknown event types become :class:`UnknownEvent` instead of an error,
so a bot keeps working when YunHu adds a new event.

Each event knows where a reply to it goes (``event.reply_recipient``), which is
what makes ``bot.stream(to=event)`` and ``bot.send(to=event, ...)`` work:

========================================  =====================================
event                                     reply goes to
========================================  =====================================
message in a group (``chatType`` group)   the group ``chat.chatId``
private message (``chatType`` bot)        the user ``sender.senderId``
``bot.followed`` / ``bot.unfollowed``     the user ``userId``
``group.join`` / ``group.leave``          the group ``chatId``
``button.report.inline``                  the group ``recvId`` when ``recvType``
                                          is group, else the user ``userId``
``bot.shortcut.menu``                     the group ``chatId`` when ``chatType``
                                          is group, else the user ``senderId``
``bot.setting``                           the group ``chatId`` (raises elsewhere)
``a2ui.button.report``                    as ``button.report.inline``
unknown event type                        none: ``reply_recipient`` raises
========================================  =====================================

Button reports: for a button in a private chat YunHu reports ``recvType`` as
``"bot"`` and ``recvId`` as the *bot's* id (the official example and the
adapters that handle real traffic agree), so the reply goes to the user who
clicked (``userId``), never to ``recvId``.
"""

from __future__ import annotations

from .._exceptions import EventParseError
from .._public import publish
from ._models import (
    A2UI_BUTTON_REPORT,
    BOT_FOLLOWED,
    BOT_SETTING,
    BOT_UNFOLLOWED,
    BUTTON_REPORT_INLINE,
    GROUP_JOIN,
    GROUP_LEAVE,
    KNOWN_EVENT_TYPES,
    MESSAGE_INSTRUCTION,
    MESSAGE_NORMAL,
    SHORTCUT_MENU,
    A2UIButtonEvent,
    ButtonReportEvent,
    Chat,
    Event,
    FollowEvent,
    GroupMemberEvent,
    Message,
    MessageEvent,
    Sender,
    SettingEvent,
    ShortcutMenuEvent,
    UnknownEvent,
)
from ._parse import parse_event

__all__ = [
    "A2UI_BUTTON_REPORT",
    "BOT_FOLLOWED",
    "BOT_SETTING",
    "BOT_UNFOLLOWED",
    "BUTTON_REPORT_INLINE",
    "GROUP_JOIN",
    "GROUP_LEAVE",
    "KNOWN_EVENT_TYPES",
    "MESSAGE_INSTRUCTION",
    "MESSAGE_NORMAL",
    "SHORTCUT_MENU",
    "A2UIButtonEvent",
    "ButtonReportEvent",
    "Chat",
    "Event",
    "EventParseError",
    "FollowEvent",
    "GroupMemberEvent",
    "Message",
    "MessageEvent",
    "Sender",
    "SettingEvent",
    "ShortcutMenuEvent",
    "UnknownEvent",
    "parse_event",
]

publish(globals(), __all__)
