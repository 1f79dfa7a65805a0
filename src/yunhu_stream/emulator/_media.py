"""``POST image/upload``, ``video/upload`` and ``file/upload``: multipart uploads that
return a key a later ``bot/send`` of that content type carries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ._core import Core, Dropped, envelope
from ._faults import Fault

MiB = 1024 * 1024
LIMITS = {"image": 10 * MiB, "video": 20 * MiB, "file": 20 * MiB}
"""The documented size limit of each upload, in bytes."""
KEY_FIELDS = {"image": "imageKey", "video": "videoKey", "file": "fileKey"}
"""The ``data`` field an upload answers with, and the ``content`` field a send carries."""
FETCH_FAILED = {"image": "图片获取失败", "video": "视频获取失败", "file": "文件获取失败"}
"""YunHu's ``-1`` message for a media send it cannot fetch."""
_LABELS = {"image": "图片", "video": "视频", "file": "文件"}


@dataclass(frozen=True, eq=False)
class Upload:
    """One uploaded image, video or file (``emu.uploads[key]``).

    Attributes:
        kind: ``image``, ``video`` or ``file``.
        key: The key answered (``imageKey`` / ``videoKey`` / ``fileKey``).
        filename: The multipart part's file name (``""`` if it had none).
        mime: The part's ``Content-Type`` (``application/octet-stream`` if it had none).
        data: The bytes.
        t: ``time.monotonic()`` when it was stored.
    """

    kind: str
    key: str
    filename: str
    mime: str
    data: bytes = field(repr=False)
    t: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        """The number of bytes."""
        return len(self.data)

    def content(self, root: str) -> dict[str, Any]:
        """The ``content`` of a message showing it, with its URL on the emulator at ``root``."""
        url = f"{root}_emulator/media/{self.key}"
        if self.kind == "image":
            return {
                "imageKey": self.key, "imageUrl": url, "imageName": self.filename,
                "imageWidth": 0, "imageHeight": 0,
            }
        if self.kind == "video":
            return {"videoKey": self.key, "videoUrl": url, "videoDuration": 0}
        return {
            "fileKey": self.key, "fileUrl": url, "fileName": self.filename,
            "fileSize": self.size,
        }


def upload(kind: str) -> Callable[[Core, web.Request, Fault | None], Any]:
    """The handler of ``{kind}/upload``."""
    endpoint = f"{kind}/upload"

    async def handler(core: Core, request: web.Request, fault: Fault | None) -> web.Response:
        early = core.gate(request, endpoint, fault)
        if early is not None:
            return early
        try:
            response = await _receive(core, request, kind)
        except (ConnectionError, aiohttp.ClientError, HttpProcessingError) as exc:
            raise Dropped from exc
        late = await core.finish(fault)
        return late if late is not None else response

    return handler


async def _receive(core: Core, request: web.Request, kind: str) -> web.Response:
    limit, label = LIMITS[kind], _LABELS[kind]
    if not request.content_type.startswith("multipart/"):
        await request.read()
        return envelope(
            1002, f"请求应为multipart/form-data (upload the {kind} as the multipart field {kind!r})"
        )
    try:
        reader = await request.multipart()
        found: tuple[str, str, bytes] | None = None
        too_big = False
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name != kind or found or too_big:
                await part.release()
                continue
            data = bytearray()
            while chunk := await part.read_chunk():
                if len(data) + len(chunk) > limit:
                    too_big = True  # keep reading (and dropping) so the client gets the answer
                    data.clear()
                elif not too_big:
                    data.extend(chunk)
            if not too_big:
                mime = part.headers.get("Content-Type", "application/octet-stream")
                found = (part.filename or "", mime, bytes(data))
    except ValueError as exc:
        return envelope(1002, f"multipart请求体无效 (the multipart body is malformed: {exc})")
    if too_big:
        return envelope(
            1002, f"{label}大小不能超过{limit // MiB}MB (the {kind} is over {limit} bytes)"
        )
    if found is None or not found[2]:
        return envelope(
            1002, f"{kind}不能为空 (the multipart field {kind!r} must hold the {kind}'s bytes)"
        )
    key = uuid.uuid4().hex
    core.uploads[key] = Upload(kind, key, found[0], found[1], found[2])
    core.changes.notify()
    return envelope(1, "success", {KEY_FIELDS[kind]: key})
