"""Stand-ins for the three calls real clients make to YunHu's web API
(``chat-web-go.jwzhd.com``, unofficial and token-less): ``POST /v1/bot/bot-info``,
``GET /v1/user/homepage`` and ``POST /v1/group/group-info``.

nonebot-adapter-yunhu asks ``bot-info`` at startup and connects only bots it finds;
ErisPulse-YunhuAdapter and the nickname lookups ask the other two. Like the real web
API, an unknown id is answered ``code 1`` with an empty record (its id ``""``), which
both adapters read as "not found".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ._core import Core, envelope, fault_response, parse_json
from ._faults import Fault

WEB_PREFIX = "/v1"


def _bot(core: Core, bot_id: str) -> dict[str, Any]:
    known = bot_id == core.bot_id
    followers = sum(1 for u in core.world.users.values() if u.follows_bot)
    return {
        "id": 1 if known else 0,
        "botId": core.bot_id if known else "",
        "nickname": core.bot_nickname if known else "",
        "nicknameId": 0, "avatarId": 0, "avatarUrl": "",
        "token": "",  # the real answer carries no token either: it is never sent anywhere
        "link": "", "introduction": "", "createBy": "", "createTime": 0,
        "headcount": followers if known else 0, "private": 0, "uri": "",
    }


def _user(core: Core, user_id: str) -> dict[str, Any]:
    user = core.world.users.get(user_id)
    return {
        "userId": user.user_id if user else "",
        "nickname": user.nickname if user else "",
        "avatarUrl": (user.avatar_url or "") if user else "",
        "registerTime": 0, "registerTimeText": "", "onLineDay": 0,
        "continuousOnLineDay": 0, "medals": [], "isVip": 0,
    }


def _group(core: Core, group_id: str) -> dict[str, Any]:
    group = core.world.groups.get(group_id)
    return {
        "id": 1 if group else 0,
        "groupId": group.group_id if group else "",
        "name": group.name if group else "",
        "introduction": "", "createBy": "", "createTime": 0, "avatarId": 0, "avatarUrl": "",
        "headcount": len(group.members) + group.has_bot if group else 0,
        "readHistory": 1, "category": "", "uri": "",
    }


def _lookup(
    field: str, container: str, build: Callable[[Core, str], dict[str, Any]],
    *, from_query: bool,
) -> Callable[[Core, web.Request, Fault | None], Any]:
    async def handler(core: Core, request: web.Request, fault: Fault | None) -> web.Response:
        early = fault_response(fault, "before_body")
        if early is not None:
            return early
        params: Mapping[str, Any]
        if from_query:
            params = request.query
        else:
            body = parse_json(await request.read())
            if body.error is not None:
                return envelope(1002, body.error)
            params = body.value
        value = params.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            return envelope(1002, f"{field}不能为空 ({field} must be a non-empty id string)")
        late = await core.finish(fault)
        if late is not None:
            return late
        return envelope(1, "success", {container: build(core, value)})

    return handler


bot_info = _lookup("botId", "bot", _bot, from_query=False)
user_homepage = _lookup("userId", "user", _user, from_query=True)
group_info = _lookup("groupId", "group", _group, from_query=False)
