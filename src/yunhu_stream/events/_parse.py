"""Turn a webhook body into an event: strict where routing depends on it, lenient elsewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import EventParseError
from ._models import (
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

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


_INT_TEXT = re.compile(r"-?[0-9]{1,19}")


def _kind(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


class _Obj:
    """A JSON object being read, with the path used in error messages."""

    __slots__ = ("data", "path")

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise EventParseError(path, f"expected an object, got {_kind(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def obj(self, key: str) -> _Obj:
        if key not in self.data:
            raise EventParseError(self._at(key), "missing")
        return _Obj(self.data[key], self._at(key))

    def opt_obj(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        return _Obj(value, self._at(key)).data

    def req_str(self, key: str, *, routing: bool = True) -> str:
        """A required non-empty string; integers are accepted (ids are numeric).

        A ``routing`` id (one a reply is addressed or quoted by) must be valid Unicode:
        JSON allows a lone surrogate (``"\\ud800"``), which no request can carry.
        """
        value = self.opt_str(key, None)
        if value is None:
            raise EventParseError(self._at(key), "missing")
        if not value.strip():
            raise EventParseError(self._at(key), "must not be empty")
        if routing and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EventParseError(
                    self._at(key), f"not valid Unicode (a lone surrogate at index {exc.start})"
                ) from None
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.opt_str(key, None)
        return default if value is None else value

    def opt_str(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}"
        raise EventParseError(self._at(key), f"expected a string, got {_kind(value)}")

    def opt_int(self, key: str, default: int = 0) -> int:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT_TEXT.fullmatch(value):
            return int(value)
        raise EventParseError(self._at(key), f"expected an integer, got {_kind(value)}")

    def req_int(self, key: str) -> int:
        if self.data.get(key) is None:
            raise EventParseError(self._at(key), "missing")
        return self.opt_int(key)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid in a YunHu event")


def _load(data: Mapping[str, Any] | bytes | bytearray | memoryview | str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventParseError("body", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, str):
        raise TypeError(f"parse_event() takes a mapping, bytes or str, not {type(data).__name__}")
    try:
        loaded = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise EventParseError("body", "JSON nested too deeply") from None
    except ValueError as exc:
        raise EventParseError("body", f"not valid JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise EventParseError("body", f"expected a JSON object, got {_kind(loaded)}")
    return loaded


def _message_event(base: dict[str, Any], event: _Obj) -> MessageEvent:
    sender = event.obj("sender")
    chat = event.obj("chat")
    message = event.obj("message")
    command_id = message.opt_int("commandId") or message.opt_int("instructionId")
    command_name = message.text("commandName") or message.text("instructionName")
    return MessageEvent(
        **base,
        sender=Sender(
            id=sender.req_str("senderId"),
            type=sender.text("senderType", "user"),
            user_level=sender.text("senderUserLevel", "unknown"),
            nickname=sender.text("senderNickname"),
        ),
        chat=Chat(id=chat.req_str("chatId"), type=chat.req_str("chatType")),
        message=Message(
            msg_id=message.req_str("msgId"),
            content_type=message.req_str("contentType"),
            content=message.opt_obj("content"),
            send_time=message.opt_int("sendTime", base["event_time"]),
            parent_id=message.text("parentId") or None,
            command_id=command_id or None,
            command_name=command_name or None,
        ),
    )


def _chat_user_fields(base: dict[str, Any], event: _Obj) -> dict[str, Any]:
    return {
        **base,
        "chat_id": event.req_str("chatId"),
        "chat_type": event.req_str("chatType"),
        "user_id": event.req_str("userId"),
        "nickname": event.text("nickname"),
        "avatar_url": event.text("avatarUrl"),
        "time_ms": event.opt_int("time", base["event_time"]),
    }


def _follow_event(base: dict[str, Any], event: _Obj) -> FollowEvent:
    return FollowEvent(**_chat_user_fields(base, event))


def _group_member_event(base: dict[str, Any], event: _Obj) -> GroupMemberEvent:
    return GroupMemberEvent(**_chat_user_fields(base, event))


def _button_event(base: dict[str, Any], event: _Obj) -> ButtonReportEvent:
    return ButtonReportEvent(
        **base,
        msg_id=event.req_str("msgId"),
        recv_id=event.req_str("recvId"),
        recv_type=event.req_str("recvType"),
        user_id=event.req_str("userId"),
        value=event.text("value"),
        time_ms=event.opt_int("time", base["event_time"]),
    )


def _shortcut_event(base: dict[str, Any], event: _Obj) -> ShortcutMenuEvent:
    return ShortcutMenuEvent(
        **base,
        menu_id=event.req_str("menuId"),
        chat_id=event.req_str("chatId"),
        chat_type=event.req_str("chatType"),
        sender_id=event.req_str("senderId"),
        bot_id=event.text("botId"),
        menu_type=event.opt_int("menuType"),
        menu_action=event.opt_int("menuAction"),
        sender_type=event.text("senderType", "user"),
        send_time=event.opt_int("sendTime", base["event_time"]),
    )


def _setting_event(base: dict[str, Any], event: _Obj) -> SettingEvent:
    try:
        settings = json.loads(event.text("settingJson", "{}") or "{}")
    except ValueError:
        settings = {}
    return SettingEvent(
        **base,
        chat_id=event.req_str("chatId"),
        chat_type=event.req_str("chatType"),
        group_id=event.text("groupId"),
        group_name=event.text("groupName"),
        settings=settings if isinstance(settings, dict) else {},
        data=event.data,
    )


def _a2ui_event(base: dict[str, Any], event: _Obj) -> A2UIButtonEvent:
    context = event.data.get("formContext")
    return A2UIButtonEvent(
        **base,
        msg_id=event.req_str("msgId"),
        recv_id=event.req_str("recvId"),
        recv_type=event.req_str("recvType"),
        user_id=event.req_str("userId"),
        action_name=event.text("actionName"),
        component_id=event.text("sourceComponentId"),
        form_context=context if isinstance(context, dict) else {},
        data=event.data,
    )


_Parser = Callable[[dict[str, Any], _Obj], Event]

_PARSERS: dict[str, _Parser] = {
    MESSAGE_NORMAL: _message_event,
    MESSAGE_INSTRUCTION: _message_event,
    BOT_FOLLOWED: _follow_event,
    BOT_UNFOLLOWED: _follow_event,
    GROUP_JOIN: _group_member_event,
    GROUP_LEAVE: _group_member_event,
    BUTTON_REPORT_INLINE: _button_event,
    SHORTCUT_MENU: _shortcut_event,
    BOT_SETTING: _setting_event,
    A2UI_BUTTON_REPORT: _a2ui_event,
}


def parse_event(data: Mapping[str, Any] | bytes | str) -> Event:
    """Parse one webhook body into the event class for its ``header.eventType``.

    Args:
        data: The body as bytes (must be UTF-8 JSON), a str, or an already
            decoded mapping.

    Returns:
        A :class:`MessageEvent`, :class:`FollowEvent`, :class:`GroupMemberEvent`,
        :class:`ButtonReportEvent`, :class:`ShortcutMenuEvent`, or an
        :class:`UnknownEvent` for any other event type.

    Raises:
        EventParseError: the body is not UTF-8, not JSON, not an object, or a
            required field is missing or has the wrong type; the message names
            the field, e.g. ``event.sender.senderId: missing``.
        TypeError: ``data`` is none of the accepted types.
    """
    root = _Obj(_load(data), "")
    header = root.obj("header")
    event_type = header.req_str("eventType")
    base: dict[str, Any] = {
        "event_id": header.req_str("eventId", routing=False),
        "event_type": event_type,
        "event_time": header.req_int("eventTime"),
        "version": root.text("version", "1.0"),
        "raw": root.data,
    }
    parser = _PARSERS.get(event_type)
    if parser is None:
        return UnknownEvent(**base, data=root.data.get("event"))
    return parser(base, root.obj("event"))
