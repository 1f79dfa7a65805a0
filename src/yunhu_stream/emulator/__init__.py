"""A local YunHu bot API for testing bots: ``from yunhu_stream.emulator import Emulator``.

The emulator is a real aiohttp server on loopback. It answers the bot API
(``bot/send-stream``, ``bot/send``, ``bot/batch_send``, ``bot/edit``, ``bot/recall``,
``GET bot/messages``, the uploads and the boards) like the real service, stands in for
the web API lookups real clients make, keeps each chat's history (a streamed message
grows as its chunks arrive), records every streamed request with its chunks and their
arrival times, injects faults on demand, plays users who talk to a bot through its
webhook, and serves a live web page of the chats. See ``docs/emulator.md``.
"""

from __future__ import annotations

from .._exceptions import WebhookError
from .._public import publish
from ._core import RequestRecord
from ._faults import ENDPOINTS, Fault, Faults
from ._media import Upload
from ._people import Delivery
from ._server import Emulator
from ._store import STREAM_TIP, Board, Chunk, StoredMessage, StreamRecord
from ._world import Group, User

__all__ = [
    "ENDPOINTS",
    "STREAM_TIP",
    "Board",
    "Chunk",
    "Delivery",
    "Emulator",
    "Fault",
    "Faults",
    "Group",
    "RequestRecord",
    "StoredMessage",
    "StreamRecord",
    "Upload",
    "User",
    "WebhookError",
]

publish(globals(), __all__)
