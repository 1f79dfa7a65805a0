"""What the emulator remembers: chats, their messages, and every streamed request.

Everything here is plain state mutated from the event loop's single thread; waits are
built on one :class:`Changes` notifier that is poked after every mutation, so a waiter
re-checks its predicate instead of relying on one event per condition.
"""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

STREAM_TIP = "本内容由AI生成，仅供参考"
"""The label YunHu puts on streamed messages (``content.tip`` in ``bot/messages``)."""

DEFAULT_WAIT = 10.0
"""Seconds any ``wait_*`` helper waits before raising :class:`TimeoutError`."""


class Changes:
    """Wakes every waiter after any change; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake all current waiters (they re-check and maybe sleep again)."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait_until(
        self, check: Callable[[], T | None], *, timeout: float | None, what: str
    ) -> T:
        """Return the first non-None, non-False value of ``check()``.

        Raises:
            TimeoutError: if ``timeout`` seconds pass first, naming ``what`` was awaited.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            event = self._event
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"emulator: timed out after {timeout} s waiting for {what}")
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                # Python 3.10's asyncio.TimeoutError is not the builtin; loop re-raises ours.
                continue


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed body as the server read it.

    Attributes:
        data: The bytes (a piece never spans two HTTP chunks).
        t: ``time.monotonic()`` when it was read.
        wall: ``time.time()`` when it was read.
        http_chunk_end: True if this piece ends an HTTP chunk of the request body.
    """

    data: bytes
    t: float
    wall: float
    http_chunk_end: bool = True


@dataclass(eq=False)
class StreamRecord:
    """Everything the emulator saw of one ``bot/send-stream`` request.

    Attributes:
        recv_id, recv_type, content_type: The query parameters as received
            (possibly invalid, if the request was rejected for them).
        chunks: The body pieces in arrival order.
        started: ``time.monotonic()`` when the request arrived.
        ended: ``time.monotonic()`` when it finished (answered, aborted or dropped).
        completed: True once the whole body was received.
        aborted: True if the client went away (or a fault dropped it) mid-body.
        msg_id: The message it created (set at the first chunk), else None.
        code: The envelope ``code`` answered, None if no envelope was sent.
        status: The HTTP status answered, None if the connection ended without one.
        fault: The kind of fault applied to this request, if any.
    """

    recv_id: str
    recv_type: str
    content_type: str
    changes: Changes = field(repr=False)
    chunks: list[Chunk] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    ended: float | None = None
    completed: bool = False
    aborted: bool = False
    msg_id: str | None = None
    code: int | None = None
    status: int | None = None
    fault: str | None = None

    @property
    def body(self) -> bytes:
        """All body bytes received so far."""
        return b"".join(c.data for c in self.chunks)

    @property
    def nbytes(self) -> int:
        """How many body bytes were received so far."""
        return sum(len(c.data) for c in self.chunks)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced, a cut-off tail dropped)."""
        return codecs.getincrementaldecoder("utf-8")("replace").decode(self.body)

    @property
    def done(self) -> bool:
        """True once the request has ended, one way or another."""
        return self.ended is not None

    async def wait_for_bytes(self, n: int, *, timeout: float | None = DEFAULT_WAIT) -> None:
        """Wait until at least ``n`` body bytes have arrived.

        Raises:
            TimeoutError: if they do not arrive in time.
        """
        await self.changes.wait_until(
            lambda: self.nbytes >= n, timeout=timeout, what=f"{n} bytes of stream body"
        )

    async def wait_for_chunks(self, k: int, *, timeout: float | None = DEFAULT_WAIT) -> None:
        """Wait until at least ``k`` body pieces have arrived.

        Raises:
            TimeoutError: if they do not arrive in time.
        """
        await self.changes.wait_until(
            lambda: len(self.chunks) >= k, timeout=timeout, what=f"{k} stream chunks"
        )

    async def wait_done(self, *, timeout: float | None = DEFAULT_WAIT) -> StreamRecord:
        """Wait until the request has ended (answered, aborted or dropped).

        Raises:
            TimeoutError: if it does not end in time.
        """
        return await self.changes.wait_until(
            lambda: self if self.done else None, timeout=timeout, what="the stream to end"
        )


@dataclass(eq=False)
class StoredMessage:
    """One message in a chat, as the real service would show it.

    It reads like a ``bot/messages`` list item too: ``message["content"]["text"]``.

    Attributes:
        msg_id: The message id.
        chat_type, chat_id: The chat (``"user"``/``"group"`` and its id).
        content_type: ``text``, ``markdown``, ``html``, ``image``, …
        text: The text as shown now (grows while streaming, replaced by edits).
        sender_id, sender_nickname: Who sent it: the bot, or a user of the world.
        sender_type: ``"bot"`` for the bot's messages, ``"user"`` for what users said.
        buttons: Button rows, or None.
        at: Mentioned user ids, or None.
        parent_id: The quoted message id, or None.
        streamed: True if it came from ``bot/send-stream``.
        streaming: True while its stream request is still receiving the body.
        incomplete: True if its stream ended without the whole body (client gone).
        edits: How many times ``bot/edit`` changed it.
        recalled: True once ``bot/recall`` removed it.
        send_time: Milliseconds since the epoch when it was created.
        command_name, command_id: The command a user's message invoked (``""``/0: none).
        stream: The :class:`StreamRecord` of a streamed message.
    """

    msg_id: str
    chat_type: str
    chat_id: str
    content_type: str
    text: str
    sender_id: str
    sender_nickname: str
    sender_type: str = "bot"
    buttons: list[list[dict[str, Any]]] | None = None
    at: list[str] | None = None
    parent_id: str | None = None
    streamed: bool = False
    streaming: bool = False
    incomplete: bool = False
    edits: int = 0
    recalled: bool = False
    send_time: int = field(default_factory=lambda: int(time.time() * 1000))
    command_name: str = ""
    command_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    stream: StreamRecord | None = field(default=None, repr=False)

    def to_item(self) -> dict[str, Any]:
        """The message as a ``bot/messages`` list item."""
        content: dict[str, Any] = dict(self.extra)
        if self.text or not self.extra:  # media messages carry their keys, not text
            content["text"] = self.text
        if self.buttons is not None:
            content["buttons"] = self.buttons
        if self.at is not None:
            content["at"] = self.at
        if self.streamed:
            content["tip"] = STREAM_TIP
        return {
            "msgId": self.msg_id,
            "parentId": self.parent_id or "",
            "senderId": self.sender_id,
            "senderType": self.sender_type,
            "senderNickname": self.sender_nickname,
            "contentType": self.content_type,
            "content": content,
            "sendTime": self.send_time,
            "commandName": self.command_name,
            "commandId": self.command_id,
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_item()[key]


ChatKey = tuple[str, str]


class ChatStore:
    """Chats keyed by ``(chat_type, chat_id)``, each a list of messages oldest first."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self._chats: dict[ChatKey, list[StoredMessage]] = {}
        self._by_id: dict[str, StoredMessage] = {}
        self._listeners: list[Callable[[StoredMessage], None]] = []

    def add(self, message: StoredMessage) -> None:
        """Append ``message`` to its chat."""
        self._chats.setdefault((message.chat_type, message.chat_id), []).append(message)
        self._by_id[message.msg_id] = message
        self.changed(message)

    def changed(self, message: StoredMessage) -> None:
        """Tell waiters and listeners that ``message`` changed."""
        for listener in list(self._listeners):
            listener(message)
        self._changes.notify()

    def get(self, msg_id: str) -> StoredMessage | None:
        """The message with ``msg_id``, recalled or not, or None."""
        return self._by_id.get(msg_id)

    def chat(self, chat_type: str, chat_id: str, *, include_recalled: bool) -> list[StoredMessage]:
        """The messages of one chat, oldest first."""
        messages = self._chats.get((chat_type, chat_id), [])
        return [m for m in messages if include_recalled or not m.recalled]

    def chat_keys(self) -> list[ChatKey]:
        """Every chat that has at least one message, in order of its first message."""
        return list(self._chats)

    def subscribe(self, listener: Callable[[StoredMessage], None]) -> Callable[[], None]:
        """Call ``listener(message)`` after every change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)


Scope = Literal["all", "chat", "member"]


@dataclass(frozen=True, eq=False)
class Board:
    """One board the bot set (``emu.boards``).

    Attributes:
        scope: ``"member"`` (one member of a chat), ``"chat"`` or ``"all"`` (every user).
        content_type: ``text``, ``markdown`` or ``html``.
        content: The board's text.
        expire_time: Unix time in seconds when it disappears; 0 = never.
        chat_type, chat_id: Its chat (None for ``"all"``).
        member_id: The member it is for (``"member"`` scope only).
        set_at: ``time.time()`` when it was set.
    """

    scope: Scope
    content_type: str
    content: str
    expire_time: int = 0
    chat_type: str | None = None
    chat_id: str | None = None
    member_id: str | None = None
    set_at: float = field(default_factory=time.time)

    @property
    def active(self) -> bool:
        """True until its ``expire_time`` has passed."""
        return self.expire_time == 0 or time.time() < self.expire_time


BoardKey = tuple[str | None, str | None, str | None]


class Boards:
    """The boards in force, one per (chat, member), (chat) and for everyone."""

    def __init__(self) -> None:
        self._boards: dict[BoardKey, Board] = {}

    def active(self) -> list[Board]:
        """The boards not yet expired, oldest first."""
        return [b for b in self._boards.values() if b.active]

    def shown(self, chat_type: str, chat_id: str, member_id: str | None) -> Board | None:
        """What ``member_id`` sees above that chat: their own board, else the chat's,
        else the one for everyone."""
        keys: list[BoardKey] = [(chat_type, chat_id, None), (None, None, None)]
        if member_id is not None:
            keys.insert(0, (chat_type, chat_id, member_id))
        for key in keys:
            board = self._boards.get(key)
            if board is not None and board.active:
                return board
        return None

    def set(self, board: Board) -> None:
        """Set ``board``, replacing the one of the same scope and chat."""
        self._boards[(board.chat_type, board.chat_id, board.member_id)] = board

    def dismiss(self, chat_type: str | None, chat_id: str | None, member_id: str | None) -> None:
        """Remove one member's board, or (``member_id`` None) every board of the chat, or
        (everything None) the board for everyone."""
        if chat_type is None or member_id is not None:
            self._boards.pop((chat_type, chat_id, member_id), None)
            return
        for key in [k for k in self._boards if k[:2] == (chat_type, chat_id)]:
            del self._boards[key]
