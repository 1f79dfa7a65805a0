"""The stock nonebot-adapter-yunhu, unmodified, against the emulator in proxy mode.

A real NoneBot2 program (FastAPI + httpx drivers) registers the adapter's own ``Adapter``
and runs as a child process with only ``emu.proxy_env`` in its environment: its
hard-coded ``https://chat-go.jwzhd.com`` and ``https://chat-web-go.jwzhd.com`` reach the
emulator through the proxy. It starts (the web API's ``bot-info`` is answered by the
emulator), answers users of the emulator's world, recognises a quote of its own message
(``get_msg``: the anchor first), and performs every operation the adapter has: send,
edit, recall, message list, streaming, the three uploads, an image send by key and the
boards. Each result is checked against what the emulator recorded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integrations._frameworks import Child, child_env, free_port, require, wait_listening
from yunhu_stream.emulator import Emulator, StoredMessage

pytestmark = pytest.mark.anyio

require(("nonebot2", "nonebot-adapter-yunhu", "fastapi", "uvicorn", "httpx", "trustme"),
        "pip install -e '.[test]'")

BOT = """
import nonebot
from nonebot.adapters.yunhu import Adapter

nonebot.init(_env_file=".env")
nonebot.get_driver().register_adapter(Adapter)
nonebot.load_plugin("ops")
nonebot.run()
"""

PLUGIN = '''
import json
import os
from pathlib import Path

from nonebot import on_message
from nonebot.adapters.yunhu import Bot, MessageEvent
from nonebot.rule import to_me

OUT = Path(os.environ["OPS_OUT"])
PNG = b"\\x89PNG\\r\\n\\x1a\\n" + bytes(64)
MP4 = b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(32)

quoted = on_message(rule=to_me(), priority=1, block=True)


@quoted.handle()
async def _(bot: Bot, event: MessageEvent):
    reply = event.reply
    await bot.send(event, f"you quoted {reply.msgId}: {reply.content.text}")


general = on_message(priority=2)


@general.handle()
async def _(bot: Bot, event: MessageEvent):
    text = event.get_plaintext()
    if text == "ping":
        await bot.send(event, "pong")
    elif text == "ops":
        OUT.write_text(json.dumps(await ops(bot, event.event.message.chatId, event.get_user_id())))
        await bot.send(event, "ops done")


async def ops(bot, gid, uid):
    out = {}
    sent = await bot.send_msg("group", gid, {"text": "draft"}, "text")
    mid = out["sent"] = sent.data.messageInfo.msgId
    await bot.edit_msg(mid, gid, "group", {"text": "edited"}, "text")
    got = await bot.get_msg(mid, gid, "group")
    out["get_msg"] = [got.msgId, got.content.text]
    out["list"] = [r.msgId for r in await bot.get_msgs(gid, "group", before=10)]
    bot.bot_config.use_stream = True
    streamed = await bot.send_msg("group", gid, {"text": "streamed by the adapter"}, "text")
    bot.bot_config.use_stream = False
    out["streamed"] = streamed.data.messageInfo.msgId
    out["keys"] = [(await upload(data))[1] for upload, data in (
        (bot.upload_image, PNG), (bot.upload_video, MP4), (bot.upload_file, b"a file"))]
    image = await bot.send_msg("group", gid, {"imageKey": out["keys"][0]}, "image")
    out["image"] = image.data.messageInfo.msgId
    await bot.set_group_board("group board", "text", gid)
    await bot.set_group_board("member board", "markdown", gid, memberId=uid)
    await bot.set_user_board("user board", "text", uid, expire_time=4102444800)
    await bot.set_all_board("all board", "html")
    await bot.dismiss_group_board(gid, memberId=uid)
    await bot.dismiss_user_board(uid)
    await bot.delete_msg(mid, gid, "group")
    return out
'''


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def world(anyio_backend: str, tmp_path_factory: pytest.TempPathFactory,
                ) -> AsyncIterator[tuple[Emulator, Child, Path]]:
    """A strict emulator in proxy mode with group g1 (user u1), and the stock adapter's bot
    started against it; the bot's webhook is the emulator's webhook_url."""
    root = tmp_path_factory.mktemp("stock_nonebot")
    (root / "bot.py").write_text(BOT, encoding="utf-8")
    (root / "ops.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    port = free_port()
    async with Emulator(proxy=True, strict=True) as emu:
        emu.add_user("u1", "小红")
        emu.add_group("g1", "测试群", members=["u1"])
        env_file = {"DRIVER": "~fastapi+~httpx", "HOST": "127.0.0.1", "PORT": str(port),
                    "YUNHU_BOTS": json.dumps([{"app_id": emu.bot_id, "token": emu.token}])}
        (root / ".env").write_text("".join(f"{k}={v}\n" for k, v in env_file.items()),
                                   encoding="utf-8")
        env = {**child_env(), **emu.proxy_env, "OPS_OUT": str(root / "ops.json")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "bot.py", cwd=root, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        child = Child(proc, f"({emu.bot_id}) connected")
        try:
            await child.wait_ready(60)
            emu.webhook_url = f"http://127.0.0.1:{port}/yunhu/{emu.bot_id}"
            await wait_listening(emu.webhook_url, child)
            yield emu, child, root
        finally:
            await child.stop()


async def bot_reply(emu: Emulator, after: StoredMessage, text: str | None = None
                    ) -> StoredMessage:
    """The bot's first message in g1 after ``after`` (with that text, if given)."""
    def check() -> StoredMessage | None:
        history = emu.chat("group", "g1", include_recalled=True)
        later = history[history.index(after) + 1:]
        return next((m for m in later if m.sender_type == "bot" and not m.streaming
                     and text in (None, m.text)), None)
    return await emu.wait_until(check, timeout=30, what="the bot's reply")


class TestStockAdapterThroughTheProxy:
    async def test_it_starts_by_asking_the_web_api_who_it_is(
        self, world: tuple[Emulator, Child, Path]
    ) -> None:
        """Startup asked bot-info (the emulator's stand-in) and connected the bot by name."""
        emu, child, _ = world
        assert any(r.endpoint == "web/bot-info" and r.code == 1 for r in emu.requests)
        assert f"Bot Emulator Bot ({emu.bot_id}) connected" in child.output
        assert emu.token not in child.output

    async def test_it_answers_a_users_message(self, world: tuple[Emulator, Child, Path]) -> None:
        """A user's group message reaches the adapter; its reply lands after it in the chat."""
        emu, _, _ = world
        said = (await emu.user_says("group:g1", "ping", user="u1")).message
        assert said is not None
        reply = await bot_reply(emu, said)
        assert (reply.text, reply.sender_id, reply.chat_id) == ("pong", emu.bot_id, "g1")

    async def test_a_quote_of_its_own_message_is_recognised(
        self, world: tuple[Emulator, Child, Path]
    ) -> None:
        """Quoting the bot's message makes it to_me: get_msg finds the quoted message first."""
        emu, _, _ = world
        said = (await emu.user_says("group:g1", "ping", user="u1")).message
        assert said is not None
        pong = await bot_reply(emu, said)
        quote = (await emu.user_says("group:g1", "what?", user="u1", parent_id=pong.msg_id)).message
        assert quote is not None
        assert (await bot_reply(emu, quote)).text == f"you quoted {pong.msg_id}: pong"

    async def test_every_operation_matches_what_the_emulator_recorded(
        self, world: tuple[Emulator, Child, Path]
    ) -> None:
        """send, edit, get_msg, get_msgs, streaming, uploads, image send, boards and recall."""
        emu, _, root = world
        said = (await emu.user_says("group:g1", "ops", user="u1")).message
        assert said is not None
        await bot_reply(emu, said, "ops done")
        out: dict[str, Any] = json.loads((root / "ops.json").read_text())
        sent = emu.message(out["sent"])
        assert sent is not None and (sent.text, sent.edits, sent.recalled) == ("edited", 1, True)
        assert out["get_msg"] == [out["sent"], "edited"]
        before = [m.msg_id for m in emu.chat("group", "g1", include_recalled=True)
                  if m.send_time <= sent.send_time]
        assert out["list"] == before[::-1][:10]  # newest first, the message itself included
        streamed = emu.message(out["streamed"])
        assert streamed is not None and streamed.streamed
        assert streamed.text == "streamed by the adapter"
        kinds = [emu.uploads[key].kind for key in out["keys"]]
        assert kinds == ["image", "video", "file"]
        image = emu.message(out["image"])
        assert image is not None and image["content"]["imageKey"] == out["keys"][0]
        assert sorted((b.scope, b.content) for b in emu.boards) == [
            ("all", "all board"), ("chat", "group board")]
