"""ErisPulse-YunhuAdapter, unmodified, against the emulator.

A real ErisPulse program runs as a child process with the adapter in webhook mode,
pointed at the emulator by its own documented settings (``Yunhu_Adapter.base_url`` and
``web_api_base_url``). The emulator is strict, so the adapter's start-up probe (a send to
a group the bot is not in, whose ``-1`` message names the bot's id) finds the bot's id as
it does against YunHu. A user's "ops" message makes a plugin run every operation the
adapter has: send, edit, recall, message list (and the anchor lookup), batch send,
streaming with a quote, image/video/file upload and send, boards, and the web API
lookups. Each result is checked against what the emulator recorded.

ErisPulse is never imported here: importing it starts threads and writes ``config/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integrations._frameworks import free_port, require, run_child
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

require(("ErisPulse", "ErisPulse-YunhuAdapter"), "pip install -e '.[erispulse]'")

READY = "PROBE: yunhu adapter started"
PROBE_GROUP = "112869497"  # the group the adapter's id probe sends to

MAIN = """
import asyncio
from ErisPulse import sdk
asyncio.run(sdk.run())
"""

PLUGIN = '''
import json
from pathlib import Path

from ErisPulse import BaseModule, adapter, lifecycle, message
from ErisPulse.loaders import ModuleLoadStrategy

OUT = Path("ops.json")  # in the project directory, the program's working directory
PNG = b"\\x89PNG\\r\\n\\x1a\\n" + bytes(64)
MP4 = b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(32)


async def chunks():
    for piece in ("streamed ", "by ", "ErisPulse"):
        yield piece.encode()


async def ops(gid, uid):
    yunhu = adapter.get("yunhu")
    to = yunhu.Send.To("group", gid)
    out = {"bot_id": yunhu._bot_ids.get("default", "")}
    sent = await to.Text("draft")
    mid = out["sent"] = sent["message_id"]
    out["edit"] = (await to.Edit(mid, "edited"))["status"]
    anchor = await to.GetMessages(message_id=mid, before=1)
    out["anchor"] = anchor["data"]["list"][0]["msgId"]
    latest = await to.GetMessages(before=3)
    out["latest"] = [m["msgId"] for m in latest["data"]["list"]]
    out["batch"] = (await yunhu.Send.To("user").Batch([uid, "u9"], "batched"))["message_id"]
    streamed = await yunhu.Send.To("group", gid).Stream("markdown", chunks(), parent_id=mid)
    out["streamed"] = streamed["message_id"]
    out["image"] = (await to.Image(PNG, filename="pic.png"))["message_id"]
    out["video"] = (await to.Video(MP4, filename="clip.mp4"))["message_id"]
    out["file"] = (await to.File(b"a file", filename="notes.txt"))["message_id"]
    await to.Board("group board", content_type="markdown")
    await yunhu.Send.To("group", gid).ForMember(uid).Expire(600).Board("member board")
    await yunhu.Send.Board("all board")
    await yunhu.Send.To("group", gid).ForMember(uid).DismissBoard()
    out["recall"] = (await to.Recall(mid))["status"]
    out["user_info"] = (await yunhu.Api.get_user_info(uid))["data"]["user_name"]
    out["group_info"] = (await yunhu.Api.get_group_info(gid))["data"]["group_name"]
    return out


class Main(BaseModule):
    def __init__(self, sdk=None):
        self.sdk = sdk

    @staticmethod
    def get_load_strategy():
        return ModuleLoadStrategy(lazy_load=False)

    async def on_load(self, event):
        @lifecycle.on("adapter.status.change")
        async def on_adapter_status(data):
            info = data.get("data") or {}
            if info.get("platform") == "yunhu" and info.get("status") == "started":
                print("PROBE: yunhu adapter started", flush=True)

        @message.on_message()
        async def on_text(event):
            if event.get_text() == "ops":
                group, user = event["group_id"], event["user_id"]
                OUT.write_text(json.dumps(await ops(group, user)))
                await adapter.get("yunhu").Send.To("group", group).Text("ops done")

        return True

    async def on_unload(self, event):
        return True
'''


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def world(anyio_backend: str, tmp_path_factory: pytest.TempPathFactory,
                ) -> AsyncIterator[tuple[Emulator, Path]]:
    root = tmp_path_factory.mktemp("erispulse_ops")
    port = free_port()
    async with Emulator(strict=True) as emu:
        emu.add_user("u1", "小红")
        emu.add_user("u9")
        emu.add_group("g1", "测试群", members=["u1"])
        emu.add_group(PROBE_GROUP, has_bot=False)  # on YunHu it is a real group without bots
        (root / "plugins").mkdir()
        (root / "config").mkdir()
        (root / "main.py").write_text(MAIN, encoding="utf-8")
        (root / "plugins" / "ops.py").write_text(PLUGIN, encoding="utf-8")
        (root / "config" / "config.toml").write_text(f"""
[ErisPulse.server]
host = "127.0.0.1"
port = {port}

[Yunhu_Adapter]
base_url = "{emu.base_url}"
web_api_base_url = "{emu.url.rstrip('/')}"

[Yunhu_Adapter.accounts.default]
token = "{emu.token}"
mode = "webhook"
webhook_path = "/webhook"
enabled = true
""", encoding="utf-8")
        emu.webhook_url = f"http://127.0.0.1:{port}/yunhu_default/webhook"
        async with run_child([sys.executable, "main.py"], cwd=root, ready_marker=READY,
                             listen_url=emu.webhook_url):
            yield emu, root


class TestErisPulseAdapter:
    async def test_every_operation_matches_what_the_emulator_recorded(
        self, world: tuple[Emulator, Path]
    ) -> None:
        """Each operation's answer, as the adapter read it, matches the emulator's records."""
        emu, root = world
        said = (await emu.user_says("group:g1", "ops", user="u1")).message
        assert said is not None
        await emu.wait_for_message("group", "g1", lambda m: m.text == "ops done", timeout=60)
        out: dict[str, Any] = json.loads((root / "ops.json").read_text())
        assert out["bot_id"] == emu.bot_id  # found by its start-up probe, as against YunHu
        assert emu.chat("group", PROBE_GROUP) == []
        sent = emu.message(out["sent"])
        assert sent is not None and (sent.text, sent.edits, sent.recalled) == ("edited", 1, True)
        assert (out["edit"], out["recall"]) == ("ok", "ok")
        assert out["anchor"] == out["sent"]
        assert out["latest"] == [out["sent"], said.msg_id]  # newest first, then the user's
        [to_u1], [to_u9] = emu.chat("user", "u1"), emu.chat("user", "u9")
        assert (to_u1.text, to_u9.text) == ("batched", "batched")
        assert out["batch"] == [to_u1.msg_id, to_u9.msg_id]
        streamed = emu.message(out["streamed"])
        assert streamed is not None and streamed.streamed
        assert (streamed.text, streamed.parent_id) == ("streamed by ErisPulse", out["sent"])
        for kind in ("image", "video", "file"):
            media = emu.message(out[kind])
            assert media is not None and media.content_type == kind
            key = media["content"][f"{kind}Key"]
            assert emu.uploads[key].kind == kind
        assert emu.uploads[emu.message(out["file"])["content"]["fileKey"]].filename == (  # type: ignore[index]
            "notes.txt")
        assert sorted((b.scope, b.content) for b in emu.boards) == [
            ("all", "all board"), ("chat", "group board")]
        assert (out["user_info"], out["group_info"]) == ("小红", "测试群")
