"""What every ``yunhu-stream`` command shares: exit codes, the token, logging, signals."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from .. import errors
from .._transport import redact

T = TypeVar("T")

PROG = "yunhu-stream"
DEMO_TO = "group:demo"
"""The chat ``demo`` streams into when no ``--to`` is given."""


class ExitCode(enum.IntEnum):
    """The process exit status of every command; the table in docs/cli.md is the contract."""

    OK = 0  #: done (for ``emulator`` and ``demo --open``: stopped with Ctrl-C)
    INTERNAL = 1  #: a bug in yunhu-stream (please report it with the traceback)
    USAGE = 2  #: bad command line (unknown option, bad --to, …)
    CONFIG = 3  #: no token, unreadable --token-file, bad base URL
    API = 4  #: YunHu answered with an error code (1002, 1003, 1007, …)
    NETWORK = 5  #: could not connect, connection lost, timed out
    INPUT = 6  #: input unreadable, empty, or invalid UTF-8 with --invalid-utf8 reject
    BAD_RESPONSE = 7  #: the server's answer was not YunHu's (HTTP error status, not JSON)
    INTERRUPTED = 130  #: Ctrl-C (SIGINT): the stream was aborted, nothing claimed
    BROKEN_PIPE = 141  #: stdout was closed early (e.g. piped into ``head``)
    TERMINATED = 143  #: SIGTERM: the stream was aborted, nothing claimed


EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    usage error (bad option or --to)
  3    configuration error (no token, unreadable --token-file, bad --base-url)
  4    YunHu answered with an API error code (e.g. 1003 bad token)
  5    network error (connection refused or lost, timeout)
  6    invalid input (unreadable, empty, or invalid UTF-8 with --invalid-utf8 reject)
  7    unexpected answer (HTTP error status or a body that is not YunHu's JSON)
  130  interrupted by Ctrl-C (the stream is aborted; nothing is printed on stdout)
  141  stdout was closed early (e.g. piped into head)
  143  terminated by SIGTERM (likewise)"""

VISIBLE_ON_COMMAND_LINE = (
    "warning: --token puts the bot token on the command line, where other local users "
    "can read it (ps, /proc); prefer YUNHU_TOKEN or --token-file"
)


class CliError(Exception):
    """Ends a command with ``message`` on stderr and exit status ``code``."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while a command was working."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def code(self) -> ExitCode:
        """130 for SIGINT, 143 for SIGTERM (128 + the signal number, as shells report)."""
        return ExitCode.TERMINATED if self.signum == signal.SIGTERM else ExitCode.INTERRUPTED


def exit_code_for(exc: errors.YunhuError) -> ExitCode:
    """The documented exit status for a library error."""
    if isinstance(exc, errors.ConfigurationError):
        return ExitCode.CONFIG
    if isinstance(exc, errors.APIError):
        return ExitCode.API
    if isinstance(exc, (errors.HTTPStatusError, errors.InvalidResponseError)):
        return ExitCode.BAD_RESPONSE
    if isinstance(exc, (errors.TransportError, errors.StreamBrokenError)):
        return ExitCode.NETWORK
    return ExitCode.INTERNAL


def describe(exc: errors.YunhuError) -> str:
    """One line for stderr: what failed, with a hint for the common cases."""
    text = str(exc)
    if isinstance(exc, errors.UnauthorizedError):
        text += " (check the token, and that the user has added the bot as a friend)"
    elif isinstance(exc, errors.RateLimitedError):
        text += " (over YunHu's frequency limit; try again shortly)"
    return text


# -- the token ----------------------------------------------------------------------------


def resolve_token(
    token: str | None, token_file: str | None, *, err: TextIO
) -> str | None:
    """The bot token from ``--token``, ``--token-file`` or ``$YUNHU_TOKEN``, in that order.

    Returns None when none is given (the caller decides whether that is an error).

    Raises:
        CliError: CONFIG when the token file cannot be read or is empty.
    """
    if token is not None:
        print(VISIBLE_ON_COMMAND_LINE, file=err)
        if not token.strip():
            raise CliError("--token is empty", ExitCode.CONFIG)
        return token.strip()
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                value = f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise CliError(
                f"cannot read --token-file {token_file!r}: {reason}", ExitCode.CONFIG
            ) from None
        if not value:
            raise CliError(f"--token-file {token_file!r} is empty", ExitCode.CONFIG)
        if stat.S_ISREG(mode) and mode & 0o077:
            print(
                f"warning: --token-file {token_file!r} is readable by other users "
                f"(mode {stat.S_IMODE(mode):o}); consider chmod 600",
                file=err,
            )
        return value
    env = os.environ.get("YUNHU_TOKEN", "").strip()
    return env or None


# -- logging ------------------------------------------------------------------------------


class _Redactor(logging.Filter):
    """Removes every known secret from each record the CLI's handler prints."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


_redactor = _Redactor()


def hide(secret: str | None) -> None:
    """Never let ``secret`` appear in a log line from now on."""
    if secret:
        _redactor.secrets.add(secret)


def configure_logging(verbosity: int, stream: TextIO) -> None:
    """Print the library's log events on ``stream``: warnings, ``-v`` info, ``-vv`` debug.

    Only the command-line application does this, through the standard library's
    ``logging`` (the library itself never configures logging).
    """
    # By default only errors: a failure is reported once, by the command's own error line.
    level = logging.ERROR if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)-7s] %(message)s", "%H:%M:%S"))
    handler.addFilter(_redactor)
    root = logging.getLogger("yunhu_stream")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


# -- signals ------------------------------------------------------------------------------


class Signals:
    """Turns SIGINT/SIGTERM into an event that a command's work is raced against.

    The first signal asks for a clean stop (the stream is aborted); a second SIGINT
    falls back to Python's default and raises KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.signum: int | None = None
        self._installed: list[int] = []

    def install(self) -> None:
        """Start catching SIGINT and SIGTERM on the running loop (no-op where unsupported)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                continue
            self._installed.append(signum)

    def uninstall(self) -> None:
        """Give the signals back to their default handlers."""
        loop = asyncio.get_running_loop()
        while self._installed:
            loop.remove_signal_handler(self._installed.pop())

    def _on_signal(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self.stop.set()
        if signum == signal.SIGINT:
            # A second Ctrl-C must always work, even if a clean stop hangs.
            asyncio.get_running_loop().remove_signal_handler(signum)

    def check(self) -> None:
        """Raise Interrupted if a signal has arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    async def race(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless a signal comes first; then cancel it and raise Interrupted.

        Raises:
            Interrupted: a signal arrived before ``work`` finished.
        """
        if self.signum is not None:
            if asyncio.iscoroutine(work):
                work.close()  # never started: close it, or Python warns it was never awaited
            raise Interrupted(self.signum)
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task in done or self.signum is None:
            return task.result()
        if not task.cancelled():
            task.exception()  # the signal decides the outcome; mark this one as seen
        raise Interrupted(self.signum)

    async def wait(self) -> int:
        """Wait for a signal; return its number."""
        await self.stop.wait()
        assert self.signum is not None
        return self.signum


def run(main: Callable[[Signals], Awaitable[ExitCode]]) -> ExitCode:
    """Run ``main`` on a fresh event loop with signal handling installed."""

    async def runner() -> ExitCode:
        signals = Signals()
        signals.install()
        try:
            return await main(signals)
        finally:
            signals.uninstall()

    return asyncio.run(runner())


def error(message: str, *, err: TextIO | None = None) -> None:
    """Print ``yunhu-stream: error: message`` on stderr."""
    print(f"{PROG}: error: {message}", file=err or sys.stderr)
