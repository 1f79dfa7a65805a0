"""Reading ``send``'s input without blocking the event loop, and cutting it into writes."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import selectors
import stat
from typing import BinaryIO, Literal

from .._exceptions import ConfigurationError

READ_SIZE = 64 * 1024
PARTIAL_FLUSH_CHARS = 16 * 1024
"""A line this long is forwarded before its newline arrives, whatever the delay."""

InvalidUtf8 = Literal["replace", "reject"]


class InvalidInputError(Exception):
    """The input cannot be used (unreadable, or invalid UTF-8 under ``reject``)."""


def _pollable(fd: int) -> bool:
    """Whether the event loop can watch ``fd`` (epoll refuses /dev/null and files)."""
    selector = selectors.DefaultSelector()
    try:
        selector.register(fd, selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    finally:
        selector.close()
    return True


class InputSource:
    """Bytes from a file or stdin, read as they become available.

    Pipes, FIFOs, sockets and terminals are read on the event loop through
    ``loop.connect_read_pipe`` (their data is handed on the moment it arrives);
    regular files, which the event loop cannot watch, are read in a worker thread.
    The descriptor's blocking mode is restored on :meth:`aclose`, since it is
    shared with whatever else holds the same pipe or terminal.
    """

    def __init__(self, fd: int, *, owned: bool, name: str) -> None:
        self.name = name
        self._fd = fd
        self._owned = owned
        self._file: BinaryIO | None = None
        self._reader: asyncio.StreamReader | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._was_blocking: bool | None = None

    @classmethod
    def open(cls, path: str) -> InputSource:
        """The source for ``path``; ``"-"`` is stdin.

        Raises:
            InvalidInputError: the file cannot be opened, or is a directory.
        """
        if path == "-":
            return cls(0, owned=False, name="stdin")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path!r}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise InvalidInputError(f"cannot read {path!r}: it is a directory")
        return cls(fd, owned=True, name=path)

    @property
    def is_terminal(self) -> bool:
        """True when reading from an interactive terminal."""
        return os.isatty(self._fd)

    async def start(self) -> None:
        """Attach pipe-like input to the event loop. Call once before :meth:`read`."""
        mode = os.fstat(self._fd).st_mode
        pipe_like = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)
        if not (pipe_like and _pollable(self._fd)):  # /dev/null and regular files are not
            self._file = os.fdopen(os.dup(self._fd), "rb", buffering=0)
            return
        loop = asyncio.get_running_loop()
        self._was_blocking = os.get_blocking(self._fd)
        # A duplicate, so that closing the transport never closes fd 0 itself.
        pipe = os.fdopen(os.dup(self._fd), "rb", buffering=0)
        reader = asyncio.StreamReader(limit=READ_SIZE)
        try:
            self._transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            self._restore_blocking()
            raise
        self._reader = reader

    async def read(self) -> bytes:
        """The next bytes available (waiting for at least one), or ``b""`` at end of input.

        Safe to cancel: nothing read is lost (for regular files the thread's read is
        not interrupted, so call this from one long-lived task).

        Raises:
            InvalidInputError: reading failed (e.g. EIO).
        """
        try:
            if self._reader is not None:
                return await self._reader.read(READ_SIZE)
            if self._file is None:
                raise RuntimeError("InputSource.start() was not called")
            return await asyncio.to_thread(self._file.read, READ_SIZE) or b""
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.name}: {exc.strerror or exc}") from None

    def _restore_blocking(self) -> None:
        if self._was_blocking is not None:
            with contextlib.suppress(OSError):  # the descriptor is gone: nothing to restore
                os.set_blocking(self._fd, self._was_blocking)
            self._was_blocking = None

    def close(self) -> None:
        """Detach from the loop, restore the descriptor's mode, close what was opened."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._restore_blocking()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._owned:
            self._owned = False
            os.close(self._fd)


class LineCutter:
    """Decodes input incrementally and says what to forward now.

    Whole lines are forwarded as soon as they are complete; the rest of a line is
    held back (a partial line) until :meth:`flush` — called by the reader after a
    short delay or at end of input — or until it grows past
    :data:`PARTIAL_FLUSH_CHARS`. UTF-8 sequences split across reads are joined.

    Args:
        invalid: ``"replace"`` turns invalid UTF-8 into U+FFFD; ``"reject"`` raises
            :class:`InvalidInputError` naming the byte offset, before any text
            after the last whole line already returned is handed out.
    """

    def __init__(self, invalid: InvalidUtf8 = "replace") -> None:
        if invalid not in ("replace", "reject"):
            raise ConfigurationError(f"invalid must be 'replace' or 'reject', not {invalid!r}")
        self._strict = invalid == "reject"
        self._decoder = codecs.getincrementaldecoder("utf-8")(
            "strict" if self._strict else "replace"
        )
        self._consumed = 0
        self.partial = ""

    def _decode(self, data: bytes, final: bool) -> str:
        held, _ = self._decoder.getstate()
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            at = self._consumed - len(held) + exc.start
            raise InvalidInputError(
                f"input is not valid UTF-8 at byte {at} "
                f"(use --invalid-utf8 replace to send U+FFFD instead)"
            ) from None
        self._consumed += len(data)
        return text

    def feed(self, data: bytes) -> str:
        """Take ``data``; return the text to forward now (whole lines, possibly empty)."""
        text = self.partial + self._decode(data, final=False)
        cut = text.rfind("\n") + 1
        if cut == 0 and len(text) >= PARTIAL_FLUSH_CHARS:
            cut = len(text)
        self.partial = text[cut:]
        return text[:cut]

    def flush(self) -> str:
        """Return (and forget) the held partial line."""
        text, self.partial = self.partial, ""
        return text

    def finish(self) -> str:
        """End of input: return everything still held, including a cut-off sequence.

        Raises:
            InvalidInputError: under ``reject``, if the input ends inside a sequence.
        """
        return self.flush() + self._decode(b"", final=True)
