"""The ErisPulse module, end to end with the real framework.

A real ErisPulse program (its uvicorn router, ``ErisPulse-YunhuAdapter`` in webhook
mode) runs as a child process on loopback, in a project directory made for the
test. ``YunhuStream`` is found through its ``erispulse.module`` entry point, as
for users; the test handlers are a local plugin. The tests POST webhook JSON to
the adapter's own route, ``/yunhu_default/webhook``; the handlers stream their
replies through ``yunhu_stream.integrations.erispulse`` into the emulator, which
runs in the test process. ``Yunhu_Adapter.base_url`` points the adapter, and with
it the module, at the emulator.

ErisPulse is never imported here: importing it starts threads and writes a
``config/`` directory into the working directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from yunhu_stream.emulator import Emulator, StreamRecord

pytestmark = pytest.mark.anyio


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


if not all(map(_installed, ("ErisPulse", "ErisPulse-YunhuAdapter"))):
    _reason = ("the ErisPulse tests need ErisPulse and ErisPulse-YunhuAdapter: "
               "pip install -e '.[erispulse]'")
    if os.environ.get("CI"):
        raise RuntimeError(_reason)  # CI must run these: a skip there would hide a missing install
    pytest.skip(_reason, allow_module_level=True)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "erispulse_bot"
ACCOUNT = "default"
READY = "PROBE: yunhu adapter started"

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
        self._ready.set()  # at EOF too, so that wait_ready() can report the early exit

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

    ErisPulse starts uvicorn in a background task and nothing in its output says
    when the socket listens, so this retries the connection: the one wait here
    that polls, because no event from another process exists to await.
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
async def run_child(argv: list[str], *, cwd: Path, env: dict[str, str], listen_url: str,
                    ready_marker: str = READY, timeout: float = 40.0) -> AsyncIterator[Child]:
    """Run a bot until its YunHu adapter has started and ``listen_url`` accepts connections."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    child = Child(proc, ready_marker)
    try:
        await child.wait_ready(timeout)
        await wait_listening(listen_url, child)
        yield child
    finally:
        await child.stop()


def child_env() -> dict[str, str]:
    """The test process's environment without anything that could redirect the bot;
    a wide terminal so that ErisPulse's log lines are not wrapped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHU_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="400")
    return env


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


# -- realistic webhook bodies (shapes as YunHu sends them; ids made up) ---------------

SENDER = "7756242"
BOT_ID = "37090343"


def _envelope(event_type: str, event: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"version": "1.0",
            "header": {"eventId": uuid.uuid4().hex, "eventType": event_type, "eventTime": now},
            "event": event}


def message_body(text: str, *, chat_type: str = "group", chat_id: str = "307149245",
                 sender_id: str = SENDER) -> dict[str, Any]:
    """A text message; private chats have chatType "bot" and the bot's id as chatId."""
    now = int(time.time() * 1000)
    return _envelope("message.receive.normal", {
        "sender": {"senderId": sender_id, "senderType": "user", "senderUserLevel": "member",
                   "senderNickname": "小明",
                   "senderAvatarUrl": "https://chat-img.jwznb.com/c07a80a9e21dd8d1.jpg"},
        "chat": {"chatId": chat_id, "chatType": chat_type},
        "message": {"msgId": uuid.uuid4().hex, "parentId": "", "sendTime": now,
                    "chatId": chat_id, "chatType": chat_type, "contentType": "text",
                    "content": {"text": text}, "commandId": 0, "commandName": ""},
    })


def followed_body(user_id: str) -> dict[str, Any]:
    return _envelope("bot.followed", {
        "time": int(time.time() * 1000), "chatId": BOT_ID, "chatType": "bot",
        "userId": user_id, "nickname": "小明",
        "avatarUrl": "https://chat-img.jwznb.com/c07a80a9e21dd8d1.jpg",
    })


def button_body(user_id: str, *, recv_type: str, recv_id: str, value: str) -> dict[str, Any]:
    return _envelope("button.report.inline", {
        "time": int(time.time() * 1000), "msgId": uuid.uuid4().hex,
        "recvId": recv_id, "recvType": recv_type, "userId": user_id, "value": value,
    })


def menu_body(user_id: str, *, chat_type: str, chat_id: str) -> dict[str, Any]:
    """A shortcut-menu press: an event type the framework's adapter has no model for."""
    return _envelope("bot.shortcut.menu", {
        "botId": BOT_ID, "menuId": "VO9SDAQ9", "menuType": 1, "menuAction": 1,
        "chatId": chat_id, "chatType": chat_type, "senderType": "user",
        "senderId": user_id, "sendTime": int(time.time() * 1000),
    })


def new_id() -> str:
    return str(uuid.uuid4().int % 10**9)


# -- the ErisPulse project the tests run -----------------------------------------------

MAIN = """
import asyncio

from ErisPulse import sdk

asyncio.run(sdk.run())

# sdk.run() returns after ErisPulse has unloaded every module.
from yunhu_stream import errors
from yunhu_stream.integrations.erispulse import stream

try:
    stream(to="group:1")
except errors.StreamClosedError as exc:
    print("after shutdown:", type(exc).__name__, flush=True)
else:
    print("after shutdown: still open", flush=True)
"""

# Says when the YunHu adapter has started, i.e. its webhook route is registered.
PROBE_PLUGIN = """
from ErisPulse import BaseModule, lifecycle
from ErisPulse.loaders import ModuleLoadStrategy


class Main(BaseModule):
    def __init__(self, sdk=None):
        self.sdk = sdk

    @staticmethod
    def get_load_strategy():
        return ModuleLoadStrategy(lazy_load=False)

    async def on_load(self, event):
        @lifecycle.on("adapter.status.change")
        async def _started(data):
            info = data.get("data") or {}
            if info.get("platform") == "yunhu" and info.get("status") == "started":
                print("PROBE: yunhu adapter started", flush=True)
        return True

    async def on_unload(self, event):
        return True
"""

TEST_PLUGIN = """
import asyncio

from ErisPulse import BaseModule, message, notice
from ErisPulse.loaders import ModuleLoadStrategy

from yunhu_stream.integrations.erispulse import stream

_gates = {}


def _gate(key):
    return _gates.setdefault(key, asyncio.Event())


class Main(BaseModule):
    def __init__(self, sdk=None):
        self.sdk = sdk

    @staticmethod
    def get_load_strategy():
        return ModuleLoadStrategy(lazy_load=False)

    async def on_load(self, event):
        @message.on_message()
        async def on_text(event):
            text = event.get_text()
            word, _, rest = text.partition(" ")
            if word == "gated":
                async with stream(event) as s:
                    await s.write("first half, ")
                    await _gate(rest).wait()
                    await s.write("second half.")
            elif word == "resume":
                _gate(rest).set()
            elif word == "echo":
                async with stream(event) as s:
                    await s.write("echo: ")
                    await s.write(rest)
            elif word == "via-sdk":
                async with self.sdk.YunhuStream.stream(event, account="default") as s:
                    await s.write("through sdk.YunhuStream")
            elif word == "announce":
                async with stream(to=f"group:{rest}", content_type="markdown") as s:
                    await s.write("**announcement** ")
                    await s.write("from a handler")
            elif word == "misuse":
                problems = []
                for call in (lambda: stream(to="channel:1"),
                             lambda: stream(),
                             lambda: stream(event, to="group:1"),
                             lambda: stream({"platform": "telegram", "user_id": "1"}),
                             lambda: stream(event, account="nobody")):
                    try:
                        call()
                    except (TypeError, ValueError) as exc:
                        problems.append(f"{type(exc).__name__}: {exc}")
                async with stream(event) as s:
                    await s.write("\\n".join(problems))

        @notice.on_friend_add()
        async def on_follow(event):
            async with stream(event) as s:
                await s.write("thanks for following")

        @notice.on_notice()
        async def on_menu(event):
            if event.get_detail_type() != "yunhu_shortcut_menu":
                return
            async with stream(event) as s:
                await s.write("menu ")
                await s.write(event["yunhu_raw"]["event"]["menuId"])

        @notice.on_notice()
        async def on_button(event):
            if event.get_detail_type() != "yunhu_button_click":
                return
            async with stream(event) as s:
                await s.write("you clicked ")
                await s.write(event["yunhu_button"]["value"])

        return True

    async def on_unload(self, event):
        return True
"""


def write_config(root: Path, emu: Emulator, port: int) -> None:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "config.toml").write_text(f"""
[ErisPulse.server]
host = "127.0.0.1"
port = {port}

[Yunhu_Adapter]
base_url = "{emu.base_url}"

[Yunhu_Adapter.accounts.{ACCOUNT}]
token = "{emu.token}"
mode = "webhook"
webhook_path = "/webhook"
enabled = true
""", encoding="utf-8")


def write_project(root: Path, emu: Emulator, port: int) -> None:
    (root / "plugins").mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(MAIN, encoding="utf-8")
    (root / "plugins" / "probe.py").write_text(PROBE_PLUGIN, encoding="utf-8")
    (root / "plugins" / "streaming.py").write_text(TEST_PLUGIN, encoding="utf-8")
    write_config(root, emu, port)


def webhook_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/yunhu_{ACCOUNT}/webhook"


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def emu(anyio_backend: str) -> AsyncIterator[Emulator]:
    """One emulator for the module's bot process; every test uses its own chat ids."""
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def webhook(emu: Emulator, tmp_path_factory: pytest.TempPathFactory,
                  ) -> AsyncIterator[Callable[[Any], Any]]:
    """Start the test project once; yield a function that POSTs a body to its YunHu route."""
    root = tmp_path_factory.mktemp("erispulse_app")
    port = free_port()
    write_project(root, emu, port)
    async with run_child([sys.executable, "main.py"], cwd=root, env=child_env(),
                         listen_url=webhook_url(port)):
        async def send(body: Any) -> None:
            assert await post(webhook_url(port), body) == 200

        yield send


# -- tests -----------------------------------------------------------------------------


class TestPackaging:
    def test_module_is_registered_under_the_erispulse_entry_point(self) -> None:
        """The installed package advertises YunhuStream in the erispulse.module group."""
        entry = {ep.name: ep.value
                 for ep in importlib.metadata.entry_points(group="erispulse.module")}
        assert entry.get("YunhuStream") == "yunhu_stream.integrations.erispulse:YunhuStream"


class TestStreamsFromHandlers:
    async def test_chunks_reach_the_group_while_the_handler_is_still_writing(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A group message's reply is streamed into the group, its first chunk arriving
        before the handler has written the rest."""
        group, key = new_id(), new_id()
        await webhook(message_body(f"gated {key}", chat_id=group))
        record = await stream_into(emu, "group", group)
        await record.wait_for_chunks(1)
        assert record.text == "first half, "
        assert not record.done  # the handler is parked on its gate, the request still open

        await webhook(message_body(f"resume {key}", chat_id=group))
        await record.wait_done()
        assert record.completed and record.code == 1
        assert len(record.chunks) >= 2
        assert record.text == "first half, second half."
        [message] = emu.chat("group", group)
        assert message.streamed and message.text == "first half, second half."

    async def test_private_message_reply_goes_to_the_sender(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A private message (chatType bot, chatId the bot) is answered in the sender's chat."""
        user = new_id()
        await webhook(message_body("echo 你好", chat_type="bot", chat_id=BOT_ID, sender_id=user))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "echo: 你好"
        assert emu.chat("user", BOT_ID) == []

    async def test_module_instance_streams_with_a_named_account(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """sdk.YunhuStream.stream(event, account=...) streams with that account's token."""
        group = new_id()
        await webhook(message_body("via-sdk", chat_id=group))
        message = await emu.wait_for_message("group", group, lambda m: not m.streaming)
        assert message.text == "through sdk.YunhuStream"

    async def test_to_sends_to_the_named_group(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """stream(to="group:ID") streams into that group, with the content type asked."""
        here, there = new_id(), new_id()
        await webhook(message_body(f"announce {there}", chat_id=here))
        record = await (await stream_into(emu, "group", there)).wait_done()
        assert record.content_type == "markdown"
        assert record.text == "**announcement** from a handler"
        assert emu.chat("group", here) == []

    async def test_follow_event_reply_goes_to_the_user(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A bot.followed notice is answered in the new follower's private chat."""
        user = new_id()
        await webhook(followed_body(user))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "thanks for following"

    async def test_private_button_report_goes_to_who_clicked(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A private button report names the bot in recvId; the reply goes to userId."""
        user = new_id()
        await webhook(button_body(user, recv_type="bot", recv_id=BOT_ID, value="more"))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "you clicked more"

    async def test_group_button_report_goes_to_the_group(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A button clicked in a group is answered in that group."""
        group = new_id()
        await webhook(button_body(SENDER, recv_type="group", recv_id=group, value="ok"))
        message = await emu.wait_for_message("group", group, lambda m: not m.streaming)
        assert message.text == "you clicked ok"


    async def test_shortcut_menu_in_a_group_is_answered_in_the_group(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A bot.shortcut.menu press in a group is answered in that group."""
        group = new_id()
        await webhook(menu_body(SENDER, chat_type="group", chat_id=group))
        message = await emu.wait_for_message("group", group, lambda m: not m.streaming)
        assert message.text == "menu VO9SDAQ9"

    async def test_private_shortcut_menu_is_answered_to_who_pressed_it(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A private bot.shortcut.menu press is answered in the presser's chat."""
        user = new_id()
        await webhook(menu_body(user, chat_type="bot", chat_id=BOT_ID))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "menu VO9SDAQ9"


class TestMisuse:
    async def test_bad_calls_raise_errors_that_say_what_is_accepted(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A bad to=, no target, two targets, another platform's event and an unknown
        account each raise a clear error."""
        group = new_id()
        await webhook(message_body("misuse", chat_id=group))
        message = await emu.wait_for_message("group", group, lambda m: not m.streaming)
        problems = message.text.split("\n")
        assert problems[0].startswith("ValueError: cannot use 'channel:1' as a recipient")
        assert problems[1] == problems[2] == (
            "TypeError: stream() needs exactly one of: an event to reply to, or to="
        )
        assert problems[3].startswith("TypeError: cannot stream a reply to a 'telegram' event")
        assert problems[4] == ("ConfigurationError: no enabled YunHu account named 'nobody'; "
                               "Yunhu_Adapter.accounts has ['default']")
        assert len(problems) == 5


class TestLifecycle:
    async def test_module_opens_on_load_and_closes_on_unload(
        self, emu: Emulator, tmp_path: Path
    ) -> None:
        """ErisPulse loads YunhuStream at start-up and unloads it at shutdown, closing
        its Bots; afterwards streams are refused."""
        port = free_port()
        write_project(tmp_path, emu, port)
        async with run_child([sys.executable, "main.py"], cwd=tmp_path, env=child_env(),
                             listen_url=webhook_url(port)) as bot:
            assert "erispulse_module_loaded" in bot.output
            group = new_id()
            assert await post(webhook_url(port), message_body("echo hi", chat_id=group)) == 200
            await (await stream_into(emu, "group", group)).wait_done()
            assert "erispulse_module_unloaded" not in bot.output
        assert bot.proc.returncode == 0, bot.output
        assert "integration_bots_closed" in bot.output
        assert "erispulse_module_unloaded" in bot.output
        assert "after shutdown: StreamClosedError" in bot.output
        assert emu.token not in bot.output  # the token never reaches a log line


class TestExample:
    async def test_the_examples_one_command_demo_streams_a_reply(self, tmp_path: Path) -> None:
        """`python examples/erispulse_bot/demo.py` runs the example bot against the emulator
        and sees its reply arrive in the group in more than one chunk."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE_DIR / "demo.py"), "你好", cwd=tmp_path, env=child_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        output = out.decode("utf-8", "replace")
        assert proc.returncode == 0, output
        assert "group 307149245 now shows: 你说的是「你好」。" in output
        assert "streamed in" in output and "FAILED" not in output


class TestImports:
    async def test_importing_yunhu_stream_does_not_import_erispulse(self) -> None:
        """`import yunhu_stream` (and its integrations package) never pulls in ErisPulse."""
        code = ("import sys, yunhu_stream, yunhu_stream.integrations; "
                "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ErisPulse'))")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        assert out.decode().strip() == "[]"

    def test_missing_erispulse_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ErisPulse installed the import fails with the pip extra to install."""
        monkeypatch.setitem(sys.modules, "ErisPulse", None)
        monkeypatch.delitem(sys.modules, "yunhu_stream.integrations.erispulse", raising=False)
        with pytest.raises(ImportError, match=r"pip install 'yunhu-stream\[erispulse\]'"):
            __import__("yunhu_stream.integrations.erispulse")
