"""A local YunHu bot API for testing bots: ``from yunhu_stream.emulator import Emulator``.

The emulator is a real aiohttp server on loopback. It answers ``bot/send-stream``,
``bot/send``, ``bot/edit``, ``bot/recall`` and ``GET bot/messages`` like the real
service, keeps each chat's history (a streamed message grows as its chunks arrive),
records every streamed request with its chunks and their arrival times, injects faults
on demand, and serves a live web page of the chats. See ``docs/emulator.md``.
"""

from __future__ import annotations

from .._public import publish
from ._core import RequestRecord
from ._faults import ENDPOINTS, Fault, Faults
from ._server import Emulator
from ._store import STREAM_TIP, Chunk, StoredMessage, StreamRecord

__all__ = [
    "ENDPOINTS",
    "STREAM_TIP",
    "Chunk",
    "Emulator",
    "Fault",
    "Faults",
    "RequestRecord",
    "StoredMessage",
    "StreamRecord",
]

publish(globals(), __all__)
