"""Helpers shared by the streamer and fault tests."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import yunhu_stream
from yunhu_stream.emulator import StreamRecord


def http_chunks(record: StreamRecord) -> list[bytes]:
    """The request's HTTP chunks, reassembled from the pieces the server read."""
    out, current = [], b""
    for piece in record.chunks:
        current += piece.data
        if piece.http_chunk_end:
            out.append(current)
            current = b""
    return out


_PACKAGE = Path(yunhu_stream.__file__).parent
_SERVERS = (_PACKAGE / "emulator", _PACKAGE / "testing")


def _is_client_task(task: asyncio.Task[object]) -> bool:
    """A task running the library's client code (a stream's delivery, a body writer)."""
    if task.get_name().startswith("yunhu-stream"):
        return True
    aiohttp_client = False
    for frame in task.get_stack():
        path = Path(frame.f_code.co_filename)
        if path.name in ("client_reqrep.py", "client.py") and "aiohttp" in path.parts:
            aiohttp_client = True
        if path.is_relative_to(_PACKAGE) and not any(path.is_relative_to(s) for s in _SERVERS):
            return True
    return aiohttp_client


def no_client_tasks() -> bool:
    """No client-side task is left: only the test runner's and the servers' may remain."""
    current = asyncio.current_task()
    return not [t for t in asyncio.all_tasks()
                if t is not current and not t.done() and _is_client_task(t)]


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
