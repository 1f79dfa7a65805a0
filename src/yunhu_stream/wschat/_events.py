"""What ``WsChat.events()`` yields: messages, the pieces of streamed ones, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._types import Recipient
from ._protocol import Frame


def _reply_to(frame: Frame) -> Recipient:
    assert frame.source is not None
    assert frame.target is not None
    if frame.type == "group":
        return Recipient.group(frame.target)
    return Recipient.user(frame.source)


@dataclass(frozen=True, slots=True)
class WsMessage:
    """A whole message: a ``text`` (or custom ``msgType``) frame, or the final frame of
    a streamed reply (``streamed`` is True; ``content`` is the whole text).

    ``async with chat.stream(to=event)`` replies to it: in a one-to-one chat to its
    sender, in a group to the group.
    """

    chat_type: str  #: ``"single"`` or ``"group"``
    source: str  #: the sender (set by the server from the sender's token)
    target: str  #: the receiver: a user id, or the group id
    msg_type: str  #: ``"text"`` or a custom type (``"image"``, ``"voice"``, …)
    content: str  #: ``msg.content``: the text
    msg_id: str | None  #: ``msg.msgId``
    timestamp: Any  #: ``msg.timestamp`` as sent
    extra: Any  #: ``extra`` as sent
    streamed: bool  #: the end of a streamed reply
    frame: Frame  #: the frame itself

    @property
    def reply_recipient(self) -> Recipient:
        """Where a reply goes: ``user:SOURCE`` in a one-to-one chat, ``group:TARGET``."""
        return _reply_to(self.frame)

    @classmethod
    def from_frame(cls, frame: Frame) -> WsMessage:
        assert frame.source is not None
        assert frame.target is not None
        return cls(frame.type, frame.source, frame.target, frame.msg_type, frame.content,
                   frame.msg_id, frame.msg.get("timestamp"), frame.extra,
                   frame.done and isinstance(frame.extra, dict)
                   and frame.extra.get("streamed") is True, frame)


@dataclass(frozen=True, slots=True)
class WsStreamPiece:
    """One growing piece of a streamed reply (``msgType: "stream"``); the
    :class:`WsMessage` with the same ``msg_id`` ends it with the whole text."""

    chat_type: str  #: ``"single"`` or ``"group"``
    source: str
    target: str
    msg_id: str | None
    seq: int | None  #: ``extra.seq``: 0, 1, 2, … within the reply
    content: str  #: the new piece
    frame: Frame

    @property
    def reply_recipient(self) -> Recipient:
        return _reply_to(self.frame)


@dataclass(frozen=True, slots=True)
class WsErrorEvent:
    """The server refused a frame (``type: "error"``), or sent one this client cannot read
    (``raw`` holds it, cut to 300 characters). The connection stays up."""

    reason: str
    msg_id: str | None = None
    raw: str | None = None


WsEvent = WsMessage | WsStreamPiece | WsErrorEvent
"""Anything :meth:`WsChat.events` yields."""
