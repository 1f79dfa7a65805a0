"""State and request plumbing shared by every endpoint of the emulator.

One request goes: take its fault rule → answer a ``before_body`` fault → token check →
emulated rate limit → endpoint-specific validation → read the body (applying the
drop/slow/stall faults) → take effect → answer an ``after_body`` fault or never answer
→ success envelope.
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .._log import get_logger
from ._faults import NON_JSON_BODY, Fault, Faults
from ._store import Boards, Changes, ChatStore, Chunk, StreamRecord
from ._world import World

if TYPE_CHECKING:
    from ._media import Upload

log = get_logger("emulator")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request the emulator handled (``emu.requests``).

    Attributes:
        method: ``GET`` or ``POST``.
        endpoint: ``send-stream``, ``send``, ``edit``, ``recall`` or ``messages``.
        status: The HTTP status answered, None if the connection was dropped.
        code: The envelope ``code`` answered, None if there was no envelope.
        fault: The kind of fault applied, if any.
        t: ``time.monotonic()`` when it finished.
    """

    method: str
    endpoint: str
    status: int | None
    code: int | None
    fault: str | None
    t: float


class Dropped(Exception):
    """The connection was closed by a fault, or the client went away mid-body."""


class Core:
    """Everything the handlers share; owned by one :class:`~.Emulator`."""

    def __init__(
        self, *, token: str, bot_id: str, bot_nickname: str, rate_limit: int | None,
        strict: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot_nickname = bot_nickname
        self.rate_limit = rate_limit
        self.changes = Changes()
        self.store = ChatStore(self.changes)
        self.faults = Faults(self.changes)
        self.streams: list[StreamRecord] = []
        self.requests: list[RequestRecord] = []
        self.world = World(bot_id=bot_id, strict=strict)
        self.uploads: dict[str, Upload] = {}
        self.boards = Boards()
        self.url = ""  # the server root once started, for media URLs
        self.stopping = asyncio.Event()
        # The rate-limit window's clock; tests may swap in a frozen one.
        self.clock: Callable[[], float] = time.monotonic
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

    def new_msg_id(self) -> str:
        """A fresh message id shaped like YunHu's (32 hex digits)."""
        return uuid.uuid4().hex

    def token_ok(self, request: web.Request) -> bool:
        """True if the request carries this emulator's token."""
        given = request.query.get("token", "")
        return secrets.compare_digest(given.encode(), self.token.encode())

    def over_rate_limit(self, endpoint: str) -> bool:
        """Count a request against the per-endpoint limit; True if it is over it."""
        if self.rate_limit is None:
            return False
        now = self.clock()
        # YunHu counts the board calls together ("board"), every other endpoint on its own.
        window = self._windows["board" if endpoint.startswith("board") else endpoint]
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.rate_limit:
            return True
        window.append(now)
        return False

    def route(
        self,
        endpoint: str,
        handler: Callable[[Core, web.Request, Fault | None], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap an endpoint handler: give it its fault, log the outcome, handle drops."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            fault = self.faults.take(endpoint)
            try:
                response = await handler(self, request, fault)
            except Dropped:
                if request.transport is not None:
                    request.transport.close()
                self._record(request, endpoint, None, None, fault)
                log.debug(
                    "emulator_connection_dropped",
                    endpoint=endpoint,
                    fault=fault.kind if fault else None,
                )
                # Nobody will read this: the transport is closed, aiohttp discards it.
                return web.Response(status=500)
            code = response.code if isinstance(response, EnvelopeResponse) else None
            self._record(request, endpoint, response.status, code, fault)
            return response

        return wrapped

    def _record(
        self,
        request: web.Request,
        endpoint: str,
        status: int | None,
        code: int | None,
        fault: Fault | None,
    ) -> None:
        self.requests.append(
            RequestRecord(
                request.method,
                endpoint,
                status,
                code,
                fault.kind if fault else None,
                time.monotonic(),
            )
        )
        self.changes.notify()

    def gate(self, request: web.Request, endpoint: str, fault: Fault | None) -> web.Response | None:
        """The answer given before the body is read, if any (fault, token, rate limit)."""
        early = fault_response(fault, "before_body")
        if early is not None:
            return early
        if not self.token_ok(request):
            return envelope(1003, "非法token (invalid or missing token)")
        if self.over_rate_limit(endpoint):
            return envelope(1007, "请求太频繁 (over the emulated rate limit)")
        return None

    async def read_body(
        self, request: web.Request, fault: Fault | None, on_chunk: Callable[[Chunk], None]
    ) -> None:
        """Read the whole body, calling ``on_chunk`` per piece, applying body faults.

        Raises:
            Dropped: if a fault dropped the connection or the client went away.
        """
        kind = fault.kind if fault else None
        limit = fault.n_bytes if fault and kind == "drop_after" else None
        stall_at = fault.n_bytes if fault and kind == "stall" else None
        received = 0
        while True:
            if limit is not None and received >= limit:
                raise Dropped
            if fault and stall_at is not None and received >= stall_at:
                stall_at = None
                await self._stall(fault)
            try:
                data, _end = await request.content.readchunk()
            except (ConnectionError, aiohttp.ClientError, HttpProcessingError) as exc:
                raise Dropped from exc
            if not data:
                if request.content.at_eof():
                    return
                continue  # an empty marker at an HTTP chunk boundary
            if limit is not None and received + len(data) > limit:
                data = data[: limit - received]
            received += len(data)
            on_chunk(Chunk(data, time.monotonic(), time.time(), _end))
            if fault and kind == "slow_read":
                await asyncio.sleep(fault.delay)

    async def _stall(self, fault: Fault) -> None:
        waits = [
            asyncio.ensure_future(fault.released.wait()),
            asyncio.ensure_future(self.stopping.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=fault.seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if self.stopping.is_set():
            raise Dropped

    async def finish(self, fault: Fault | None) -> web.Response | None:
        """After the request took effect: an ``after_body`` fault answer, or never answer.

        Raises:
            Dropped: for ``never_answer``, once released or the emulator stops.
        """
        if fault is not None and fault.kind == "never_answer":
            await self._stall(fault)
            raise Dropped
        return fault_response(fault, "after_body")


class EnvelopeResponse(web.Response):
    """An HTTP 200 response with YunHu's ``{"code", "msg", "data"}`` envelope.

    Without ``data`` (errors, recall, boards) the envelope is ``{"code", "msg"}``, as
    YunHu answers those.
    """

    def __init__(self, code: int, msg: str, data: Any = None) -> None:
        body: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            body["data"] = data
        super().__init__(
            text=json.dumps(body, ensure_ascii=False), content_type="application/json"
        )
        self.code = code


def envelope(code: int, msg: str, data: Any = None) -> web.Response:
    """An HTTP 200 response with YunHu's envelope (see :class:`EnvelopeResponse`)."""
    return EnvelopeResponse(code, msg, data)


def fault_response(fault: Fault | None, when: str) -> web.Response | None:
    """The answer ``fault`` gives at moment ``when``, if it answers then."""
    if fault is None or fault.when != when:
        return None
    if fault.kind == "reject":
        return envelope(fault.code, fault.msg)
    if fault.kind == "http_status":
        return web.Response(status=fault.status, text=f"emulated HTTP {fault.status}")
    if fault.kind == "non_json":
        return web.Response(status=fault.status, text=NON_JSON_BODY, content_type="text/html")
    return None


@dataclass
class JsonBody:
    """A parsed JSON request body, or why it could not be parsed."""

    value: Any = None
    error: str | None = None


def parse_json(raw: bytes) -> JsonBody:
    """Parse a JSON object body (an empty body is ``{}``); ``error`` says what was wrong."""
    if not raw.strip():
        return JsonBody(value={})
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return JsonBody(error="请求参数应为json格式 (the body must be a UTF-8 JSON object)")
    if not isinstance(value, dict):
        return JsonBody(error="请求体必须是JSON对象 (the body must be a JSON object)")
    return JsonBody(value=value)
