"""A real WebSocket chat server of the documented protocol, for tests, demos and small use.

``POST /chat/oauth/token`` with ``{"appKey", "appSecret", "userId"}`` answers
``{"code": 1, "data": {"token": …}}``; ``GET /chat?token=…`` upgrades to the WebSocket
(a bad token gets HTTP 401 and no upgrade). The server sets each frame's ``source`` from
the token (a forged one is replaced), sends ``single`` frames to every connection of the
``target`` and ``group`` frames to every member that sent ``join`` for it (``leave``
removes). Frames for a user with no connection wait, in order and bounded, until one
connects. A frame it cannot take gets ``{"type": "error", "msg": {"content": reason}}``
and the connection stays open; every frame it took with a ``msg.msgId`` gets
``{"type": "ack", "msg": {"msgId": …}}``. The final frame of a streamed reply (and any
whole message) is idempotent by ``(source, msgId)``: a repeat is acknowledged, not
delivered twice. ``GET /`` is a live page of the conversations, streamed replies
growing as they arrive.

Tokens are signed with the app secret (HMAC-SHA256) and carry their expiry, so a
restarted server with the same secret accepts the tokens it issued before.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict, defaultdict, deque
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from .. import _validate as validate
from .._exceptions import FrameError
from .._lifecycle import Lifecycle, LifecycleState
from .._log import get_logger, safe
from ._protocol import STREAM, Frame, error_frame, parse_frame

__all__ = ["WsChatServer"]

log = get_logger("wschat")

DEFAULT_APP_KEY = "demo-key"
DEFAULT_APP_SECRET = "demo-secret"  # noqa: S105 - the documented default of a local server
TOKEN_TTL = 24 * 3600
_FINALS_KEPT = 10_000
_HISTORY_KEPT = 2_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WsChatServer(Lifecycle):
    """The chat service on ``host:port`` (0: a free port); ``async with`` runs it.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one (see :attr:`port` once started).
        app_key: The key ``/chat/oauth/token`` accepts.
        app_secret: Its secret; also signs the tokens.
        max_frame_bytes: Largest frame taken; a larger one gets an error frame.
        max_offline: Frames kept for a user with no connection; past it the sender
            gets an error frame for each refused one.
        token_ttl: Seconds a token stays valid.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        app_key: str = DEFAULT_APP_KEY,
        app_secret: str = DEFAULT_APP_SECRET,
        max_frame_bytes: int = 1024 * 1024,
        max_offline: int = 1000,
        token_ttl: float = TOKEN_TTL,
    ) -> None:
        self.host = validate.text("host", host)
        self.port = validate.port("port", port)
        self.app_key = validate.text("app_key", app_key)
        self._secret = validate.text("app_secret", app_secret).encode()
        self.max_frame_bytes = validate.integer("max_frame_bytes", max_frame_bytes, minimum=1024)
        self.max_offline = validate.integer("max_offline", max_offline, minimum=1)
        self.token_ttl = validate.seconds("token_ttl", token_ttl)
        self._connections: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._groups: dict[str, set[str]] = defaultdict(set)
        self._offline: dict[str, deque[str]] = defaultdict(deque)
        self._finals: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._history: deque[dict[str, Any]] = deque(maxlen=_HISTORY_KEPT)
        self._watchers: set[web.WebSocketResponse] = set()
        self._page_sends: set[asyncio.Future[None]] = set()
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"<WsChatServer {self.base_url} state={self.state.value}>"

    # -- addresses ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port``: the token API and the live page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """``ws://host:port/chat``: where clients connect (add ``?token=``)."""
        return self.base_url.replace("http://", "ws://", 1) + "/chat"

    # -- tokens -------------------------------------------------------------------------

    def issue_token(self, user_id: str | int) -> str:
        """A token for ``user_id`` (what ``/chat/oauth/token`` answers)."""
        uid = validate.text("user_id", str(user_id))
        payload = _b64(json.dumps({"u": uid, "e": int(time.time() + self.token_ttl)}).encode())
        sig = _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{sig}"

    def user_of(self, token: str) -> str | None:
        """The user a valid token names, or None (bad signature, expired, malformed)."""
        payload, _, sig = token.partition(".")
        want = _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())
        if not sig or not hmac.compare_digest(sig, want):
            return None
        try:
            data = json.loads(_unb64(payload))
            user, expires = str(data["u"]), float(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        return user if expires > time.time() else None

    # -- lifecycle ----------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The aiohttp application (to mount elsewhere, or run yourself)."""
        app = web.Application()
        app.router.add_post("/chat/oauth/token", self._token)
        app.router.add_get("/chat", self._chat)
        app.router.add_get("/", self._page)
        app.router.add_get("/_wschat/live", self._live)
        app.router.add_get("/_wschat/static/style.css", self._style)
        return app

    async def start(self) -> WsChatServer:
        """Start serving (again, after :meth:`stop`); returns self."""
        if self._runner is not None:
            return self
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._state = LifecycleState.OPEN
        log.info("wschat_server_started", url=self.url)
        return self

    async def stop(self) -> None:
        """Stop serving and drop every connection; :meth:`start` serves again on the same
        port (a restart: groups and queued frames are kept in this object). Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for site in list(runner.sites):  # no new connections while closing the open ones
            await site.stop()
        for ws in [*(w for conns in self._connections.values() for w in conns), *self._watchers]:
            await ws.close(code=1001, message=b"server going away")
        self._connections.clear()
        self._watchers.clear()
        await runner.cleanup()

    async def _open(self) -> None:
        await self.start()

    async def _close(self) -> None:
        await self.stop()

    # -- what it holds --------------------------------------------------------------------

    def online(self, user_id: str) -> int:
        """How many connections ``user_id`` has."""
        return len(self._connections.get(user_id, ()))

    def members(self, group: str) -> set[str]:
        """Who has joined ``group``."""
        return set(self._groups.get(group, ()))

    def queued(self, user_id: str) -> int:
        """Frames waiting for ``user_id`` to connect."""
        return len(self._offline.get(user_id, ()))

    # -- handlers -------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"code": 1002, "msg": "the body must be JSON"})
        if not isinstance(body, dict):
            return web.json_response({"code": 1002, "msg": "the body must be a JSON object"})
        key, secret, user = body.get("appKey"), body.get("appSecret"), body.get("userId")
        if user in (None, "") or isinstance(user, bool) or not isinstance(user, (str, int)):
            return web.json_response({"code": 1002, "msg": "userId is required"})
        good = (
            isinstance(key, str) and isinstance(secret, str)
            and hmac.compare_digest(key.encode(), self.app_key.encode())
            and hmac.compare_digest(secret.encode(), self._secret)
        )
        if not good:
            return web.json_response({"code": 1003, "msg": "appKey or appSecret is wrong"})
        return web.json_response(
            {"code": 1, "msg": "success", "data": {"token": self.issue_token(str(user))}}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        user = self.user_of(request.query.get("token", ""))
        if user is None:
            raise web.HTTPUnauthorized(
                text=json.dumps({"code": 1003, "msg": "missing, bad or expired token"}),
                content_type="application/json",
            )
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self.max_frame_bytes * 4)
        await ws.prepare(request)
        self._connections[user].add(ws)
        log.debug("wschat_connected", user=user)
        try:
            pending = self._offline.pop(user, None)
            while pending:
                await ws.send_str(pending.popleft())
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._take(user, ws, message.data)
                elif message.type is WSMsgType.BINARY:
                    await ws.send_str(error_frame("frames are JSON text, not binary").to_json())
        finally:
            self._connections[user].discard(ws)
            if not self._connections[user]:
                del self._connections[user]
            log.debug("wschat_disconnected", user=user)
        return ws

    async def _take(self, user: str, ws: web.WebSocketResponse, text: str) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > self.max_frame_bytes:
            await ws.send_str(error_frame(
                f"frame refused: over {self.max_frame_bytes} bytes").to_json())
            return
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            await ws.send_str(error_frame(f"frame refused: {exc}").to_json())
            return
        frame = frame.replace(source=user)  # the token says who sent it, not the frame
        assert frame.target is not None  # parse_frame requires it for client types
        if frame.type in ("join", "leave"):
            members = self._groups[frame.target]
            (members.add if frame.type == "join" else members.discard)(user)
            if not members:
                del self._groups[frame.target]
            await self._ack(ws, frame)
            return
        if frame.type == "group" and user not in self._groups.get(frame.target, ()):
            await ws.send_str(error_frame(
                f"join group {frame.target!r} before sending to it", frame.msg_id).to_json())
            return
        if frame.msg_type != STREAM and frame.msg_id is not None:
            key = (user, frame.msg_id)
            if key in self._finals:  # a repeat after a reconnect: already delivered
                await self._ack(ws, frame)
                return
            self._finals[key] = None
            if len(self._finals) > _FINALS_KEPT:
                self._finals.popitem(last=False)
        refused = await self._route(frame, ws)
        if refused:
            await ws.send_str(error_frame(refused, frame.msg_id).to_json())
        else:
            await self._ack(ws, frame)
        self._record(frame)

    async def _ack(self, ws: web.WebSocketResponse, frame: Frame) -> None:
        msg: dict[str, Any] = {"msgId": frame.msg_id} if frame.msg_id is not None else {}
        ack = Frame(type="ack", source=frame.source, target=frame.target,
                    msg_type=frame.msg_type, extra=frame.extra, msg=msg)
        await ws.send_str(ack.to_json())

    async def _route(self, frame: Frame, sender: web.WebSocketResponse) -> str | None:
        """Deliver ``frame``; a reason when it (or part of it) was refused."""
        assert frame.target is not None
        text = frame.to_json()
        users = [frame.target] if frame.type == "single" else sorted(self._groups[frame.target])
        refused = []
        for user in users:
            sockets = [ws for ws in self._connections.get(user, ()) if ws is not sender]
            if sockets:
                for ws in sockets:
                    if not ws.closed:
                        await ws.send_str(text)
            elif not self._connections.get(user):
                queue = self._offline[user]
                if len(queue) >= self.max_offline:
                    refused.append(user)
                else:
                    queue.append(text)
        if refused:
            log.warning("wschat_offline_queue_full", users=safe(",".join(refused)))
            return f"offline queue full for {', '.join(refused)} ({self.max_offline} frames)"
        return None

    # -- the live page --------------------------------------------------------------------

    def _record(self, frame: Frame) -> None:
        entry = frame.to_dict()
        self._history.append(entry)
        dead = []
        for ws in self._watchers:
            if ws.closed:
                dead.append(ws)
            else:  # in the background: a slow page must not hold up the chat
                task = asyncio.ensure_future(ws.send_str(json.dumps(entry, ensure_ascii=False)))
                self._page_sends.add(task)
                task.add_done_callback(self._page_sends.discard)
        self._watchers.difference_update(dead)

    async def _live(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        for entry in list(self._history):
            await ws.send_str(json.dumps(entry, ensure_ascii=False))
        self._watchers.add(ws)
        try:
            async for _ in ws:
                pass  # the page only listens
        finally:
            self._watchers.discard(ws)
        return ws

    async def _page(self, request: web.Request) -> web.Response:
        page = resources.files("yunhu_stream.wschat").joinpath("live.html").read_text("utf-8")
        return web.Response(text=page, content_type="text/html")

    async def _style(self, request: web.Request) -> web.Response:
        css = resources.files("yunhu_stream.emulator").joinpath("static").joinpath("style.css")
        return web.Response(text=css.read_text("utf-8"), content_type="text/css")
