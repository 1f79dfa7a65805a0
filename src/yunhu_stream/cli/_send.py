"""``yunhu-stream send``: stream a file or stdin into one message as it arrives."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TextIO
from urllib.parse import urlsplit

from .. import errors
from .._client import Bot
from .._streamer import Streamer
from ..wschat import WsChat
from ._common import (
    CliError,
    ExitCode,
    Interrupted,
    Signals,
    describe,
    error,
    exit_code_for,
    hide,
    resolve_token,
)
from ._input import InputSource, InvalidInputError, LineCutter

PROGRESS_INTERVAL = 0.25


class Progress:
    """One self-overwriting status line on a terminal's stderr: bytes, rate, elapsed."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._out = stream
        self.enabled = enabled
        self._started = time.monotonic()
        self._shown = 0.0
        self.read = 0

    def update(self, streamer: Streamer | None, *, force: bool = False, note: str = "") -> None:
        """Redraw the line (at most every PROGRESS_INTERVAL seconds unless ``force``)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._shown < PROGRESS_INTERVAL:
            return
        self._shown = now
        elapsed = now - self._started
        sent = streamer.stats.bytes_sent if streamer is not None else 0
        rate = sent / elapsed if elapsed > 0 else 0.0
        line = (
            f"{_size(self.read)} read, {_size(sent)} sent, {_size(rate)}/s, "
            f"{_clock(elapsed)}{note}"
        )
        self._out.write("\r\x1b[K" + line)
        self._out.flush()

    async def ticker(self, streamer: Streamer) -> None:
        """Keep the elapsed time moving while the input is quiet."""
        while True:
            await asyncio.sleep(1.0)
            self.update(streamer, force=True)

    def done(self) -> None:
        """End the status line so later output starts on a fresh line. Idempotent."""
        if self.enabled and self._shown:
            self._out.write("\n")
            self._out.flush()
        self.enabled = False


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


async def pump(
    source: InputSource,
    cutter: LineCutter,
    stream: Streamer,
    *,
    flush_delay: float,
    progress: Progress,
) -> None:
    """Forward ``source`` into ``stream``: each line at once, a partial line after a delay.

    Raises:
        InvalidInputError: the input is unreadable or (under ``reject``) not UTF-8.
        YunhuError: the stream failed.
    """
    loop = asyncio.get_running_loop()
    reading: asyncio.Task[bytes] | None = None
    partial_since = 0.0
    try:
        while True:
            if reading is None:
                reading = asyncio.ensure_future(source.read())
            timeout = None
            if cutter.partial:
                timeout = max(0.0, partial_since + flush_delay - loop.time())
            done, _ = await asyncio.wait({reading}, timeout=timeout)
            if not done:
                await stream.write(cutter.flush())
                progress.update(stream)
                continue
            data = reading.result()
            reading = None
            if not data:
                break
            progress.read += len(data)
            had_partial = bool(cutter.partial)
            text = cutter.feed(data)
            if cutter.partial and (not had_partial or text):
                partial_since = loop.time()  # a new partial line starts its delay now
            if text:
                await stream.write(text)
            progress.update(stream)
        await stream.write(cutter.finish())
    finally:
        if reading is not None and not reading.done():
            reading.cancel()
            await asyncio.wait({reading})


async def run_send(args: argparse.Namespace, signals: Signals) -> ExitCode:
    """The ``send`` command; returns the exit status (see ExitCode)."""
    out, err = sys.stdout, sys.stderr
    source: InputSource = args.source
    cutter = LineCutter(args.invalid_utf8)
    # On a terminal that is also the input, a redrawn status line would overwrite what
    # the user is typing; progress is for piped input.
    progress = Progress(err, enabled=args.progress and err.isatty() and not source.is_terminal)
    try:
        async with _destination(args, err) as open_stream:
            if source.is_terminal and err.isatty():
                print("reading from the terminal; end the message with Ctrl-D", file=err)
            await source.start()
            try:
                return await _stream(open_stream(), source, cutter, progress, signals, args,
                                     out, err)
            finally:
                progress.done()
    finally:
        source.close()


@asynccontextmanager
async def _destination(
    args: argparse.Namespace, err: TextIO
) -> AsyncIterator[Callable[[], Streamer]]:
    """What the message goes to: a YunHu chat through a Bot, or a WebSocket chat."""
    # Messages closed by rollover are printed, not kept: `tail -f | send` runs for days in
    # constant memory (an error still carries the message that did not get through).
    keep = 0 if args.max_message_bytes else None
    if args.wschat:
        if args.markdown:
            raise CliError("--markdown is for YunHu; a WebSocket chat message is text",
                           ExitCode.USAGE)
        async with WsChat(args.wschat, token=await _wschat_token(args, err),
                          reconnect_attempts=args.retries + 1) as chat:
            yield lambda: chat.stream(args.to, max_message_bytes=args.max_message_bytes,
                                      max_text_bytes=keep)
        return
    token = resolve_token(args.token, args.token_file, err=err)
    hide(token)
    if token is None:
        raise CliError(
            "no bot token: set YUNHU_TOKEN or pass --token-file PATH", ExitCode.CONFIG
        )
    async with Bot(token, base_url=args.base_url, retry_attempts=args.retries + 1) as bot:
        yield lambda: bot.stream(
            args.to,
            content_type="markdown" if args.markdown else "text",
            max_message_bytes=args.max_message_bytes,
            max_text_bytes=keep,
        )


async def _wschat_token(args: argparse.Namespace, err: TextIO) -> str:
    """The chat token: from a file, $YUNHU_WSCHAT_TOKEN, or the server's token API."""
    token: str | None = None
    if args.wschat_token_file is not None:
        token = resolve_token(None, args.wschat_token_file, err=err)
    else:
        token = os.environ.get("YUNHU_WSCHAT_TOKEN", "").strip() or None
    if token is None and args.app_key and args.user_id:
        secret = args.app_secret or os.environ.get("YUNHU_WSCHAT_APP_SECRET", "")
        hide(secret)
        if not secret:
            raise CliError("--app-key needs --app-secret (or $YUNHU_WSCHAT_APP_SECRET)",
                           ExitCode.CONFIG)
        parts = urlsplit(args.wschat)
        scheme = "https" if parts.scheme == "wss" else "http"
        token = await WsChat.fetch_token(f"{scheme}://{parts.netloc}", app_key=args.app_key,
                                         app_secret=secret, user_id=args.user_id)
    if token is None:
        raise CliError(
            "no chat token: pass --wschat-token-file PATH, set YUNHU_WSCHAT_TOKEN, or give "
            "--app-key, --app-secret and --user-id", ExitCode.CONFIG)
    hide(token)
    return token


async def _stream(
    stream: Streamer,
    source: InputSource,
    cutter: LineCutter,
    progress: Progress,
    signals: Signals,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> ExitCode:
    ticker = asyncio.ensure_future(progress.ticker(stream)) if progress.enabled else None
    try:
        try:
            await signals.race(
                pump(source, cutter, stream, flush_delay=args.flush_delay, progress=progress)
            )
            progress.update(stream, force=True, note=", waiting for the answer")
            await signals.race(stream.close())
        except BaseException:
            # Interrupted, invalid input, a failed stream or a bug: nothing more may be sent.
            await stream.abort()
            raise
    except InvalidInputError as exc:
        progress.done()
        error(f"{exc}; the stream was aborted", err=err)
        return ExitCode.INPUT
    except Interrupted as exc:
        progress.done()
        error(f"interrupted ({exc}); the stream was aborted", err=err)
        return exc.code
    except errors.YunhuError as exc:
        progress.done()
        error(describe(exc), err=err)
        return exit_code_for(exc)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.wait({ticker})
    progress.update(stream, force=True, note=", done")
    progress.done()
    if not stream.messages:
        error("the input was empty; no message was sent", err=err)
        return ExitCode.INPUT
    for info in stream.messages:
        out.write(json.dumps(info.to_dict(), ensure_ascii=False) + "\n")
    out.flush()
    return ExitCode.OK
