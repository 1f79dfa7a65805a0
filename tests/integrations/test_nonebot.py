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

import json
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests._paths import EXAMPLES
from tests.integrations._frameworks import (
    BOT_ID,
    ReplyRoutingTests,
    Webhook,
    free_port,
    message_body,
    modules_loaded_by_importing_yunhu_stream,
    new_id,
    post,
    reply_text,
    require,
    run_child,
    run_demo,
)
from yunhu_stream import errors
from yunhu_stream.emulator import Emulator
from yunhu_stream.integrations._pool import BotPool

pytestmark = pytest.mark.anyio

require(("nonebot2", "nonebot-adapter-yunhu", "fastapi", "uvicorn", "httpx"),
        "pip install -e '.[nonebot]' 'nonebot2[fastapi,httpx]'")

EXAMPLE_DIR = EXAMPLES / "nonebot_bot"
APP_ID = BOT_ID  # the adapter's name for the bot's id
READY = "Uvicorn running on"


# -- the NoneBot program the tests run -------------------------------------------------

TEST_BOT = """
import logging
import sys

# The application asks to see the library's events (it is silent otherwise).
_handler = logging.StreamHandler(sys.stdout)
logging.getLogger("yunhu_stream").addHandler(_handler)
logging.getLogger("yunhu_stream").setLevel(logging.DEBUG)
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
        except errors.BotClosedError as exc:
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
        await s.write("from a plugin")


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
                  ) -> AsyncIterator[Webhook]:
    """Start the test bot once; yield a function that POSTs a body to its YunHu route."""
    root = tmp_path_factory.mktemp("nonebot_app")
    port = free_port()
    write_test_bot(root, emu, port)
    async with run_child([sys.executable, "bot.py"], cwd=root, ready_marker=READY):
        url = f"http://127.0.0.1:{port}/yunhu/{APP_ID}"

        async def send(body: dict[str, Any]) -> None:
            assert await post(url, body) == 200

        yield send


# -- tests -----------------------------------------------------------------------------


class TestStreamsFromMatchers(ReplyRoutingTests):
    """The shared routing tests (see ReplyRoutingTests), with NoneBot matchers answering."""


class TestMisuse:
    async def test_bad_calls_raise_errors_that_say_what_is_accepted(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A bad to=, no target, two targets and a foreign bot each raise a clear error."""
        group = new_id()
        await webhook(message_body("misuse", chat_id=group))
        problems = (await reply_text(emu, "group", group)).split("\n")
        assert problems[0].startswith("ConfigurationError: cannot use 'channel:1' as a recipient")
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
        async with run_child([sys.executable, "bot.py"], cwd=tmp_path, ready_marker=READY) as bot:
            assert "nonebot_plugin_started" in bot.output
            assert "bots=1" in bot.output
            assert "nonebot_plugin_stopped" not in bot.output
        assert bot.proc.returncode in (0, -signal.SIGTERM), bot.output
        assert "integration_bots_closed" in bot.output
        assert "nonebot_plugin_stopped" in bot.output
        assert "after shutdown: BotClosedError" in bot.output
        assert emu.token not in bot.output  # the token never reaches a log line


class TestExample:
    async def test_the_examples_one_command_demo_streams_a_reply(self, tmp_path: Path) -> None:
        """`python examples/nonebot_bot/demo.py` runs the example bot against the emulator
        and sees its reply arrive in the group in more than one chunk."""
        status, output = await run_demo(EXAMPLE_DIR / "demo.py", "你好", cwd=tmp_path)
        assert status == 0, output
        assert "group 307149245 now shows: 你说的是「你好」。" in output
        assert "streamed in" in output and "FAILED" not in output


class TestBotPool:
    """The per-token Bot holder both integrations use (no framework needed)."""

    async def test_refuses_streams_before_open_and_after_close(self) -> None:
        """A closed pool raises BotClosedError saying the framework is not running."""
        pool = BotPool("test-owner")
        with pytest.raises(errors.BotClosedError, match="test-owner is not running"):
            pool.get("token")
        await pool.open({})
        pool.get("token")
        await pool.aclose()
        await pool.aclose()  # idempotent
        with pytest.raises(errors.BotClosedError):
            pool.get("token")

    async def test_open_checks_options_before_any_message(self) -> None:
        """Bad Bot options fail at open(), with the Bot's own ConfigurationError."""
        pool = BotPool("test-owner")
        with pytest.raises(errors.ConfigurationError, match="base_url"):
            await pool.open({"base_url": "ftp://example.com"})
        with pytest.raises(errors.ConfigurationError, match="response_timeout"):
            await pool.open({"response_timeout": 0})
        with pytest.raises(errors.BotClosedError):
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
        with pytest.raises(errors.BotClosedError):  # the Bot itself is closed too
            await bot.send("group:2", "too late")
        assert emulator.chat("group", "2") == []
        await pool.open({"base_url": emulator.base_url})  # a framework may start again
        assert pool.get(emulator.token) is not bot
        await pool.aclose()


class TestImports:
    async def test_importing_yunhu_stream_does_not_import_nonebot(self) -> None:
        """`import yunhu_stream` (and its integrations package) never pulls in NoneBot."""
        assert await modules_loaded_by_importing_yunhu_stream("nonebot") == []

    @pytest.mark.parametrize("module", ["nonebot", "nonebot_emulator"])
    def test_missing_nonebot_names_the_extra(
        self, module: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without NoneBot installed the import fails with the pip extra to install."""
        monkeypatch.setitem(sys.modules, "nonebot", None)
        monkeypatch.delitem(sys.modules, f"yunhu_stream.integrations.{module}", raising=False)
        with pytest.raises(ImportError, match=r"pip install 'yunhu-stream\[nonebot\]'"):
            __import__(f"yunhu_stream.integrations.{module}")
