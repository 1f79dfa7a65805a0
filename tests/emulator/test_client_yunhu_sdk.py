"""The official Python SDK (``yunhu`` on PyPI), unmodified, against the emulator.

Its base URL is a class constant (``https://chat-go.jwzhd.com/open-apis/v1``), so it runs
in proxy mode with nothing but ``emu.proxy_env`` in the environment (``requests`` reads
``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` on every call). It has send (text, markdown,
any type), batch send, edit and the four board calls; no recall, message list, upload
or streaming. Each call runs in a worker thread (the SDK blocks) while the emulator
serves; results are checked against what the emulator recorded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import pytest

from tests.integrations._frameworks import require
from yunhu_stream.emulator import Emulator

require(("yunhu", "requests", "trustme"), "pip install -e '.[test]'")

from yunhu.openapi import Openapi  # noqa: E402  # after the check that it is installed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def emu(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    """A strict emulator in proxy mode whose proxy_env is this process's environment."""
    async with Emulator(proxy=True, strict=True) as emulator:
        for name, value in emulator.proxy_env.items():
            monkeypatch.setenv(name, value)
        emulator.add_user("u1", "小红")
        emulator.add_user("u2")
        emulator.add_group("g1", members=["u1"])
        yield emulator


async def sdk(call: Callable[..., Any], *args: Any) -> Any:
    """Run one blocking SDK call in a worker thread; its JSON answer(s)."""
    response = await anyio.to_thread.run_sync(lambda: call(*args))
    if isinstance(response, list):
        return [r.json() for r in response]
    assert response.status_code == 200
    return response.json()


class TestOfficialPythonSdk:
    async def test_its_base_url_is_yunhus_and_stays_so(self, emu: Emulator) -> None:
        """Nothing is overridden: the SDK talks to YunHu's host, the proxy brings it here."""
        assert Openapi.baseUrl == "https://chat-go.jwzhd.com/open-apis/v1"
        api = Openapi(emu.token)
        answer = await sdk(api.sendTextMessage, "u1", "user", {"text": "hello"})
        assert answer["code"] == 1
        assert emu.chat("user", "u1")[0].text == "hello"

    async def test_send_batch_and_edit(self, emu: Emulator) -> None:
        """Its send types, its demo's flat button list, batch send and edit land as sent."""
        api = Openapi(emu.token)
        md = await sdk(api.sendMarkdownMessage, "g1", "group", {"text": "**bold**"})
        buttons = [{"text": "复制内容1", "actionType": 2, "value": "复制内容1"},
                   {"text": "复制内容2", "actionType": 2, "value": "复制内容2"}]
        html = await sdk(api.sendMessage, "g1", "group", "html",
                         {"text": "<b>x</b>", "buttons": buttons})
        [batch] = await sdk(api.batchSendTextMessage, ["u1", "u2", "stranger"], "user",
                            {"text": "to all"})
        msg_id = md["data"]["messageInfo"]["msgId"]
        edited = await sdk(api.editMessage, msg_id, "g1", "group", "markdown",
                           {"text": "**edited**"})
        first, second = emu.chat("group", "g1")
        assert (first.msg_id, first.text, first.edits) == (msg_id, "**edited**", 1)
        assert (second.msg_id, second.content_type, second.buttons) == (
            html["data"]["messageInfo"]["msgId"], "html", [buttons])
        assert edited["data"] == {"successCount": 1}
        assert batch["data"]["successCount"] == 2  # strict: "stranger" has not added the bot
        assert [(i["recvId"], emu.message(i["msgId"]).text)  # type: ignore[union-attr]
                for i in batch["data"]["successList"]] == [("u1", "to all"), ("u2", "to all")]

    async def test_boards(self, emu: Emulator) -> None:
        """SetBotBoard (chatId + recvType), SetBotBoardAll and both dismiss calls."""
        api = Openapi(emu.token)
        later = int(time.time()) + 600
        answers = [
            await sdk(api.SetBotBoard, "g1", "group", "u1", "markdown", "for u1", later),
            await sdk(api.SetBotBoard, "g1", "group", "", "text", "for g1", 0),
            await sdk(api.SetBotBoardAll, "text", "py测试", later),
        ]
        assert [a["code"] for a in answers] == [1, 1, 1]
        assert emu.board("group:g1", "u1").content == "for u1"  # type: ignore[union-attr]
        assert emu.board("group:g1", "u1").expire_time == later  # type: ignore[union-attr]
        assert emu.board("group:g1").content == "for g1"  # type: ignore[union-attr]
        await sdk(api.DismissBotBoard, "g1", "group", "u1")
        assert emu.board("group:g1", "u1").content == "for g1"  # type: ignore[union-attr]
        await sdk(api.DismissBotBoardAll)
        assert [(b.scope, b.content) for b in emu.boards] == [("chat", "for g1")]
