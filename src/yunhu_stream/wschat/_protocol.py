"""The frames of the WebSocket chat protocol, as this library reads it (docs/wschat.md).

Every frame is one JSON text frame ``{type, source, target, msgType, extra, msg}``:

* ``type``: ``single`` (one-to-one), ``group``, ``join``, ``leave`` from clients;
  ``error`` and ``ack`` from the server (this library's additions);
* ``source``/``target``: unique ids (strings or numbers; numbers are read as strings);
* ``msgType``: ``text`` by default; any other name is a custom type (``stream`` is the
  growing piece of a streamed reply);
* ``extra``: any JSON value;
* ``msg``: the data packet, ``{msgId, timestamp, content}`` (``content``: the text).

A streamed reply is frames sharing one ``msg.msgId``: ``msgType: "stream"`` with the new
piece in ``msg.content`` and ``extra: {"seq": n, "done": false}``, ended by one
``msgType: "text"`` frame holding the whole text with
``extra: {"seq": n, "done": true, "streamed": true}``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import FrameError

CLIENT_TYPES = ("single", "group", "join", "leave")
SERVER_TYPES = ("error", "ack")
STREAM = "stream"
TEXT = "text"


def _ident(name: str, value: object, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise FrameError(f"{name} is required: a non-empty string or number")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FrameError(f"{name} must be a string or number, not {type(value).__name__}")
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError(f"{name} is not valid Unicode (a lone surrogate)") from None
    if len(text) > 256:
        raise FrameError(f"{name} is longer than 256 characters")
    return text


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the protocol (see the module's docstring for the fields)."""

    type: str
    source: str | None = None
    target: str | None = None
    msg_type: str = TEXT
    extra: Any = None
    msg: dict[str, Any] = field(default_factory=dict)

    @property
    def msg_id(self) -> str | None:
        """``msg.msgId`` as a string, or None."""
        value = self.msg.get("msgId")
        return None if value is None else str(value)

    @property
    def content(self) -> str:
        """``msg.content`` (``""`` when absent)."""
        value = self.msg.get("content")
        return value if isinstance(value, str) else ""

    @property
    def seq(self) -> int | None:
        """``extra.seq`` of a streamed reply's frame, or None."""
        seq = self.extra.get("seq") if isinstance(self.extra, dict) else None
        return seq if isinstance(seq, int) and not isinstance(seq, bool) else None

    @property
    def done(self) -> bool:
        """Whether this frame ends a streamed reply (``extra.done`` is true)."""
        return isinstance(self.extra, dict) and self.extra.get("done") is True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.source is not None:
            out["source"] = self.source
        if self.target is not None:
            out["target"] = self.target
        out["msgType"] = self.msg_type
        if self.extra is not None:
            out["extra"] = self.extra
        out["msg"] = self.msg
        return out

    def to_json(self) -> str:
        """The frame as the JSON text sent on the wire."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def replace(self, **changes: Any) -> Frame:
        values = {
            "type": self.type, "source": self.source, "target": self.target,
            "msg_type": self.msg_type, "extra": self.extra, "msg": self.msg,
        }
        values.update(changes)
        return Frame(**values)


def parse_frame(text: str | bytes, *, server: bool = False) -> Frame:
    """Read one frame; ``server=True`` also accepts the server's ``error``/``ack`` types.

    Raises:
        FrameError: saying what is wrong and what is accepted.
    """
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"a frame must be a JSON object; this is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FrameError(f"a frame must be a JSON object, not {type(data).__name__}")
    accepted = CLIENT_TYPES + SERVER_TYPES if server else CLIENT_TYPES
    kind = data.get("type")
    if kind not in accepted:
        raise FrameError(f"type must be one of {', '.join(accepted)}, not {kind!r}")
    msg_type = data.get("msgType", TEXT)
    if not isinstance(msg_type, str) or not msg_type or len(msg_type) > 64:
        raise FrameError(f"msgType must be a non-empty string (default 'text'), not {msg_type!r}")
    msg = data.get("msg", {})
    if kind == "error" and isinstance(msg, str):
        msg = {"content": msg}
    if msg is None:
        msg = {}
    if not isinstance(msg, dict):
        raise FrameError(f"msg must be an object {{msgId, timestamp, content}}, not "
                         f"{type(msg).__name__}")
    if "msgId" in msg:
        msg = {**msg, "msgId": _ident("msg.msgId", msg["msgId"], required=True)}
    content = msg.get("content")
    if content is not None and not isinstance(content, str):
        raise FrameError(f"msg.content must be a string, not {type(content).__name__}")
    needs_target = kind in CLIENT_TYPES
    return Frame(
        type=str(kind),
        source=_ident("source", data.get("source"), required=False),
        target=_ident("target", data.get("target"), required=needs_target),
        msg_type=msg_type,
        extra=data.get("extra"),
        msg=msg,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def packet(msg_id: str, content: str) -> dict[str, Any]:
    """A ``msg`` data packet: ``{msgId, timestamp, content}``."""
    return {"msgId": msg_id, "timestamp": now_ms(), "content": content}


def error_frame(reason: str, msg_id: str | None = None) -> Frame:
    """The server's answer to a frame it refused; the connection stays open."""
    msg: dict[str, Any] = {"content": reason}
    if msg_id is not None:
        msg["msgId"] = msg_id
    return Frame(type="error", msg_type=TEXT, msg=msg)
