"""Which handler answers which path, and the JSON envelope for every path that has none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _api, _boards, _webapi
from ._core import Core, envelope
from ._media import upload
from ._stream import send_stream

API_PREFIX = "/open-apis/v1"

# endpoint name (as in faults and emu.requests) → (method, path under API_PREFIX, handler)
API_ROUTES = {
    "send-stream": ("POST", "/bot/send-stream", send_stream),
    "send": ("POST", "/bot/send", _api.send),
    "batch_send": ("POST", "/bot/batch_send", _api.batch_send),
    "edit": ("POST", "/bot/edit", _api.edit),
    "recall": ("POST", "/bot/recall", _api.recall),
    "messages": ("GET", "/bot/messages", _api.messages),
    "board": ("POST", "/bot/board", _boards.board),
    "board-all": ("POST", "/bot/board-all", _boards.board_all),
    "board-dismiss": ("POST", "/bot/board-dismiss", _boards.board_dismiss),
    "board-all-dismiss": ("POST", "/bot/board-all-dismiss", _boards.board_all_dismiss),
    "image/upload": ("POST", "/image/upload", upload("image")),
    "video/upload": ("POST", "/video/upload", upload("video")),
    "file/upload": ("POST", "/file/upload", upload("file")),
}
WEB_ROUTES = {
    "web/bot-info": ("POST", "/bot/bot-info", _webapi.bot_info),
    "web/user-homepage": ("GET", "/user/homepage", _webapi.user_homepage),
    "web/group-info": ("POST", "/group/group-info", _webapi.group_info),
}


def add_api_routes(app: web.Application, core: Core) -> None:
    """The bot API under ``/open-apis/v1``, the web API stand-ins under ``/v1``, and
    JSON envelopes instead of aiohttp's text pages for unknown paths and methods."""
    for prefix, routes in ((API_PREFIX, API_ROUTES), (_webapi.WEB_PREFIX, WEB_ROUTES)):
        for endpoint, (method, path, handler) in routes.items():
            app.router.add_route(method, prefix + path, core.route(endpoint, handler))
    app.middlewares.append(_json_errors)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        problem = "接口不存在 (no such endpoint"
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        problem = f"请求方法错误 ({request.method} is not allowed; use {allowed}"
    response = envelope(-1, f"{problem}: {request.method} {request.path})")
    response.set_status(404 if problem.startswith("接口") else 405)
    return response
