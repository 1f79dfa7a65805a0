"""Value types shared by the client, the streamer and the emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ._exceptions import ConfigurationError

RecvType = Literal["user", "group"]
StreamContentType = Literal["text", "markdown"]
SendContentType = Literal["text", "markdown", "html"]
Delivery = Literal["stream", "stream+edit", "send"]

STREAM_CONTENT_TYPES: tuple[str, ...] = ("text", "markdown")
SEND_CONTENT_TYPES: tuple[str, ...] = ("text", "markdown", "html")
MEDIA_TYPES: tuple[str, ...] = ("image", "video", "file")
"""Content types sent by the key of an upload."""

_ACCEPTED_TO = (
    "Recipient.user(id), Recipient.group(id), the strings 'user:ID' or 'group:ID', "
    "or a webhook event"
)


@runtime_checkable
class Replyable(Protocol):
    """Anything that knows where a reply to it should go (webhook events do)."""

    @property
    def reply_recipient(self) -> Recipient: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a message goes: a user (private chat with the bot) or a group.

    Build one with ``Recipient.user(id)``, ``Recipient.group(id)`` or
    ``Recipient.parse("user:ID")``.
    """

    type: RecvType
    id: str

    def __post_init__(self) -> None:
        if self.type not in ("user", "group"):
            raise ConfigurationError(f"recipient type must be 'user' or 'group', not {self.type!r}")
        if not isinstance(self.id, str) or not self.id or self.id.strip() != self.id:
            raise ConfigurationError(
                f"recipient id must be a non-empty string without surrounding spaces, "
                f"not {self.id!r}"
            )
        try:
            self.id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigurationError(
                f"recipient id is not valid Unicode (a lone surrogate at index {exc.start}): "
                f"{self.id!r}"
            ) from None

    @classmethod
    def user(cls, id: str | int) -> Recipient:
        """A private chat with the user ``id``."""
        return cls("user", str(id))

    @classmethod
    def group(cls, id: str | int) -> Recipient:
        """The group ``id``."""
        return cls("group", str(id))

    @classmethod
    def parse(cls, value: str) -> Recipient:
        """Parse ``"user:ID"`` or ``"group:ID"``.

        Raises:
            ConfigurationError: for any other form.
        """
        kind, sep, ident = value.partition(":")
        if not sep or kind not in ("user", "group") or not ident:
            raise ConfigurationError(
                f"cannot use {value!r} as a recipient; accepted: {_ACCEPTED_TO}"
            )
        return cls(kind, ident)  # type: ignore[arg-type]  # kind checked just above

    @classmethod
    def coerce(cls, to: object) -> Recipient:
        """Turn any accepted ``to=`` value into a Recipient.

        Raises:
            ConfigurationError: naming the accepted forms, for anything else.
        """
        if isinstance(to, Recipient):
            return to
        if isinstance(to, str):
            return cls.parse(to)
        if isinstance(to, Replyable):
            recipient = to.reply_recipient
            if isinstance(recipient, Recipient):
                return recipient
        raise ConfigurationError(f"cannot use {to!r} as a recipient; accepted: {_ACCEPTED_TO}")

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


Target = Recipient | str | Replyable
"""What ``to=`` accepts."""


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The message YunHu created, as its response describes it.

    Attributes:
        msg_id: YunHu's message id.
        recv_id: The user or group id it was sent to.
        recv_type: ``"user"`` or ``"group"``.
        delivery: How the text reached the chat: ``"stream"`` (one streamed
            message), ``"stream+edit"`` (a streamed message completed by edits
            after a failure) or ``"send"`` (sent whole with ``bot/send``).
    """

    msg_id: str
    recv_id: str
    recv_type: RecvType
    delivery: Delivery = "stream"

    @property
    def recipient(self) -> Recipient:
        """The chat the message is in."""
        return Recipient(self.recv_type, self.recv_id)

    @classmethod
    def from_data(cls, data: Any, delivery: Delivery) -> MessageInfo:
        """Read ``data.messageInfo`` from a response envelope.

        Raises:
            KeyError, TypeError: when the shape is wrong (callers translate).
        """
        info = data["messageInfo"]
        recv_type = info["recvType"]
        if recv_type not in ("user", "group"):
            raise TypeError(f"recvType {recv_type!r}")
        return cls(str(info["msgId"]), str(info["recvId"]), recv_type, delivery)

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict using YunHu's field names."""
        return {
            "msgId": self.msg_id,
            "recvId": self.recv_id,
            "recvType": self.recv_type,
            "delivery": self.delivery,
        }


def check_content_type(value: object, accepted: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``accepted``, else raise ConfigurationError naming them."""
    if not isinstance(value, str) or value not in accepted:
        raise ConfigurationError(
            f"content_type must be one of {', '.join(map(repr, accepted))}, not {value!r}"
        )
    return value
