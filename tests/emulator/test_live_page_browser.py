"""The emulator's live page in headless Chromium: a stream visibly grows, then completes.

The emulator runs in this test's event loop; Selenium (synchronous) drives the browser
from a worker thread, so the page is served while the browser waits. Every wait is on a
DOM condition (``wait_for_js``), never a sleep.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
import pytest

from tests import _browser as browser
from tests._browser import save_screenshot, wait_for_js
from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
chromium_driver = browser.chromium_driver  # the shared fixture, made visible here

# The page's hooks (src/yunhu_stream/emulator/static/app.js): article.message with
# data-msg-id / data-streaming, .message-body (.markdown for markdown), .badge-incomplete,
# .chunk-timeline with .chunk-summary and one .chunk bar per chunk, li.chat[data-chat].
MESSAGE_JS = """function (id) {
const el = document.querySelector('article.message[data-msg-id="' + id + '"]');
if (!el) return null;
const body = el.querySelector('.message-body');
return {
  text: body.textContent,
  html: body.innerHTML,
  markdown: body.classList.contains('markdown'),
  streaming: el.dataset.streaming,
  streamingBadge: !!el.querySelector('.badge-streaming'),
  cutOffBadge: !!el.querySelector('.badge-incomplete'),
  bars: el.querySelectorAll('.chunk-timeline .chunk').length,
  summary: (el.querySelector('.chunk-summary') || {}).textContent || null,
};
}"""


async def in_browser(fn: Any, *args: Any) -> Any:
    """Run a blocking Selenium call in a worker thread while the loop serves the page."""
    return await anyio.to_thread.run_sync(fn, *args)


async def open_page(driver: Any, emu: Emulator, chat: str = "") -> None:
    """Load the page fresh and wait until its live connection is up."""
    def load() -> None:
        driver.get("about:blank")  # a new document: nothing left from an earlier test
        driver.get(emu.url + (f"#{chat}" if chat else ""))
        wait_for_js(driver, "return document.getElementById('status').dataset.state === 'open'")

    await in_browser(load)


async def wait_message(driver: Any, msg_id: str, condition: str) -> dict[str, Any]:
    """Wait until the message's DOM state ``m`` satisfies the JS ``condition``; return it."""
    script = (
        f"const m = ({MESSAGE_JS})({json.dumps(msg_id)}); return m && ({condition}) ? m : null;"
    )
    return await in_browser(wait_for_js, driver, script)


class TestStreamOnThePage:
    async def test_a_stream_grows_on_the_page_before_it_closes(
        self, emulator: Emulator, chromium_driver: Any
    ) -> None:
        """Part one shows while the message is marked streaming; the whole text shows at close."""
        await open_page(chromium_driver, emulator)
        part1 = "## Live answer\n\nHello **bold** world, part one.\n"
        part2 = "\n- part two, with `code`\n- and 中文 too\n"
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream("group:page", content_type="markdown") as s,
        ):
            await s.write(part1)
            record = await emulator.wait_for_stream(1)
            await record.wait_for_bytes(len(part1.encode()))
            assert record.msg_id is not None
            msg_id = record.msg_id

            shown = await wait_message(chromium_driver, msg_id, "m.text.includes('part one')")
            assert shown["streaming"] == "true"
            assert shown["streamingBadge"]
            assert "part two" not in shown["text"]
            assert shown["markdown"]
            assert "<strong>bold</strong>" in shown["html"]
            assert shown["bars"] >= 1
            assert "receiving" in shown["summary"]
            await in_browser(save_screenshot, chromium_driver, "emulator-page-streaming")

            await s.write(part2)
            grown = await wait_message(chromium_driver, msg_id, "m.text.includes('中文')")
            assert "part one" in grown["text"]  # it grew: the same message, longer

        done = await wait_message(chromium_driver, msg_id, "m.streaming === 'false'")
        assert not done["streamingBadge"] and not done["cutOffBadge"]
        assert "<h2>Live answer</h2>" in done["html"]
        assert "<code>code</code>" in done["html"]
        assert "<li>" in done["html"]
        final = await wait_message(chromium_driver, msg_id, f"m.bars === {len(record.chunks)}")
        assert final["bars"] >= 2
        assert f"{len(record.chunks)} chunks" in final["summary"]
        assert f"{record.nbytes} B" in final["summary"]
        path = await in_browser(save_screenshot, chromium_driver, "emulator-page")
        assert path.stat().st_size > 0

    async def test_an_aborted_stream_is_shown_cut_off(
        self, emulator: Emulator, chromium_driver: Any
    ) -> None:
        """A stream abandoned mid-body stays on the page, marked as cut off."""
        await open_page(chromium_driver, emulator)
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            s = bot.stream("user:7")
            await s.write("this answer never finishes")
            record = await emulator.wait_for_stream(1)
            await record.wait_for_bytes(len("this answer never finishes"))
            await s.abort()
            await record.wait_done()
        assert record.msg_id is not None
        shown = await wait_message(chromium_driver, record.msg_id, "m.cutOffBadge")
        assert shown["streaming"] == "false"
        assert shown["text"] == "this answer never finishes"
        assert "cut off" in shown["summary"]


class TestPlainAndChats:
    async def test_text_is_shown_literally_not_as_markdown_or_html(
        self, emulator: Emulator, chromium_driver: Any
    ) -> None:
        """A text message's asterisks and tags are shown as typed, never interpreted."""
        await open_page(chromium_driver, emulator)
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            info = await bot.send("group:plain", "**not bold** <b>not a tag</b>")
        shown = await wait_message(chromium_driver, info.msg_id, "true")
        assert shown["text"] == "**not bold** <b>not a tag</b>"
        assert not shown["markdown"]
        assert "<strong>" not in shown["html"] and "<b>" not in shown["html"]

    async def test_the_sidebar_lists_chats_and_switches_between_them(
        self, emulator: Emulator, chromium_driver: Any
    ) -> None:
        """Each chat is listed; clicking one shows its messages."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            first = await bot.send("group:1", "in group one")
            second = await bot.send("user:2", "in the private chat")
        await open_page(chromium_driver, emulator, chat="group:1")
        await wait_message(chromium_driver, first.msg_id, "true")

        def click_second() -> None:
            wait_for_js(chromium_driver, "return document.querySelectorAll('li.chat').length == 2")
            chromium_driver.execute_script(
                "document.querySelector('li.chat[data-chat=\"user:2\"] button').click()"
            )

        await in_browser(click_second)
        shown = await wait_message(chromium_driver, second.msg_id, "true")
        assert shown["text"] == "in the private chat"
        gone = await in_browser(
            chromium_driver.execute_script,
            f"return document.querySelector('[data-msg-id=\"{first.msg_id}\"]') === null",
        )
        assert gone


class TestWhoSaidWhat:
    async def test_users_and_the_bot_are_shown_by_nickname_on_their_sides(
        self, emulator: Emulator, chromium_driver: Any
    ) -> None:
        """A user's message and the bot's reply each show their sender's nickname, and are
        marked user / bot (drawn on opposite sides), in the order they were said."""
        emulator.add_user("u1", "小红")
        await emulator.user_says("group:who", "你好呀", user="u1")
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.send("group:who", "你好，小红")
        await open_page(chromium_driver, emulator, "group:who")
        shown = await in_browser(wait_for_js, chromium_driver, """
            const items = [...document.querySelectorAll('#messages article.message')];
            if (items.length < 2) return null;
            return items.map(el => [el.dataset.senderType,
                el.querySelector('.message-sender').textContent,
                el.querySelector('.message-body').textContent]);
        """)
        await in_browser(save_screenshot, chromium_driver, "emulator-page-who-said-what")
        assert shown == [["user", "小红", "你好呀"], ["bot", "Emulator Bot", "你好，小红"]]
