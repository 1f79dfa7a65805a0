"""The chat server's live page in headless Chromium: a streamed reply grows, then ends."""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
import pytest

from tests import _browser as browser
from tests._browser import save_screenshot, wait_for_js
from tests.wschat.conftest import Connect
from yunhu_stream.wschat import WsChatServer

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
chromium_driver = browser.chromium_driver  # the shared fixture, made visible here

FINISHED_JS = """
const el = document.querySelector('article.message[data-msg-id=%s]');
if (!el || el.dataset.streaming !== 'false') return null;
return {text: el.querySelector('.message-body').textContent,
        badge: !!el.querySelector('.badge-streaming')};
"""


async def in_browser(fn: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(fn, *args)


class TestLivePage:
    async def test_a_streamed_reply_grows_on_the_page_before_it_ends(
        self, chromium_driver: Any, server: WsChatServer, connect: Connect
    ) -> None:
        bot = await connect("bot")

        def load() -> None:
            chromium_driver.get("about:blank")
            chromium_driver.get(f"{server.base_url}/?user=alice")
            wait_for_js(chromium_driver,
                        "return document.getElementById('status').dataset.state === 'live'")

        await in_browser(load)
        s = bot.stream(to="user:alice")
        await s.write("第一段，")
        await s.write("still streaming")
        assert s.message_info is None

        def growing() -> dict[str, Any]:
            return wait_for_js(chromium_driver, (
                "const el = document.querySelector('article.message');"
                "if (!el || el.dataset.streaming !== 'true') return null;"
                "const t = el.querySelector('.message-body').textContent;"
                "return t === '第一段，still streaming' ? {id: el.dataset.msgId, text: t} : null;"
            ))

        seen = await in_browser(growing)  # shown growing while the stream is still open
        msg_id = seen["id"]
        await s.write(" — and the end.")
        await s.close()
        assert s.message_info is not None and s.message_info.msg_id == msg_id

        def finished() -> dict[str, Any]:
            result = wait_for_js(chromium_driver, FINISHED_JS % json.dumps(msg_id))
            save_screenshot(chromium_driver, "wschat_live_page")
            return result

        done = await in_browser(finished)
        assert done["text"] == "第一段，still streaming — and the end."
        assert not done["badge"]
        title = await in_browser(lambda: chromium_driver.find_element(
            "css selector", "li.chat .chat-name").text)
        assert "alice" in title and "bot" in title
