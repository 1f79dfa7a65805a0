"""Which streams a piece of work opened, so that whoever runs it can finish them.

The webhook dispatcher runs each handler with a fresh set in :data:`OPEN_STREAMS`;
:meth:`Bot.stream` adds every Streamer it creates to the set of the running context
(tasks the handler starts inherit it). At shutdown the dispatcher closes the streams of
handlers that are still running, so their replies end with what was written instead of
being cut off.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._streamer import Streamer

OPEN_STREAMS: ContextVar[set[Streamer] | None] = ContextVar(
    "yunhu_stream_open_streams", default=None
)


def track(streamer: Streamer) -> None:
    """Record ``streamer`` in the running context's set, if it has one."""
    streams = OPEN_STREAMS.get()
    if streams is not None:
        streams.add(streamer)
