"""A real browser's EventSource receives what sse_response sends, live and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from aiohttp import web

from tests import _browser as browser
from tests._browser import save_screenshot, wait_for_js
from tests._support import serve_app
from yunhu_stream.fake_llm import FakeLLM, tokenize
from yunhu_stream.llm import openai_chat_deltas
from yunhu_stream.sse import sse_response

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
chromium_driver = browser.chromium_driver  # the fixture, made visible to this module

PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>SSE relay</title>
<style>body{font:16px sans-serif;margin:2em} pre{white-space:pre-wrap;border:1px solid #ccc;
padding:1em;min-height:4em} #status{color:#555}</style></head>
<body><h1>Live answer</h1><p id="status">connecting…</p><pre id="out"></pre>
<script>
window.deltas = []; window.done = null; window.errors = [];
const out = document.getElementById("out"), status = document.getElementById("status");
const es = new EventSource("/sse");
es.addEventListener("delta", (e) => {
  const piece = JSON.parse(e.data);
  window.deltas.push(piece);
  out.textContent += piece;
  status.textContent = "streaming… " + window.deltas.length + " deltas";
});
es.addEventListener("done", (e) => {
  window.done = JSON.parse(e.data);
  status.textContent = "done: " + e.data;
  es.close();  // otherwise EventSource reconnects and asks for the answer again
});
es.addEventListener("error", (e) => {
  window.errors.push(e.data === undefined ? "connection" : e.data);
});
</script></body></html>
"""

TRICKY = ["你好", "，世界 🌏", "", "line\nbreak", "</script><b>x</b>", "\u2028sep", "crlf\r\nend"]


async def serve(make_source: Callable[[], AsyncIterator[str]]) -> tuple[web.AppRunner, str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def sse(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, make_source())

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/sse", sse)
    runner, base = await serve_app(app, shutdown_timeout=1)
    return runner, f"{base}/"


class TestBrowserEventSource:
    async def test_deltas_arrive_live_in_order_then_done(self, chromium_driver: Any) -> None:
        """The page shows the first deltas while the source is still open, then all, then done."""
        release = asyncio.Event()

        async def source() -> AsyncIterator[str]:
            yield TRICKY[0]
            yield TRICKY[1]
            await release.wait()  # opened only once the browser has shown the first two
            for piece in TRICKY[2:]:
                yield piece

        runner, url = await serve(source)

        def drive() -> tuple[Any, Any, Any, Any]:
            chromium_driver.get(url)
            early = wait_for_js(
                chromium_driver, "return window.deltas.length >= 2 ? window.deltas : null"
            )
            anyio.from_thread.run_sync(release.set)
            done = wait_for_js(chromium_driver, "return window.done")
            state = chromium_driver.execute_script(
                "return [window.deltas, window.errors, document.getElementById('out').textContent]"
            )
            save_screenshot(chromium_driver, "sse_browser_live")
            return early, done, state, chromium_driver.title

        try:
            early, done, (deltas, errors, shown), title = await anyio.to_thread.run_sync(drive)
        finally:
            await runner.cleanup()
        expected = [p for p in TRICKY if p]  # JSON data: exact, CR and U+2028 included
        assert early == TRICKY[:2]
        assert deltas == expected
        assert shown == "".join(expected)
        assert done == {"deltas": len(expected), "chars": sum(map(len, expected))}
        assert errors == []
        assert title == "SSE relay"

    async def test_llm_answer_relayed_to_browser(self, chromium_driver: Any) -> None:
        """Tokens from the fake OpenAI-compatible server reach the browser one event each."""
        answer = "流式输出：每个词都是一个事件。Each word is one event. 🚀"
        async with FakeLLM(answer, delay=0.005) as llm:

            def source() -> AsyncIterator[str]:
                return openai_chat_deltas(
                    base_url=llm.base_url,
                    api_key=None,
                    model="fake-gpt",
                    messages=[{"role": "user", "content": "hi"}],
                )

            runner, url = await serve(source)

            def drive() -> tuple[Any, Any]:
                chromium_driver.get(url)
                done = wait_for_js(chromium_driver, "return window.done")
                save_screenshot(chromium_driver, "sse_browser_llm")
                return done, chromium_driver.execute_script("return window.deltas")

            try:
                done, deltas = await anyio.to_thread.run_sync(drive)
            finally:
                await runner.cleanup()
        assert deltas == tokenize(answer)
        assert done == {"deltas": len(deltas), "chars": len(answer)}
