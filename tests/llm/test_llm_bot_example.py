"""examples/llm_bot.py end to end: webhook in, one model answer out to the chat and a web page."""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import aiohttp
import anyio.to_thread
import pytest

from tests import _browser as browser
from tests._browser import save_screenshot, wait_for_js
from tests._paths import EXAMPLES
from tests._support import serve_app
from yunhu_stream.emulator import Emulator
from yunhu_stream.fake_llm import FakeLLM, tokenize

pytestmark = pytest.mark.anyio
chromium_driver = browser.chromium_driver  # the fixture, made visible to this module

EXAMPLE = EXAMPLES / "llm_bot.py"


@pytest.fixture(scope="module")
def llm_bot() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("llm_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def question_of(llm_bot: ModuleType) -> str:
    return str(llm_bot.SAMPLE_EVENT["event"]["message"]["content"]["text"])


class TestDemo:
    async def test_demo_answers_in_chat_and_on_page(self, llm_bot: ModuleType) -> None:
        """--demo's one event gives the same full answer in the chat and on the page, then done."""
        out = io.StringIO()
        result = await llm_bot.demo(out, fake_delay=0)
        expected = llm_bot.fake_answer([{"role": "user", "content": question_of(llm_bot)}])
        assert result.chat_text == expected
        assert result.page_text == expected
        assert result.page_events[-1] == "done"
        assert "POST /yunhu -> 200" in out.getvalue()

    async def test_model_failure_reaches_page_and_keeps_text(self, llm_bot: ModuleType) -> None:
        """A model error mid-answer: the page gets the text then an error, the chat keeps it."""
        answer = "one two three four five six seven"
        async with FakeLLM(answer, fault="error_mid_stream", fault_after=3) as faulty:
            config = llm_bot.LLMConfig(base_url=faulty.base_url, api_key=None, model="m")
            result = await llm_bot.demo(io.StringIO(), config)
        partial = "".join(tokenize(answer)[:3])
        assert result.page_text == partial
        assert result.page_events[-1] == "error"
        assert result.chat_text == partial  # the chat keeps what arrived


class TestPage:
    @pytest.mark.browser
    async def test_browser_shows_the_answer(
        self, llm_bot: ModuleType, chromium_driver: Any
    ) -> None:
        """The example's page, in Chromium, shows the answer the chat got and reports done."""
        async with Emulator() as emu:
            app = llm_bot.build_app(emu.token, emu.base_url, fake_delay=0.01)
            runner, base = await serve_app(app, shutdown_timeout=5)
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(f"{base}/yunhu", json=llm_bot.SAMPLE_EVENT) as resp,
                ):
                    assert resp.status == 200
                msg_id = llm_bot.SAMPLE_EVENT["event"]["message"]["msgId"]

                def drive() -> str:
                    chromium_driver.get(f"{base}/answers/{msg_id}")
                    wait_for_js(
                        chromium_driver,
                        "return document.getElementById('status').textContent === 'done'",
                    )
                    save_screenshot(chromium_driver, "llm_bot_page")
                    return str(
                        chromium_driver.execute_script(
                            "return document.getElementById('answer').textContent"
                        )
                    )

                shown = await anyio.to_thread.run_sync(drive)
                stream = await emu.wait_for_stream()
                await stream.wait_done()
            finally:
                await runner.cleanup()
            [message] = emu.chat("group", "37090343")
        assert shown == message.text
        assert shown == llm_bot.fake_answer([{"role": "user", "content": question_of(llm_bot)}])
