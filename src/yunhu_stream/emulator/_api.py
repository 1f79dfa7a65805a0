"""The JSON endpoints: ``bot/send``, ``bot/edit``, ``bot/recall`` and ``GET bot/messages``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ._core import Core, envelope, parse_json
from ._faults import Fault
from ._store import StoredMessage

EMPTY_MSG = "消息内容不能为空"
NOT_FOUND = "消息不存在 (no such message in that chat)"
SEND_TYPES = ("text", "markdown", "html", "image", "file", "video")
EDIT_TYPES = ("text", "markdown", "html")
MEDIA_KEYS = {"image": "imageKey", "file": "fileKey", "video": "videoKey"}
MAX_PAGE = 1000


class Invalid(Exception):
    """A parameter is wrong; the message says which and what is accepted."""


def _chat(body: Mapping[str, Any], id_field: str, type_field: str) -> tuple[str, str]:
    chat_id = body.get(id_field)
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        chat_id = str(chat_id)
    if not isinstance(chat_id, str) or not chat_id:
        raise Invalid(f"{id_field}不能为空 ({id_field} must be a non-empty string)")
    chat_type = body.get(type_field)
    if chat_type not in ("user", "group"):
        raise Invalid(
            f"{type_field}参数错误 ({type_field} must be 'user' or 'group', not {chat_type!r})"
        )
    return chat_type, chat_id


def _content_type(body: Mapping[str, Any], accepted: tuple[str, ...]) -> str:
    value = body.get("contentType")
    if value not in accepted:
        raise Invalid(
            f"contentType参数错误 (contentType must be one of {', '.join(accepted)}, not {value!r})"
        )
    return str(value)


def _buttons(value: object) -> list[list[dict[str, Any]]] | None:
    if value is None:
        return None
    shape = "buttons must be a list of rows, each a list of {text, actionType 1|2|3, url|value}"
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise Invalid(f"buttons参数错误 ({shape})")
    for row in value:
        for button in row:
            if (
                not isinstance(button, dict)
                or not isinstance(button.get("text"), str)
                or button.get("actionType") not in (1, 2, 3)
            ):
                raise Invalid(f"buttons参数错误 ({shape}; got {button!r})")
    return value


def _at(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise Invalid("at参数错误 (at must be a list of user id strings)")
    return value


def _content(body: Mapping[str, Any], content_type: str) -> tuple[str, dict[str, Any]]:
    content = body.get("content")
    if not isinstance(content, dict):
        raise Invalid('content参数错误 (content must be an object like {"text": ...})')
    if content_type in MEDIA_KEYS:
        key = MEDIA_KEYS[content_type]
        if not isinstance(content.get(key), str) or not content[key]:
            raise Invalid(f"content.{key}不能为空 ({content_type} messages need content.{key})")
        return "", {key: content[key]}
    text = content.get("text")
    if not isinstance(text, str):
        raise Invalid("content.text参数错误 (content.text must be a string)")
    if not text:
        raise Invalid(EMPTY_MSG)
    return text, {}


def _send(core: Core, body: Mapping[str, Any]) -> web.Response:
    chat_type, chat_id = _chat(body, "recvId", "recvType")
    content_type = _content_type(body, SEND_TYPES)
    text, extra = _content(body, content_type)
    content = body["content"]
    parent = body.get("parentId")
    if parent is not None and not isinstance(parent, str):
        raise Invalid("parentId参数错误 (parentId must be a message id string)")
    message = StoredMessage(
        core.new_msg_id(),
        chat_type,
        chat_id,
        content_type,
        text,
        core.bot_id,
        core.bot_nickname,
        buttons=_buttons(content.get("buttons")),
        at=_at(content.get("at")),
        parent_id=parent or None,
        extra=extra,
    )
    core.store.add(message)
    return envelope(
        1,
        "success",
        {
            "messageInfo": {
                "msgId": message.msg_id,
                "recvId": chat_id,
                "recvType": chat_type,
            }
        },
    )


def _find(core: Core, msg_id: object, chat_type: str, chat_id: str) -> StoredMessage:
    if not isinstance(msg_id, str) or not msg_id:
        raise Invalid("msgId不能为空 (msgId must be a non-empty string)")
    message = core.store.get(msg_id)
    if (
        message is None
        or message.recalled
        or message.chat_type != chat_type
        or message.chat_id != chat_id
    ):
        raise LookupError(NOT_FOUND)
    return message


def _edit(core: Core, body: Mapping[str, Any]) -> web.Response:
    chat_type, chat_id = _chat(body, "recvId", "recvType")
    content_type = _content_type(body, EDIT_TYPES)
    text, _ = _content(body, content_type)
    content = body["content"]
    buttons, at = _buttons(content.get("buttons")), _at(content.get("at"))
    message = _find(core, body.get("msgId"), chat_type, chat_id)
    message.text, message.content_type = text, content_type
    message.buttons, message.at = buttons, at
    message.edits += 1
    core.store.changed(message)
    return envelope(1, "success", {"successCount": 1})


def _recall(core: Core, body: Mapping[str, Any]) -> web.Response:
    chat_type, chat_id = _chat(body, "chatId", "chatType")
    message = _find(core, body.get("msgId"), chat_type, chat_id)
    message.recalled = True
    core.store.changed(message)
    return envelope(1, "success", None)


def _count(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_PAGE:
        raise Invalid(
            f"{name}参数错误 ({name} must be an integer from 0 to {MAX_PAGE}, not {raw!r})"
        )
    return int(raw)


def _messages(core: Core, query: Mapping[str, str]) -> web.Response:
    chat_type, chat_id = _chat(query, "chat-id", "chat-type")
    before, after = _count(query, "before"), _count(query, "after")
    if before is None and after is None:
        raise Invalid("before与after至少提供一个 (give before=N and/or after=N)")
    history = core.store.chat(chat_type, chat_id, include_recalled=False)
    anchor_id = query.get("message-id")
    if anchor_id:
        anchor = next((i for i, m in enumerate(history) if m.msg_id == anchor_id), None)
        if anchor is None:
            raise LookupError(NOT_FOUND)
        older = history[max(0, anchor - (before or 0)) : anchor]
        newer = history[anchor + 1 : anchor + 1 + (after or 0)]
        picked = older + newer
    else:
        picked = history[len(history) - before :] if before else []
    return envelope(1, "success", {"list": [m.to_item() for m in picked], "total": len(picked)})


def _endpoint(
    name: str, apply: Callable[[Core, Mapping[str, Any]], web.Response], *, from_query: bool = False
) -> Callable[[Core, web.Request, Fault | None], Any]:
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


def _apply(
    apply: Callable[[Core, Mapping[str, Any]], web.Response], core: Core, params: Mapping[str, Any]
) -> web.Response:
    try:
        return apply(core, params)
    except Invalid as exc:
        return envelope(1002, str(exc))
    except LookupError as exc:
        return envelope(-1, str(exc.args[0]))


send = _endpoint("send", _send)
edit = _endpoint("edit", _edit)
recall = _endpoint("recall", _recall)
messages = _endpoint("messages", _messages, from_query=True)
