"""The live web page of the emulator and the JSON/SSE endpoints it uses."""

from __future__ import annotations

from aiohttp import web

from ._core import Core


def add_page_routes(app: web.Application, core: Core) -> None:
    """Add ``/``, ``/_emulator/chats…`` and ``/_emulator/events`` to ``app``."""
