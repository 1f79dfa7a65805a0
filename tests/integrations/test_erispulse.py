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

import importlib.metadata
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests._paths import EXAMPLES
from tests.integrations._frameworks import (
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
    stream_into,
)
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

require(("ErisPulse", "ErisPulse-YunhuAdapter"), "pip install -e '.[erispulse]'")

EXAMPLE_DIR = EXAMPLES / "erispulse_bot"
ACCOUNT = "default"
READY = "PROBE: yunhu adapter started"


# -- the ErisPulse project the tests run -----------------------------------------------

MAIN = """
import logging
import sys

# The application asks to see the library's events (it is silent otherwise).
_handler = logging.StreamHandler(sys.stdout)
logging.getLogger("yunhu_stream").addHandler(_handler)
logging.getLogger("yunhu_stream").setLevel(logging.DEBUG)
import asyncio

from ErisPulse import sdk

asyncio.run(sdk.run())

# sdk.run() returns after ErisPulse has unloaded every module.
from yunhu_stream import errors
from yunhu_stream.integrations.erispulse import stream

try:
    stream(to="group:1")
except errors.BotClosedError as exc:
    print("after shutdown:", type(exc).__name__, flush=True)
else:
    print("after shutdown: still open", flush=True)
"""

TEST_PLUGIN = """
import asyncio

from ErisPulse import BaseModule, lifecycle, message, notice
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
        @lifecycle.on("adapter.status.change")
        async def on_adapter_status(data):
            # Tells the test when the adapter has started, i.e. its webhook route exists.
            info = data.get("data") or {}
            if info.get("platform") == "yunhu" and info.get("status") == "started":
                print("PROBE: yunhu adapter started", flush=True)

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
                    await s.write("from a plugin")
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
        async def on_menu_or_button(event):
            kind = event.get_detail_type()
            if kind == "yunhu_shortcut_menu":
                said, value = "menu ", event["yunhu_raw"]["event"]["menuId"]
            elif kind == "yunhu_button_click":
                said, value = "you clicked ", event["yunhu_button"]["value"]
            else:
                return
            async with stream(event) as s:
                await s.write(said)
                await s.write(value)

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
                  ) -> AsyncIterator[Webhook]:
    """Start the test project once; yield a function that POSTs a body to its YunHu route."""
    root = tmp_path_factory.mktemp("erispulse_app")
    port = free_port()
    write_project(root, emu, port)
    async with run_child([sys.executable, "main.py"], cwd=root, ready_marker=READY,
                         listen_url=webhook_url(port)):
        async def send(body: dict[str, Any]) -> None:
            assert await post(webhook_url(port), body) == 200

        yield send


# -- tests -----------------------------------------------------------------------------


class TestPackaging:
    def test_module_is_registered_under_the_erispulse_entry_point(self) -> None:
        """The installed package advertises YunhuStream in the erispulse.module group."""
        entry = {ep.name: ep.value
                 for ep in importlib.metadata.entry_points(group="erispulse.module")}
        assert entry.get("YunhuStream") == "yunhu_stream.integrations.erispulse:YunhuStream"


class TestStreamsFromHandlers(ReplyRoutingTests):
    """The shared routing tests (see ReplyRoutingTests), with ErisPulse handlers answering;
    and the module's own stream() on ``sdk.YunhuStream``."""

    async def test_module_instance_streams_with_a_named_account(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """sdk.YunhuStream.stream(event, account=...) streams with that account's token."""
        group = new_id()
        await webhook(message_body("via-sdk", chat_id=group))
        assert await reply_text(emu, "group", group) == "through sdk.YunhuStream"


class TestMisuse:
    async def test_bad_calls_raise_errors_that_say_what_is_accepted(
        self, emu: Emulator, webhook: Webhook
    ) -> None:
        """A bad to=, no target, two targets, another platform's event and an unknown
        account each raise a clear error."""
        group = new_id()
        await webhook(message_body("misuse", chat_id=group))
        problems = (await reply_text(emu, "group", group)).split("\n")
        assert problems[0].startswith("ConfigurationError: cannot use 'channel:1' as a recipient")
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
        async with run_child([sys.executable, "main.py"], cwd=tmp_path, ready_marker=READY,
                             listen_url=webhook_url(port)) as bot:
            assert "erispulse_module_loaded" in bot.output
            group = new_id()
            assert await post(webhook_url(port), message_body("echo hi", chat_id=group)) == 200
            await (await stream_into(emu, "group", group)).wait_done()
            assert "erispulse_module_unloaded" not in bot.output
        assert bot.proc.returncode == 0, bot.output
        assert "integration_bots_closed" in bot.output
        assert "erispulse_module_unloaded" in bot.output
        assert "after shutdown: BotClosedError" in bot.output
        assert emu.token not in bot.output  # the token never reaches a log line


class TestExample:
    async def test_the_examples_one_command_demo_streams_a_reply(self, tmp_path: Path) -> None:
        """`python examples/erispulse_bot/demo.py` runs the example bot against the emulator
        and sees its reply arrive in the group in more than one chunk."""
        status, output = await run_demo(EXAMPLE_DIR / "demo.py", "你好", cwd=tmp_path)
        assert status == 0, output
        assert "group 307149245 now shows: 你说的是「你好」。" in output
        assert "streamed in" in output and "FAILED" not in output


class TestImports:
    async def test_importing_yunhu_stream_does_not_import_erispulse(self) -> None:
        """`import yunhu_stream` (and its integrations package) never pulls in ErisPulse."""
        assert await modules_loaded_by_importing_yunhu_stream("ErisPulse") == []

    def test_missing_erispulse_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ErisPulse installed the import fails with the pip extra to install."""
        monkeypatch.setitem(sys.modules, "ErisPulse", None)
        monkeypatch.delitem(sys.modules, "yunhu_stream.integrations.erispulse", raising=False)
        with pytest.raises(ImportError, match=r"pip install 'yunhu-stream\[erispulse\]'"):
            __import__("yunhu_stream.integrations.erispulse")
