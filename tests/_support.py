"""Helpers shared across the test packages."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

import yunhu_stream
from tests._paths import ROOT
from yunhu_stream.emulator import Emulator, StreamRecord


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


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process: it imports the yunhu_stream this run
    imports (under mutmut, the mutated copy) and the tests package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_PACKAGE.parent), str(ROOT)]
        + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


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
    return not [
        t for t in asyncio.all_tasks() if t is not current and not t.done() and _is_client_task(t)
    ]


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_app(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, str]:
    """Run ``app`` on a free loopback port: its runner (to clean up) and ``http://127.0.0.1:PORT``.

    The one loopback server of the test suite; ``runner_options`` go to ``web.AppRunner``
    (``access_log=None`` unless given).
    """
    runner_options.setdefault("access_log", None)
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@asynccontextmanager
async def serving(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """``serve_app`` as a context: yields the base URL, cleans the server up on exit."""
    runner, url = await serve_app(app, **runner_options)
    try:
        yield url
    finally:
        await runner.cleanup()


def emulator_bot(emu: Emulator, **options: Any) -> yunhu_stream.Bot:
    """A Bot on ``emu`` with no rate limit and fast recovery edits; ``options`` override."""
    settings: dict[str, Any] = {"base_url": emu.base_url, "rate_limit": None,
                                "edit_interval": 0.02, **options}
    return yunhu_stream.Bot(emu.token, **settings)
