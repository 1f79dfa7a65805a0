"""``yunhu-stream emulator`` and ``yunhu-stream demo``: the local emulator, served or shown off."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import os
import sys
import time
import webbrowser
from collections.abc import AsyncIterator
from typing import TextIO

from .. import errors
from .._client import Bot
from .._types import MessageInfo, Recipient
from ..emulator import Emulator, StreamRecord
from ..testing.fake_llm import tokenize
from ._common import (
    DEMO_TO,
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

EXCERPT_CHARS = 32

SAMPLE_ANSWER = """\
## Streaming into YunHu

Sure! Here is how **yunhu-stream** sends an answer *while it is being written*:

1. Your bot calls `bot.stream(to)` and writes each token as the model produces it.
2. The library keeps **one** chunked `bot/send-stream` request open and sends every \
write as its own chunk.
3. YunHu shows the message growing in the chat — no waiting for the whole answer.

```python
async with bot.stream(to, content_type="markdown") as s:
    async for token in llm_reply:
        await s.write(token)
```

流式输出让用户立刻看到回答的开头，而不是等上十几秒。 🚀
"""

async def _tokens(text: str, delay: float) -> AsyncIterator[str]:
    for token in tokenize(text):
        await asyncio.sleep(delay)
        yield token


def _excerpt(text: str) -> str:
    shown = text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def _say(out: TextIO, line: str = "") -> None:
    out.write(line + "\n")
    out.flush()


# -- yunhu-stream emulator ----------------------------------------------------------------


def _emulator(args: argparse.Namespace, token: str | None) -> Emulator:
    try:
        return Emulator(
            token=token, host=args.host, port=args.port, proxy=getattr(args, "proxy", False)
        )
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    except ImportError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from None


async def _start(emu: Emulator) -> None:
    try:
        await emu.start()
    except OSError as exc:
        raise CliError(
            f"cannot listen on {emu.url}: {exc.strerror or exc}", ExitCode.CONFIG
        ) from None


async def run_emulator(args: argparse.Namespace, signals: Signals) -> ExitCode:
    """The ``emulator`` command: serve until Ctrl-C (then exit 0)."""
    out = sys.stdout
    emu = _emulator(args, args.token)
    await _start(emu)
    try:
        _say(out, f"YunHu emulator running: open {emu.url} to watch the chats live")
        _say(out, f"  API base URL: {emu.base_url}")
        _say(out, f"  bot token:    {emu.token}")
        _say(out, "  (the emulator's own test token: it is not a secret and only works here)")
        _say(out)
        _say(out, "Stream into it from another terminal:")
        _say(out, f"  export YUNHU_BASE_URL={emu.base_url} YUNHU_TOKEN={emu.token}")
        _say(out, "  echo 'Hello **world**' | yunhu-stream send --to group:demo --markdown")
        _say(out)
        if emu.proxy_url:
            _say(out, "Proxy mode: clients that call YunHu's own hosts reach this emulator with")
            _say(out, f"  export HTTPS_PROXY={emu.proxy_url} SSL_CERT_FILE={emu.ca_file}")
            _say(out, f"  (requests-based clients: REQUESTS_CA_BUNDLE={emu.ca_file})")
            _say(out)
        _say(out, "Press Ctrl-C to stop.")
        await signals.wait()
    finally:
        await emu.close()
    _say(out, "emulator stopped")
    return ExitCode.OK


# -- yunhu-stream demo --------------------------------------------------------------------


async def _print_chunks(emu: Emulator, out: TextIO) -> StreamRecord:
    """Print each chunk of the first send-stream request as the emulator receives it."""
    record = await emu.wait_for_stream(1, timeout=None)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    seen = 0
    while True:
        await emu.wait_until(
            lambda n=seen: len(record.chunks) > n or record.done,  # type: ignore[misc]
            timeout=None, what="the next chunk",
        )
        while seen < len(record.chunks):
            chunk = record.chunks[seen]
            seen += 1
            offset_ms = (chunk.t - record.started) * 1000
            _say(out, f"chunk {seen:>3}  +{offset_ms:8.1f} ms  {len(chunk.data):>4} B  "
                      f"{_excerpt(decoder.decode(chunk.data))}")
        if record.done and seen == len(record.chunks):
            return record


async def _write_tokens(bot: Bot, to: Recipient, delay: float, out: TextIO | None) -> MessageInfo:
    """Stream the sample answer token by token; print each write if ``out`` is given."""
    started = time.monotonic()
    async with bot.stream(to, content_type="markdown") as s:
        async for token in _tokens(SAMPLE_ANSWER, delay):
            await s.write(token)
            if out is not None:
                offset_ms = (time.monotonic() - started) * 1000
                _say(out, f"write       +{offset_ms:8.1f} ms  {len(token.encode()):>4} B  "
                          f"{_excerpt(token)}")
    info = s.message_info
    assert info is not None  # the sample answer is not empty
    return info


async def run_demo(args: argparse.Namespace, signals: Signals) -> ExitCode:
    """The ``demo`` command; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    token = resolve_token(args.token, args.token_file, err=err)
    hide(token)
    delay = args.delay_ms / 1000
    try:
        if token is not None and args.to is not None:
            return await _demo_real(args, token, delay, signals, out, err)
        return await _demo_emulator(args, delay, signals, out, err)
    except Interrupted as exc:
        error(f"interrupted ({exc}); the stream was aborted", err=err)
        return exc.code
    except errors.YunhuError as exc:
        error(describe(exc), err=err)
        return exit_code_for(exc)


async def _demo_real(args: argparse.Namespace, token: str, delay: float, signals: Signals,
                     out: TextIO, err: TextIO) -> ExitCode:
    to = args.to
    async with Bot(token, base_url=args.base_url) as bot:
        _say(err, f"streaming the sample answer to {to} at {bot.base_url} "
                  f"(YUNHU_TOKEN and --to were given)")
        info = await signals.race(_write_tokens(bot, to, delay, out))
    _say(out, json.dumps(info.to_dict(), ensure_ascii=False))
    return ExitCode.OK


async def _demo_emulator(args: argparse.Namespace, delay: float, signals: Signals,
                         out: TextIO, err: TextIO) -> ExitCode:
    to = args.to or Recipient.parse(DEMO_TO)
    emu = _emulator(args, None)  # --token is the real bot token here
    hide(emu.token)  # not a secret, but a demo should show the habit: no token in output
    await _start(emu)
    try:
        _say(out, f"emulator running at {emu.url}")
        if args.open:
            _say(out, f"live page: {emu.url}  (open it to watch the message grow)")
            await _open_browser(emu.url, err)
            # Give a freshly opened browser a moment to load the page before it streams.
            await signals.race(asyncio.sleep(args.open_wait))
        _say(out, f"streaming a sample answer to {to}, one token every {args.delay_ms} ms")
        _say(out, "chunks as the emulator received them (offset from the request's start):")
        async with Bot(emu.token, base_url=emu.base_url) as bot:
            watcher = asyncio.ensure_future(_print_chunks(emu, out))
            try:
                info = await signals.race(_write_tokens(bot, to, delay, None))
                record = await signals.race(watcher)
            finally:
                watcher.cancel()
                await asyncio.wait({watcher})
        _say(out, f"{len(record.chunks)} chunks, {record.nbytes} bytes; the message:")
        _say(out, json.dumps(info.to_dict(), ensure_ascii=False))
        if args.open:
            _say(out, f"still serving {emu.url}; press Ctrl-C to stop")
            await signals.wait()
    finally:
        await emu.close()
    return ExitCode.OK


async def _open_browser(url: str, err: TextIO) -> None:
    # Without a display, webbrowser falls back to console browsers (lynx, w3m) that
    # would take over this terminal; there is nothing useful to open then.
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    opened = False
    if not headless:
        try:
            opened = await asyncio.to_thread(webbrowser.open, url)
        except webbrowser.Error:
            opened = False
    if not opened:
        _say(err, f"no browser could be opened here; open {url} yourself")
