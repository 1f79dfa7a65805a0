"""Shared by the NoneBot2 and ErisPulse tests: a child-process harness, webhook bodies
as YunHu sends them, and the reply-routing tests both integrations must pass.

Each framework runs as a child process (its global state stays out of the test
process); the emulator runs in the test process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from yunhu_stream.emulator import Emulator, StreamRecord
from yunhu_stream.testing import (
    DEFAULT_BOT_ID,
    button_event,
    follow_event,
    menu_event,
    message_event,
)

Webhook = Callable[[dict[str, Any]], Awaitable[None]]
"""POSTs one webhook body to the running bot's YunHu route and checks it answered 200."""


def require(distributions: tuple[str, ...], install_hint: str) -> None:
    """Skip the calling test module unless every distribution is installed.

    On CI (``$CI`` set) a missing one is an error instead: a skip there would hide it.
    """
    missing = []
    for distribution in distributions:
        try:
            importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(distribution)
    if not missing:
        return
    reason = f"these tests need {', '.join(missing)}: {install_hint}"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


# -- a child-process harness ----------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on loopback a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A bot program running as a child process; every output line is kept."""

    def __init__(self, proc: asyncio.subprocess.Process, ready_marker: str) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._marker = ready_marker
        self._ready = asyncio.Event()
        self._line = asyncio.Event()  # replaced at every line: a wake-up for wait_for_line
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            if self._marker in line:
                self._ready.set()
            self._line.set()
            self._line = asyncio.Event()
        self._ready.set()  # at EOF too, so that wait_ready() can report the early exit
        self._line.set()

    async def wait_for_line(self, check: Callable[[str], bool], *, start: int = 0,
                            timeout: float = 20.0, what: str = "a line") -> str:
        """The first output line from index ``start`` on that ``check`` accepts, once printed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self.lines[start:]:
                if check(line):
                    return line
            start = len(self.lines)
            if self.proc.returncode is not None and self._reader.done():
                raise AssertionError(f"bot exited before printing {what}:\n{self.output}")
            event = self._line
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise AssertionError(f"no {what} within {timeout} s:\n{self.output}") from None

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"bot not ready after {timeout} s:\n{self.output}") from None
        if not any(self._marker in line for line in self.lines):
            raise AssertionError(f"bot exited before it was ready:\n{self.output}")

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a graceful shutdown), wait, and return the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                await self._reader
                raise AssertionError(
                    f"bot ignored SIGTERM for {timeout} s:\n{self.output}"
                ) from None
        await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode


async def wait_listening(url: str, child: Child, timeout: float = 10.0) -> None:
    """Wait until ``url`` accepts connections.

    Some frameworks (ErisPulse) start their server in a background task and print
    nothing when the socket listens, so this retries the connection: the one wait
    here that polls, because no event from another process exists to await.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientConnectionError:
                if child.proc.returncode is not None or loop.time() > deadline:
                    raise AssertionError(f"{url} never listened:\n{child.output}") from None
                await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def run_child(argv: list[str], *, cwd: Path, ready_marker: str,
                    listen_url: str | None = None, timeout: float = 40.0,
                    ) -> AsyncIterator[Child]:
    """Run a bot until a line of its output contains ``ready_marker`` (and, if given,
    ``listen_url`` accepts connections); on exit stop it with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=child_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    child = Child(proc, ready_marker)
    try:
        await child.wait_ready(timeout)
        if listen_url is not None:
            await wait_listening(listen_url, child)
        yield child
    finally:
        await child.stop()


def child_env() -> dict[str, str]:
    """The test process's environment without anything that could redirect a bot
    (YunHu settings, NoneBot's driver and server settings); a wide terminal so
    that log lines are not wrapped."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YUNHU_", "NONEBOT_")) and k not in
           ("DRIVER", "HOST", "PORT", "ENVIRONMENT", "LOG_LEVEL")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="400")
    return env


async def run_demo(demo: Path, *args: str, cwd: Path) -> tuple[int, str]:
    """Run an example's one-command ``demo.py`` to its end: its exit status and output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(demo), *args, cwd=cwd, env=child_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def modules_loaded_by_importing_yunhu_stream(top_level: str) -> list[str]:
    """The modules of package ``top_level`` that a fresh interpreter has loaded after
    ``import yunhu_stream, yunhu_stream.integrations``."""
    code = ("import json, sys, yunhu_stream, yunhu_stream.integrations; "
            "print(json.dumps(sorted(m for m in sys.modules "
            f"if m.split('.')[0] == {top_level!r})))")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    loaded: list[str] = json.loads(out)
    return loaded


async def post(url: str, body: Any) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        await resp.read()
        return resp.status


async def stream_into(emu: Emulator, recv_type: str, recv_id: str) -> StreamRecord:
    """The first send-stream request addressed to that chat, once it arrives."""
    def check() -> StreamRecord | None:
        return next((r for r in emu.streams
                     if (r.recv_type, r.recv_id) == (recv_type, recv_id)), None)
    return await emu.wait_until(check, what=f"a stream to {recv_type}:{recv_id}")


async def reply_text(emu: Emulator, recv_type: str, recv_id: str) -> str:
    """The text of the newest message in that chat, once it has stopped streaming."""
    message = await emu.wait_for_message(recv_type, recv_id, lambda m: not m.streaming)
    return message.text


# -- webhook bodies: yunhu_stream.testing builds them as YunHu sends them ----------------

BOT_ID = DEFAULT_BOT_ID
"""The bot's id: chatId/recvId of private chats in the bodies (NoneBot's app_id)."""


def message_body(text: str, *, chat_id: str = "307149245") -> dict[str, Any]:
    """A text message in group ``chat_id``."""
    return message_event(text, chat=f"group:{chat_id}")


def new_id() -> str:
    return str(uuid.uuid4().int % 10**9)


# -- what both integrations must do ----------------------------------------------------


class ReplyRoutingTests:
    """Replies stream into the right chat, whatever event they answer.

    A test module subclasses this as ``Test...`` and provides two fixtures: ``emu``,
    the emulator its bot streams into, and ``webhook`` (a :data:`Webhook`). Its bot's
    plugin must answer:

    - ``gated KEY``: write "first half, ", wait until ``resume KEY`` arrives, write
      "second half.";
    - ``echo TEXT``: "echo: " then TEXT;
    - ``announce GROUP``: stream to ``group:GROUP`` (not the chat it came from), as
      markdown, "**announcement** " then "from a plugin";
    - a follow: "thanks for following"; a shortcut menu: "menu " then its menuId;
      a button report: "you clicked " then its value.
    """

    async def test_chunks_reach_the_group_while_the_handler_is_still_writing(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A group message's reply is streamed into the group, its first chunk arriving
        before the handler has written the rest."""
        group, key = new_id(), new_id()
        await webhook(message_event(f"gated {key}", chat=f"group:{group}"))
        record = await stream_into(emu, "group", group)
        await record.wait_for_chunks(1)
        assert record.text == "first half, "
        assert not record.done  # the handler is parked on its gate, the request still open

        await webhook(message_event(f"resume {key}", chat=f"group:{group}"))
        await record.wait_done()
        assert record.completed and record.code == 1
        assert len(record.chunks) >= 2
        assert record.text == "first half, second half."
        [message] = emu.chat("group", group)
        assert message.streamed and message.text == "first half, second half."

    async def test_private_message_reply_goes_to_the_sender(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A private message (chatType bot, chatId the bot) is answered in the sender's chat."""
        user = new_id()
        await webhook(message_event("echo 你好", chat=f"user:{user}"))
        assert await reply_text(emu, "user", user) == "echo: 你好"
        assert emu.chat("user", BOT_ID) == []

    async def test_to_sends_to_the_named_group(self, emu: Emulator, webhook: Webhook) -> None:
        """stream(..., to="group:ID") streams into that group, with the content type asked."""
        here, there = new_id(), new_id()
        await webhook(message_event(f"announce {there}", chat=f"group:{here}"))
        record = await (await stream_into(emu, "group", there)).wait_done()
        assert record.content_type == "markdown"
        assert record.text == "**announcement** from a plugin"
        assert emu.chat("group", here) == []

    async def test_follow_event_reply_goes_to_the_user(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A bot.followed notice is answered in the new follower's private chat."""
        user = new_id()
        await webhook(follow_event(user))
        assert await reply_text(emu, "user", user) == "thanks for following"

    async def test_private_button_report_goes_to_who_clicked(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A private button report names the bot in recvId; the reply goes to userId."""
        user = new_id()
        await webhook(button_event("more", chat=f"user:{user}"))
        assert await reply_text(emu, "user", user) == "you clicked more"

    async def test_group_button_report_goes_to_the_group(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A button clicked in a group is answered in that group."""
        group = new_id()
        await webhook(button_event("ok", chat=f"group:{group}"))
        assert await reply_text(emu, "group", group) == "you clicked ok"

    async def test_shortcut_menu_in_a_group_is_answered_in_the_group(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A bot.shortcut.menu press in a group is answered in that group."""
        group = new_id()
        await webhook(menu_event("VO9SDAQ9", chat=f"group:{group}"))
        assert await reply_text(emu, "group", group) == "menu VO9SDAQ9"

    async def test_private_shortcut_menu_is_answered_to_who_pressed_it(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A private bot.shortcut.menu press is answered in the presser's chat."""
        user = new_id()
        await webhook(menu_event("VO9SDAQ9", chat=f"user:{user}"))
        assert await reply_text(emu, "user", user) == "menu VO9SDAQ9"
