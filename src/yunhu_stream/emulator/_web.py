"""The emulator's live web page, and the JSON and SSE endpoints it reads.

Routes (none of them needs or shows the bot token):

- ``GET /``: the page (static files embedded in the package, no network needed).
- ``GET /_emulator/static/{name}``: its script and style sheet.
- ``GET /_emulator/chats``: every chat with a summary of its newest message.
- ``GET /_emulator/chats/{type}/{id}``: one chat's messages, oldest first, recalled ones
  included and marked.
- ``GET /_emulator/media/{key}``: an uploaded image, video or file, as uploaded.
- ``GET /_emulator/events``: Server-Sent Events; a ``hello`` event on connect, then a
  ``message`` event ``{"message": snapshot, "chat": summary}`` after any change to a
  message (new, grown by a chunk, finished, edited, recalled). Changes
  faster than the client reads are coalesced per message, so a slow page never makes
  the emulator buffer without bound.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from aiohttp import web

from ._core import Core
from ._store import StoredMessage

STATIC_FILES = {
    "app.js": "text/javascript",
    "markdown.js": "text/javascript",
    "style.css": "text/css",
}
MAX_TIMELINE = 2000
"""At most this many chunks (the newest) are listed in a message's timeline."""
HEARTBEAT = 15.0
"""Seconds between SSE comments that keep proxies and dead-peer detection honest."""


def snapshot(message: StoredMessage) -> dict[str, Any]:
    """A message as the page shows it, with its chunk timeline if it was streamed."""
    media = next(
        (message.extra[k] for k in ("imageKey", "videoKey", "fileKey") if k in message.extra),
        None,
    )
    data: dict[str, Any] = {
        "msgId": message.msg_id,
        "senderType": message.sender_type,
        "senderId": message.sender_id,
        "senderNickname": message.sender_nickname,
        "chatType": message.chat_type,
        "chatId": message.chat_id,
        "contentType": message.content_type,
        "text": message.text,
        "buttons": message.buttons,
        "at": message.at,
        "parentId": message.parent_id,
        "streamed": message.streamed,
        "streaming": message.streaming,
        "incomplete": message.incomplete,
        "edits": message.edits,
        "recalled": message.recalled,
        "sendTime": message.send_time,
        # uploaded media is served here; a key never uploaded has nothing to show
        "mediaUrl": f"/_emulator/media/{media}" if media and len(message.extra) > 1 else None,
        "stream": None,
    }
    record = message.stream
    if record is not None:
        chunks = record.chunks[-MAX_TIMELINE:]
        data["stream"] = {
            "startedWall": round(record.started_wall * 1000, 3),
            "chunkCount": len(record.chunks),
            "bytes": record.nbytes,
            "chunks": [[round((c.t - record.started) * 1000, 3), len(c.data)] for c in chunks],
            "completed": record.completed,
            "aborted": record.aborted,
            "code": record.code,
        }
    return data


def _summary(core: Core, chat_type: str, chat_id: str) -> dict[str, Any]:
    messages = core.store.chat(chat_type, chat_id, include_recalled=True)
    visible = [m for m in messages if not m.recalled]
    last = visible[-1] if visible else None
    return {
        "type": chat_type,
        "id": chat_id,
        "key": f"{chat_type}:{chat_id}",
        "count": len(visible),
        "streaming": any(m.streaming for m in visible),
        "lastText": last.text[:120] if last else "",
        "lastTime": last.send_time if last else None,
    }


def add_page_routes(app: web.Application, core: Core) -> None:
    """Add ``/``, ``/_emulator/static/…``, ``/_emulator/chats…`` and ``/_emulator/events``."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=_read("index.html"), content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound(text=f"no static file {name!r}")
        return web.Response(text=_read(name), content_type=STATIC_FILES[name], charset="utf-8")

    async def chats(_request: web.Request) -> web.Response:
        items = [_summary(core, t, i) for t, i in core.store.chat_keys()]
        return web.json_response({"chats": items}, dumps=_dumps)

    async def chat(request: web.Request) -> web.Response:
        chat_type, chat_id = request.match_info["type"], request.match_info["id"]
        if chat_type not in ("user", "group"):
            raise web.HTTPNotFound(text="chat type must be 'user' or 'group'")
        messages = core.store.chat(chat_type, chat_id, include_recalled=True)
        return web.json_response(
            {
                "chat": _summary(core, chat_type, chat_id),
                "messages": [snapshot(m) for m in messages],
            },
            dumps=_dumps,
        )

    async def events(request: web.Request) -> web.StreamResponse:
        return await _sse(core, request)

    async def media(request: web.Request) -> web.Response:
        upload = core.uploads.get(request.match_info["key"])
        if upload is None:
            raise web.HTTPNotFound(text="no such upload")
        return web.Response(body=upload.data, content_type=upload.mime)

    app.router.add_get("/", index)
    app.router.add_get("/_emulator/static/{name}", static)
    app.router.add_get("/_emulator/chats", chats)
    app.router.add_get("/_emulator/chats/{type}/{id}", chat)
    app.router.add_get("/_emulator/events", events)
    app.router.add_get("/_emulator/media/{key}", media)


async def _sse(core: Core, request: web.Request) -> web.StreamResponse:
    stopping = core.stopping
    dirty: dict[str, None] = {}  # an ordered set of msg ids changed since the last send
    wake = asyncio.Event()

    def on_change(message: StoredMessage) -> None:
        dirty[message.msg_id] = None
        wake.set()

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    unsubscribe = core.store.subscribe(on_change)
    try:
        await response.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
        while not stopping.is_set():
            await _wait_any(wake, stopping, HEARTBEAT)
            if not wake.is_set():
                await response.write(b": ping\n\n")
                continue
            wake.clear()
            changed = list(dirty)
            dirty.clear()
            for msg_id in changed:
                message = core.store.get(msg_id)
                if message is not None:
                    chat = _summary(core, message.chat_type, message.chat_id)
                    payload = _dumps({"message": snapshot(message), "chat": chat})
                    await response.write(f"event: message\ndata: {payload}\n\n".encode())
    except ConnectionError:
        pass  # the page went away
    finally:
        unsubscribe()
    return response


async def _wait_any(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _read(name: str) -> str:
    static = resources.files("yunhu_stream.emulator").joinpath("static")
    return static.joinpath(name).read_text("utf-8")
