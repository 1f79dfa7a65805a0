"""Boards (看板): ``bot/board``, ``bot/board-all``, ``bot/board-dismiss`` and
``bot/board-all-dismiss``.

A board is a line of text the bot pins above a chat: for one member of a chat, for
the whole chat, or for everyone who uses the bot. ``expireTime`` is a Unix time in
seconds after which it is gone (0: never), as the official SDKs and adapters send it.
"""

from __future__ import annotations

from aiohttp import web

from ._api import Invalid, Params, chat_of, content_type_of, json_endpoint
from ._core import Core, envelope
from ._store import Board, Scope

BOARD_TYPES = ("text", "markdown", "html")
EMPTY_BOARD = "看板内容不能为空"


def _chat(body: Params) -> tuple[str, str]:
    # recvId/recvType are the deprecated spellings; the official Python SDK mixes them.
    return chat_of(
        {
            "chatId": body.get("chatId", body.get("recvId")),
            "chatType": body.get("chatType", body.get("recvType")),
        },
        "chatId",
        "chatType",
    )


def _member(body: Params) -> str | None:
    member = body.get("memberId")
    if member is None or member == "":
        return None
    if isinstance(member, int) and not isinstance(member, bool):
        return str(member)
    if not isinstance(member, str):
        raise Invalid("memberId参数错误 (memberId must be a user id string, or left out)")
    return member


def _board(body: Params, scope: Scope, chat: tuple[str, str] | None, member: str | None) -> Board:
    content_type = content_type_of(body, BOARD_TYPES)
    content = body.get("content")
    if not isinstance(content, str):
        raise Invalid("content参数错误 (content must be the board's text, a string)")
    if not content:
        raise Invalid(EMPTY_BOARD)
    expire = body.get("expireTime", 0)
    if expire is None:
        expire = 0
    if isinstance(expire, bool) or not isinstance(expire, int) or expire < 0:
        raise Invalid(
            "expireTime参数错误 (expireTime must be a Unix time in seconds, or 0 for never, "
            f"not {expire!r})"
        )
    chat_type, chat_id = chat if chat else (None, None)
    return Board(scope, content_type, content, expire, chat_type, chat_id, member)


def _set_board(core: Core, body: Params) -> web.Response:
    chat = _chat(body)
    member = _member(body)
    board = _board(body, "member" if member else "chat", chat, member)
    core.world.check_reach(*chat)
    core.boards.set(board)
    core.changes.notify()
    return envelope(1, "success")


def _set_board_all(core: Core, body: Params) -> web.Response:
    core.boards.set(_board(body, "all", None, None))
    core.changes.notify()
    return envelope(1, "success")


def _dismiss(core: Core, body: Params) -> web.Response:
    chat_type, chat_id = _chat(body)
    core.world.check_reach(chat_type, chat_id)
    core.boards.dismiss(chat_type, chat_id, _member(body))
    core.changes.notify()
    return envelope(1, "success")


def _dismiss_all(core: Core, _body: Params) -> web.Response:
    core.boards.dismiss(None, None, None)
    core.changes.notify()
    return envelope(1, "success")


board = json_endpoint("board", _set_board)
board_all = json_endpoint("board-all", _set_board_all)
board_dismiss = json_endpoint("board-dismiss", _dismiss)
board_all_dismiss = json_endpoint("board-all-dismiss", _dismiss_all)
