"""The NoneBot2 plugin, end to end with the real framework.

A real NoneBot2 program (FastAPI driver served by uvicorn, httpx client driver,
``nonebot-adapter-yunhu``) runs as a child process on loopback. The tests POST
webhook JSON to the adapter's own route, ``/yunhu/<app_id>``; the matchers
stream their replies through ``yunhu_stream.integrations.nonebot`` into the
emulator, which runs in the test process. A child process keeps NoneBot's global
state (one driver per process, loguru, plugin registry) out of the test process.

The adapter's bot-info lookup goes to YunHu's web API, which cannot be reached
here, and its API host is hard-coded; ``EmulatorAdapter`` (shipped for exactly
this) answers the former and points the latter at the emulator.
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
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from yunhu_stream import errors
from yunhu_stream.emulator import Emulator, StreamRecord
from yunhu_stream.integrations._pool import BotPool

pytestmark = pytest.mark.anyio

def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


if not all(map(_installed, ("nonebot2", "nonebot-adapter-yunhu", "fastapi", "uvicorn", "httpx"))):
    _reason = ("the NoneBot2 tests need NoneBot2 with its FastAPI and httpx drivers and "
               "nonebot-adapter-yunhu: pip install -e '.[nonebot]' 'nonebot2[fastapi,httpx]'")
    if os.environ.get("CI"):
        raise RuntimeError(_reason)  # CI must run these: a skip there would hide a missing install
    pytest.skip(_reason, allow_module_level=True)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "nonebot_bot"
APP_ID = "37090343"
READY = "Uvicorn running on"

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


@contextlib.asynccontextmanager
async def run_child(argv: list[str], *, cwd: Path, env: dict[str, str],
                    ready_marker: str = READY, timeout: float = 30.0) -> AsyncIterator[Child]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    child = Child(proc, ready_marker)
    try:
        await child.wait_ready(timeout)
        yield child
    finally:
        await child.stop()


def child_env(**settings: str) -> dict[str, str]:
    """The test process's environment without anything that could redirect the bot."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YUNHU_", "NONEBOT_")) and k not in
           ("DRIVER", "HOST", "PORT", "ENVIRONMENT", "LOG_LEVEL")}
    env.update(PYTHONUNBUFFERED="1", **settings)
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
        "time": int(time.time() * 1000), "chatId": APP_ID, "chatType": "bot",
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
        "botId": APP_ID, "menuId": "VO9SDAQ9", "menuType": 1, "menuAction": 1,
        "chatId": chat_id, "chatType": chat_type, "senderType": "user",
        "senderId": user_id, "sendTime": int(time.time() * 1000),
    })


def new_id() -> str:
    return str(uuid.uuid4().int % 10**9)


# -- the NoneBot program the tests run -------------------------------------------------

TEST_BOT = """
from pathlib import Path

import nonebot

HERE = Path(__file__).parent
nonebot.init(_env_file=HERE / ".env")
driver = nonebot.get_driver()

from yunhu_stream.integrations.nonebot_emulator import EmulatorAdapter

driver.register_adapter(EmulatorAdapter)


@driver.on_shutdown  # registered before the plugin's hook, so it runs after it
async def _after_plugin_shutdown():
    from yunhu_stream import errors
    from yunhu_stream.integrations.nonebot import get_stream_bot

    for bot in nonebot.get_bots().values():
        try:
            get_stream_bot(bot)
        except errors.StreamClosedError as exc:
            print("after shutdown:", type(exc).__name__, flush=True)
        else:
            print("after shutdown: still open", flush=True)


nonebot.load_plugin("yunhu_stream.integrations.nonebot")
nonebot.load_plugin("test_plugins.streaming")
nonebot.run()
"""

TEST_PLUGIN = """
import asyncio

from nonebot import on, on_message, on_notice, require
from nonebot.adapters.yunhu import Bot, Event, MessageEvent
from nonebot.adapters.yunhu.event import BotFollowedNoticeEvent, ButtonReportNoticeEvent

require("yunhu_stream.integrations.nonebot")
from yunhu_stream.integrations.nonebot import stream

_gates = {}


def _gate(key):
    return _gates.setdefault(key, asyncio.Event())


def starts_with(prefix):
    async def rule(event: MessageEvent) -> bool:
        return event.get_plaintext().startswith(prefix)
    return rule


gated = on_message(rule=starts_with("gated "))


@gated.handle()
async def _(bot: Bot, event: MessageEvent):
    async with stream(bot, event) as s:
        await s.write("first half, ")
        await _gate(event.get_plaintext().split()[1]).wait()
        await s.write("second half.")


resume = on_message(rule=starts_with("resume "))


@resume.handle()
async def _(event: MessageEvent):
    _gate(event.get_plaintext().split()[1]).set()


echo = on_message(rule=starts_with("echo "))


@echo.handle()
async def _(bot: Bot, event: MessageEvent):
    async with stream(bot, event) as s:
        await s.write("echo: ")
        await s.write(event.get_plaintext().split(" ", 1)[1])


announce = on_message(rule=starts_with("announce "))


@announce.handle()
async def _(bot: Bot, event: MessageEvent):
    group = event.get_plaintext().split()[1]
    async with stream(bot, to=f"group:{group}", content_type="markdown") as s:
        await s.write("**announcement** ")
        await s.write("from a matcher")


misuse = on_message(rule=starts_with("misuse"))


@misuse.handle()
async def _(bot: Bot, event: MessageEvent):
    problems = []
    for call in (lambda: stream(bot, to="channel:1"),
                 lambda: stream(bot),
                 lambda: stream(bot, event, to="group:1"),
                 lambda: stream(object(), event)):
        try:
            call()
        except (TypeError, ValueError) as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
    async with stream(bot, event) as s:
        await s.write("\\n".join(problems))


followed = on_notice()


@followed.handle()
async def _(bot: Bot, event: BotFollowedNoticeEvent):
    async with stream(bot, event) as s:
        await s.write("thanks for following")


menu = on("bot.shortcut.menu")


@menu.handle()
async def _(bot: Bot, event: Event):
    async with stream(bot, event) as s:
        await s.write("menu ")
        await s.write(event.event["menuId"])


clicked = on_notice()


@clicked.handle()
async def _(bot: Bot, event: ButtonReportNoticeEvent):
    async with stream(bot, event) as s:
        await s.write("you clicked ")
        await s.write(event.event.value)
"""


def write_test_bot(root: Path, emu: Emulator, port: int) -> None:
    (root / "test_plugins").mkdir(parents=True, exist_ok=True)
    (root / "bot.py").write_text(textwrap.dedent(TEST_BOT), encoding="utf-8")
    (root / "test_plugins" / "streaming.py").write_text(TEST_PLUGIN, encoding="utf-8")
    env_file = {
        "DRIVER": "~fastapi+~httpx",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "YUNHU_BOTS": json.dumps([{"app_id": APP_ID, "token": emu.token}]),
        "YUNHU_STREAM_BASE_URL": emu.base_url,
    }
    (root / ".env").write_text(
        "".join(f"{key}={value}\n" for key, value in env_file.items()), encoding="utf-8"
    )


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
    """Start the test bot once; yield a function that POSTs a body to its YunHu route."""
    root = tmp_path_factory.mktemp("nonebot_app")
    port = free_port()
    write_test_bot(root, emu, port)
    async with run_child([sys.executable, "bot.py"], cwd=root, env=child_env()):
        url = f"http://127.0.0.1:{port}/yunhu/{APP_ID}"

        async def send(body: Any) -> None:
            assert await post(url, body) == 200

        yield send


# -- tests -----------------------------------------------------------------------------


class TestStreamsFromMatchers:
    async def test_chunks_reach_the_group_while_the_matcher_is_still_writing(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A group message's reply is streamed into the group, its first chunk arriving
        before the matcher has written the rest."""
        group, key = new_id(), new_id()
        await webhook(message_body(f"gated {key}", chat_id=group))
        record = await stream_into(emu, "group", group)
        await record.wait_for_chunks(1)
        assert record.text == "first half, "
        assert not record.done  # the matcher is parked on its gate, the request still open

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
        await webhook(message_body("echo 你好", chat_type="bot", chat_id=APP_ID, sender_id=user))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "echo: 你好"
        assert emu.chat("user", APP_ID) == []

    async def test_to_sends_to_the_named_group(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """stream(bot, to="group:ID") streams into that group, with the content type asked."""
        here, there = new_id(), new_id()
        await webhook(message_body(f"announce {there}", chat_id=here))
        record = await (await stream_into(emu, "group", there)).wait_done()
        assert record.content_type == "markdown"
        assert record.text == "**announcement** from a matcher"
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
        await webhook(button_body(user, recv_type="bot", recv_id=APP_ID, value="more"))
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
        await webhook(menu_body(user, chat_type="bot", chat_id=APP_ID))
        message = await emu.wait_for_message("user", user, lambda m: not m.streaming)
        assert message.text == "menu VO9SDAQ9"


class TestMisuse:
    async def test_bad_calls_raise_errors_that_say_what_is_accepted(
        self, emu: Emulator, webhook: Callable[[Any], Any]
    ) -> None:
        """A bad to=, no target, two targets and a foreign bot each raise a clear error."""
        group = new_id()
        await webhook(message_body("misuse", chat_id=group))
        message = await emu.wait_for_message("group", group, lambda m: not m.streaming)
        problems = message.text.split("\n")
        assert problems[0].startswith("ValueError: cannot use 'channel:1' as a recipient")
        assert "'group:ID'" in problems[0]
        assert problems[1] == problems[2] == (
            "TypeError: stream() needs exactly one of: an event to reply to, or to="
        )
        assert problems[3].startswith("TypeError: yunhu-stream needs a nonebot.adapters.yunhu.Bot")
        assert len(problems) == 4


class TestLifespan:
    async def test_sessions_open_at_startup_and_close_at_shutdown(
        self, emu: Emulator, tmp_path: Path
    ) -> None:
        """The driver's startup opens a Bot per configured adapter bot; its shutdown
        closes them, after which streams are refused."""
        port = free_port()
        write_test_bot(tmp_path, emu, port)
        async with run_child([sys.executable, "bot.py"], cwd=tmp_path, env=child_env()) as bot:
            assert "nonebot_plugin_started" in bot.output
            assert "bots=1" in bot.output
            assert "nonebot_plugin_stopped" not in bot.output
        assert bot.proc.returncode in (0, -signal.SIGTERM), bot.output
        assert "integration_bots_closed" in bot.output
        assert "nonebot_plugin_stopped" in bot.output
        assert "after shutdown: StreamClosedError" in bot.output
        assert emu.token not in bot.output  # the token never reaches a log line


class TestExample:
    async def test_the_examples_one_command_demo_streams_a_reply(self, tmp_path: Path) -> None:
        """`python examples/nonebot_bot/demo.py` runs the example bot against the emulator
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


class TestBotPool:
    """The per-token Bot holder both integrations use (no framework needed)."""

    async def test_refuses_streams_before_open_and_after_close(self) -> None:
        """A closed pool raises StreamClosedError saying the framework is not running."""
        pool = BotPool("test-owner")
        with pytest.raises(errors.StreamClosedError, match="test-owner is not running"):
            pool.get("token")
        await pool.open({})
        pool.get("token")
        await pool.aclose()
        await pool.aclose()  # idempotent
        with pytest.raises(errors.StreamClosedError):
            pool.get("token")

    async def test_open_checks_options_before_any_message(self) -> None:
        """Bad Bot options fail at open(), with the Bot's own ConfigurationError."""
        pool = BotPool("test-owner")
        with pytest.raises(errors.ConfigurationError, match="base_url"):
            await pool.open({"base_url": "ftp://example.com"})
        with pytest.raises(errors.ConfigurationError, match="response_timeout"):
            await pool.open({"response_timeout": 0})
        with pytest.raises(errors.StreamClosedError):
            pool.get("token")

    async def test_one_bot_per_token_all_closed_together(self, emulator: Emulator) -> None:
        """Each token gets one Bot that really streams; aclose() closes every one."""
        pool = BotPool("test-owner")
        await pool.open({"base_url": emulator.base_url})
        bot = pool.get(emulator.token)
        assert pool.get(emulator.token) is bot
        other = pool.get("another-token")
        assert other is not bot and len(pool) == 2
        with pytest.raises(errors.ConfigurationError, match="no token"):
            pool.get("")
        async with bot.stream("group:1") as s:
            await s.write("hi")
        assert emulator.chat("group", "1")[-1].text == "hi"
        await pool.aclose()
        assert len(pool) == 0
        with pytest.raises(errors.StreamClosedError):  # the Bot itself is closed too
            await bot.send("group:2", "too late")
        assert emulator.chat("group", "2") == []
        await pool.open({"base_url": emulator.base_url})  # a framework may start again
        assert pool.get(emulator.token) is not bot
        await pool.aclose()


class TestImports:
    async def test_importing_yunhu_stream_does_not_import_nonebot(self) -> None:
        """`import yunhu_stream` (and its integrations package) never pulls in NoneBot."""
        code = ("import sys, yunhu_stream, yunhu_stream.integrations; "
                "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nonebot'))")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        assert out.decode().strip() == "[]"

    @pytest.mark.parametrize("module", ["nonebot", "nonebot_emulator"])
    def test_missing_nonebot_names_the_extra(
        self, module: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without NoneBot installed the import fails with the pip extra to install."""
        monkeypatch.setitem(sys.modules, "nonebot", None)
        monkeypatch.delitem(sys.modules, f"yunhu_stream.integrations.{module}", raising=False)
        with pytest.raises(ImportError, match=r"pip install 'yunhu-stream\[nonebot\]'"):
            __import__(f"yunhu_stream.integrations.{module}")
