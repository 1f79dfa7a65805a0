"""The WebSocket single-chat protocol: a second destination for streamed replies.

::

    from yunhu_stream.wschat import WsChat

    token = await WsChat.fetch_token("http://127.0.0.1:8790", app_key="demo-key",
                                     app_secret="demo-secret", user_id="bot")
    async with WsChat("ws://127.0.0.1:8790/chat", token=token) as chat:
        async with chat.stream(to="user:2") as s:          # the same Streamer as YunHu's
            async for piece in llm_reply:
                await s.write(piece)                         # "stream" frames as it grows
        async for event in chat.events():                  # what others send
            ...

The receiver sees ``msgType: "stream"`` frames sharing one ``msg.msgId`` and then one
``msgType: "text"`` frame with the whole text, so a client that ignores custom types
still shows each answer exactly once. :mod:`yunhu_stream.wschat.server` is a real
server of the protocol (``yunhu-stream wschat-server``); docs/wschat.md has the wire
format.
"""

from __future__ import annotations

from .._exceptions import FrameError, FrameRefusedError
from .._public import publish
from ._app import WsChatApp
from ._client import WsChat
from ._events import WsErrorEvent, WsEvent, WsMessage, WsStreamPiece
from ._protocol import Frame, parse_frame
from .server import WsChatServer

__all__ = [
    "Frame",
    "FrameError",
    "FrameRefusedError",
    "WsChat",
    "WsChatApp",
    "WsChatServer",
    "WsErrorEvent",
    "WsEvent",
    "WsMessage",
    "WsStreamPiece",
    "parse_frame",
]

publish(globals(), __all__)
