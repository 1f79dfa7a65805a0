"""yunhu-stream: stream chat messages into YunHu (云湖) as they are produced.

::

    async with Bot(token) as bot:
        async with bot.stream(to="user:7058262", content_type="markdown") as s:
            async for token in llm_reply:
                await s.write(token)
        print(s.message_info)
"""

from __future__ import annotations

from . import errors  # first: it names the exception classes' public module
from ._client import DEFAULT_BASE_URL, Bot, BotStatistics
from ._first_chunk import FirstChunk
from ._lifecycle import LifecycleState
from ._public import publish
from ._streamer import PipeResult, Streamer, StreamState, StreamStatistics
from ._types import MessageInfo, Recipient
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "Bot",
    "BotStatistics",
    "FirstChunk",
    "LifecycleState",
    "MessageInfo",
    "PipeResult",
    "Recipient",
    "StreamState",
    "StreamStatistics",
    "Streamer",
    "__version__",
    "errors",
]

publish(globals(), __all__)
