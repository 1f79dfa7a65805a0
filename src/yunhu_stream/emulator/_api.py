"""The JSON message endpoints: ``bot/send``, ``bot/batch_send``, ``bot/edit``, ``bot/recall``
and ``GET bot/messages``, plus the request plumbing every JSON endpoint shares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ._core import Core, envelope, parse_json
from ._faults import Fault
from ._media import FETCH_FAILED, KEY_FIELDS
from ._store import StoredMessage
from ._world import Refused

EMPTY_MSG = "消息内容不能为空"
NOT_FOUND = "消息不存在或无权限修改 (no message of the bot's with that msgId in that chat)"
SEND_TYPES = ("text", "markdown", "html", "image", "file", "video")
EDIT_TYPES = ("text", "markdown", "html", "image", "file")
NO_EFFECT_EDIT_TYPES = ("image", "file")  # documented as accepted, without effect
MAX_PAGE = 1000

Params = Mapping[str, Any]


class Invalid(Exception):
    """A parameter is wrong; the message says which and what is accepted."""


def chat_of(body: Params, id_field: str, type_field: str) -> tuple[str, str]:
    """The ``(type, id)`` of the chat named by two fields of ``body``.

    Raises:
        Invalid: for a missing id or a type other than user/group.
    """
    chat_id = body.get(id_field)
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        chat_id = str(chat_id)
    if not isinstance(chat_id, str) or not chat_id:
        raise Invalid(f"{id_field}不能为空 ({id_field} must be a non-empty string)")
    chat_type = body.get(type_field)
    if chat_type not in ("user", "group"):
        raise Invalid(
            f"{type_field}取值错误，取值仅支持group、user "
            f"({type_field} must be 'user' or 'group', not {chat_type!r})"
        )
    return chat_type, chat_id


def content_type_of(body: Params, accepted: tuple[str, ...]) -> str:
    """``body["contentType"]`` if it is one of ``accepted``.

    Raises:
        Invalid: otherwise, listing what is accepted.
    """
    value = body.get("contentType")
    if value not in accepted:
        raise Invalid(
            f"contentType取值错误 (contentType must be one of {', '.join(accepted)}, "
            f"not {value!r})"
        )
    return str(value)


def _buttons(value: object) -> list[list[dict[str, Any]]] | None:
    """Button rows; a flat list of buttons is one row (both shapes are documented)."""
    if value is None or value == []:
        return None
    shape = (
        "buttons must be a list of rows (lists) of buttons, or a flat list of buttons; "
        "a button is {text, actionType 1|2|3, url|value}"
    )
    if not isinstance(value, list):
        raise Invalid(f"buttons参数错误 ({shape})")
    if all(isinstance(item, dict) for item in value):
        rows = [value]
    elif all(isinstance(item, list) for item in value):
        rows = value
    else:
        raise Invalid(f"buttons参数错误 ({shape}; rows and buttons are mixed)")
    for row in rows:
        for button in row:
            if (
                not isinstance(button, dict)
                or not isinstance(button.get("text"), str)
                or button.get("actionType") not in (1, 2, 3)
            ):
                raise Invalid(f"buttons参数错误 ({shape}; got {button!r})")
    return rows


def _at(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise Invalid("at参数错误 (at must be a list of user id strings)")
    return value


def _content(core: Core, body: Params, content_type: str) -> tuple[str, dict[str, Any]]:
    """The text and the extra content fields (media keys) of a message to create."""
    content = body.get("content")
    if not isinstance(content, dict):
        raise Invalid('content参数错误 (content must be an object like {"text": ...})')
    if content_type in KEY_FIELDS:
        field = KEY_FIELDS[content_type]
        key = content.get(field)
        if not isinstance(key, str) or not key:
            raise Invalid(f"content.{field}不能为空 ({content_type} messages need content.{field})")
        upload = core.uploads.get(key)
        if upload is not None and upload.kind == content_type:
            return "", upload.content(core.url)
        if core.world.strict:
            raise Refused(
                -1, f"{FETCH_FAILED[content_type]} (no {content_type} uploaded as {key!r})"
            )
        return "", {field: key}
    text = content.get("text")
    if not isinstance(text, str):
        raise Invalid("content.text参数错误 (content.text must be a string)")
    if not text:
        raise Invalid(EMPTY_MSG)
    return text, {}


class _Draft:
    """A validated message body, ready to become a message in any number of chats."""

    def __init__(self, core: Core, body: Params) -> None:
        self.content_type = content_type_of(body, SEND_TYPES)
        self.text, self.extra = _content(core, body, self.content_type)
        content = body["content"]
        self.buttons, self.at = _buttons(content.get("buttons")), _at(content.get("at"))
        parent = body.get("parentId")
        if parent is not None and not isinstance(parent, str):
            raise Invalid("parentId参数错误 (parentId must be a message id string)")
        self.parent_id = parent or None

    def post(self, core: Core, chat_type: str, chat_id: str) -> dict[str, str]:
        """Add the message to one chat; its ``messageInfo``."""
        message = StoredMessage(
            core.new_msg_id(),
            chat_type,
            chat_id,
            self.content_type,
            self.text,
            core.bot_id,
            core.bot_nickname,
            buttons=self.buttons,
            at=self.at,
            parent_id=self.parent_id,
            extra=dict(self.extra),
        )
        core.store.add(message)
        return {"msgId": message.msg_id, "recvId": chat_id, "recvType": chat_type}


def _send(core: Core, body: Params) -> web.Response:
    chat_type, chat_id = chat_of(body, "recvId", "recvType")
    draft = _Draft(core, body)
    core.world.check_reach(chat_type, chat_id)
    return envelope(1, "success", {"messageInfo": draft.post(core, chat_type, chat_id)})


def _batch_send(core: Core, body: Params) -> web.Response:
    ids = body.get("recvIds")
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, (str, int)) and not isinstance(i, bool) and str(i) for i in ids)
    ):
        raise Invalid("recvIds参数错误 (recvIds must be a non-empty list of id strings)")
    chat_type, _ = chat_of({"recvId": str(ids[0]), "recvType": body.get("recvType")},
                           "recvId", "recvType")
    draft = _Draft(core, body)
    sent = []
    for chat_id in dict.fromkeys(str(i) for i in ids):
        try:
            core.world.check_reach(chat_type, chat_id)
        except Refused:
            continue  # strict mode: left out of successList, as YunHu does for each failure
        sent.append(draft.post(core, chat_type, chat_id))
    return envelope(1, "success", {"successCount": len(sent), "successList": sent})


def _find(core: Core, msg_id: object, chat_type: str, chat_id: str) -> StoredMessage:
    if not isinstance(msg_id, str) or not msg_id:
        raise Invalid("msgId不能为空 (msgId must be a non-empty string)")
    message = core.store.get(msg_id)
    if (
        message is None
        or message.recalled
        or message.sender_type != "bot"
        or message.chat_type != chat_type
        or message.chat_id != chat_id
    ):
        raise LookupError(NOT_FOUND)
    return message


def _edit(core: Core, body: Params) -> web.Response:
    chat_type, chat_id = chat_of(body, "recvId", "recvType")
    content_type = content_type_of(body, EDIT_TYPES)
    if content_type in NO_EFFECT_EDIT_TYPES:
        if not isinstance(body.get("content"), dict):
            raise Invalid("content参数错误 (content must be an object)")
        _find(core, body.get("msgId"), chat_type, chat_id)
        return envelope(1, "success", {"successCount": 1})
    text, _ = _content(core, body, content_type)
    content = body["content"]
    buttons, at = _buttons(content.get("buttons")), _at(content.get("at"))
    message = _find(core, body.get("msgId"), chat_type, chat_id)
    message.text, message.content_type = text, content_type
    message.buttons, message.at = buttons, at
    message.edits += 1
    core.store.changed(message)
    return envelope(1, "success", {"successCount": 1})


def _recall(core: Core, body: Params) -> web.Response:
    chat_type, chat_id = chat_of(body, "chatId", "chatType")
    message = _find(core, body.get("msgId"), chat_type, chat_id)
    message.recalled = True
    core.store.changed(message)
    return envelope(1, "success")


def _count(query: Params, name: str) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return 0
    if not raw.isdigit() or int(raw) > MAX_PAGE:
        raise Invalid(
            f"{name}参数错误 ({name} must be an integer from 0 to {MAX_PAGE}, not {raw!r})"
        )
    return int(raw)


def _messages(core: Core, query: Params) -> web.Response:
    chat_type, chat_id = chat_of(query, "chat-id", "chat-type")
    before, after = _count(query, "before"), _count(query, "after")
    core.world.check_reach(chat_type, chat_id)
    history = core.store.chat(chat_type, chat_id, include_recalled=False)
    anchor_id = query.get("message-id")
    if anchor_id:
        anchor = next((i for i, m in enumerate(history) if m.msg_id == anchor_id), None)
        if anchor is None:
            raise LookupError(f"消息不存在 (no message {anchor_id!r} in that chat)")
        picked = history[max(0, anchor - before) : anchor + 1 + after]
    else:
        picked = history[max(0, len(history) - before) :] if before else []
    items = [m.to_item() for m in reversed(picked)]  # newest first, as YunHu lists them
    return envelope(1, "success", {"list": items, "total": len(items)})


Apply = Callable[[Core, Params], web.Response]


def json_endpoint(
    name: str, apply: Apply, *, from_query: bool = False
) -> Callable[[Core, web.Request, Fault | None], Any]:
    """A handler for endpoint ``name``: gate, read the body, ``apply``, then late faults.

    ``apply`` raises :class:`Invalid` (answered ``1002``), :class:`~._world.Refused`
    (its code) or :class:`LookupError` (``-1``).
    """

    async def handler(core: Core, request: web.Request, fault: Fault | None) -> web.Response:
        early = core.gate(request, name, fault)
        if early is not None:
            return early
        raw = bytearray()
        await core.read_body(request, fault, lambda chunk: raw.extend(chunk.data))
        if from_query:
            response = _apply(apply, core, request.query)
        else:
            body = parse_json(bytes(raw))
            response = (
                envelope(1002, body.error)
                if body.error is not None
                else _apply(apply, core, body.value)
            )
        late = await core.finish(fault)
        return late if late is not None else response

    return handler


def _apply(apply: Apply, core: Core, params: Params) -> web.Response:
    try:
        return apply(core, params)
    except Invalid as exc:
        return envelope(1002, str(exc))
    except Refused as exc:
        return envelope(exc.code, exc.msg)
    except LookupError as exc:
        return envelope(-1, str(exc.args[0]))


send = json_endpoint("send", _send)
batch_send = json_endpoint("batch_send", _batch_send)
edit = json_endpoint("edit", _edit)
recall = json_endpoint("recall", _recall)
messages = json_endpoint("messages", _messages, from_query=True)
