"""What ``Bot.upload_image/video/file`` accept: a path, bytes, or a binary file object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Union

from ._exceptions import ConfigurationError

MiB = 1024 * 1024
LIMITS = {"image": 10 * MiB, "video": 20 * MiB, "file": 20 * MiB}
"""YunHu's documented size limit of each kind of upload, in bytes."""

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

# YunHu keeps an image's extension and wants it right (.jpg for JPEG); sniff the common ones.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png", "image/png"), (b"\xff\xd8\xff", ".jpg", "image/jpeg"),
    (b"GIF8", ".gif", "image/gif"), (b"RIFF", ".webp", "image/webp"),
)


def read_upload(kind: str, source: object) -> tuple[str, bytes, str]:
    """``(filename, data, mime)`` of an upload, checked against the documented limit.

    Raises:
        ConfigurationError: for another type of source, an empty one, or one over the
            limit (naming it); OSError if a path cannot be read.
    """
    limit = LIMITS[kind]
    name = ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.stat().st_size > limit:
            raise _too_big(kind, limit)
        name, data = path.name, path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif callable(getattr(source, "read", None)):
        data = source.read(limit + 1)  # type: ignore[attr-defined]
        if not isinstance(data, bytes):
            raise ConfigurationError(f"the {kind} file object must be opened in binary mode")
        name = os.path.basename(str(getattr(source, "name", "")))
    else:
        raise ConfigurationError(
            f"a {kind} upload is a path, bytes or a binary file object, "
            f"not {type(source).__name__}"
        )
    if len(data) > limit:
        raise _too_big(kind, limit)
    if not data:
        raise ConfigurationError(f"the {kind} to upload is empty")
    ext, mime = next(((e, m) for magic, e, m in _MAGIC if data.startswith(magic)),
                     (".bin", "application/octet-stream"))
    return name or f"{kind}{ext}", data, mime


def _too_big(kind: str, limit: int) -> ConfigurationError:
    return ConfigurationError(
        f"the {kind} is over YunHu's limit of {limit // MiB} MB ({limit} bytes)"
    )
