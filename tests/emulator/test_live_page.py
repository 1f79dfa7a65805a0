"""The live page's JSON and SSE endpoints, and its markdown renderer."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import aiohttp
import pytest

from tests.emulator._http import (
    event_where,
    next_event,
    one_shot,
    open_stream,
    post_json,
)
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestLivePage:
    async def test_page_and_its_files_are_served_without_the_token(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/ serves the page, which loads its script and style from the emulator itself."""
        async with session.get(emu.url) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            page = await resp.text()
        for needle in (
            'id="chat-list"',
            'id="messages"',
            "/_emulator/static/app.js",
            "/_emulator/static/markdown.js",
            "/_emulator/static/style.css",
        ):
            assert needle in page
        assert "http" not in page.replace('href="data:,"', ""), "the page must load nothing remote"
        for name, kind in (
            ("app.js", "text/javascript"),
            ("markdown.js", "text/javascript"),
            ("style.css", "text/css"),
        ):
            async with session.get(f"{emu.url}_emulator/static/{name}") as resp:
                assert (resp.status, resp.content_type) == (200, kind)
                assert emu.token not in await resp.text()

    @pytest.mark.parametrize("name", ["nope.js", "..%2F_server.py", "index.html"])
    async def test_unknown_static_file_is_404(
        self, emu: Emulator, session: aiohttp.ClientSession, name: str
    ) -> None:
        """Only the page's own files are served from /_emulator/static/."""
        async with session.get(f"{emu.url}_emulator/static/{name}") as resp:
            assert resp.status == 404

    async def test_chats_summary(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        """/_emulator/chats lists each chat with its count, newest text and streaming flag."""
        await one_shot(session, emu, "first", recv_type="user", recv_id="7")
        body, task, _record = await open_stream(session, emu, "growing", n=2)
        async with session.get(f"{emu.url}_emulator/chats") as resp:
            chats = (await resp.json())["chats"]
        assert [(c["key"], c["count"], c["streaming"], c["lastText"]) for c in chats] == [
            ("user:7", 1, False, "first"),
            ("group:123", 1, True, "growing"),
        ]
        body.end()
        await task

    async def test_chat_messages_with_timeline(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/_emulator/chats/{type}/{id} gives messages with their chunk timeline and recalls."""
        body, task, record = await open_stream(session, emu, "a")
        body.send("bc")
        await record.wait_for_bytes(3)
        body.end()
        msg_id = (await task)["data"]["messageInfo"]["msgId"]
        await post_json(
            session, emu, "recall", {"msgId": msg_id, "chatId": "123", "chatType": "group"}
        )
        async with session.get(f"{emu.url}_emulator/chats/group/123") as resp:
            data = await resp.json()
        [message] = data["messages"]
        assert (message["msgId"], message["text"], message["recalled"]) == (msg_id, "abc", True)
        stream = message["stream"]
        assert (stream["chunkCount"], stream["bytes"], stream["completed"]) == (2, 3, True)
        assert [size for _offset, size in stream["chunks"]] == [1, 2]
        offsets = [offset for offset, _size in stream["chunks"]]
        assert offsets == sorted(offsets)
        assert all(offset >= 0 for offset in offsets)
        assert data["chat"]["count"] == 0

    async def test_unknown_chat_type_is_404(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A chat type other than user or group is not found."""
        async with session.get(f"{emu.url}_emulator/chats/channel/1") as resp:
            assert resp.status == 404

    async def test_events_push_a_stream_as_it_grows(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/_emulator/events pushes the message after each chunk, before the stream ends."""
        async with session.get(f"{emu.url}_emulator/events") as events:
            assert events.content_type == "text/event-stream"
            assert await next_event(events) == ("hello", {})
            body, task, _record = await open_stream(session, emu, "Hello ")
            first = await event_where(events, lambda d: d["message"]["text"] == "Hello ")
            assert first["message"]["streaming"] is True
            assert first["chat"] == {**first["chat"], "key": "group:123", "streaming": True}
            body.send("world")
            await event_where(events, lambda d: d["message"]["text"] == "Hello world")
            body.end()
            last = await event_where(events, lambda d: not d["message"]["streaming"])
            await task
            assert last["message"]["stream"]["completed"] is True
            assert emu.token not in json.dumps(last)

    async def test_events_end_when_the_emulator_closes(
        self, session: aiohttp.ClientSession
    ) -> None:
        """An open event stream is finished, not left hanging, when the emulator stops."""
        emu = await Emulator().start()
        try:
            events = await session.get(f"{emu.url}_emulator/events")
            assert (await next_event(events))[0] == "hello"
        finally:
            await emu.close()
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            await next_event(events)
        events.release()


NODE = shutil.which("node")


def render_markdown(source: str) -> str:
    script = (
        "const md = require(process.argv[1]);"
        "process.stdout.write(md.renderMarkdown(require('fs').readFileSync(0, 'utf8')));"
    )
    path = resources.files("yunhu_stream.emulator").joinpath("static").joinpath("markdown.js")
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", script, str(path)],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout


@pytest.mark.skipif(NODE is None, reason="node is needed to run the page's markdown renderer")
class TestPageMarkdown:
    def test_html_is_escaped(self) -> None:
        """Raw HTML in a message is shown as text, never parsed."""
        html = render_markdown('<script>alert("x")</script> <img src=x onerror=alert(1)>')
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html

    def test_only_safe_links_become_anchors(self) -> None:
        """http(s) links are rendered; javascript: links stay plain text."""
        html = render_markdown("[ok](https://example.com) [bad](javascript:alert(1))")
        assert '<a href="https://example.com"' in html
        assert 'href="javascript' not in html
        assert "[bad](javascript:alert(1))" in html

    def test_common_markup(self) -> None:
        """Headings, emphasis, inline code, lists and quotes render as HTML."""
        html = render_markdown("## Title\n**b** *i* `c`\n\n- x\n- y\n\n1. one\n\n> q")
        for part in (
            "<h2>Title</h2>",
            "<strong>b</strong>",
            "<em>i</em>",
            "<code>c</code>",
            "<ul><li>x</li><li>y</li></ul>",
            "<ol><li>one</li></ol>",
            "<blockquote>q</blockquote>",
        ):
            assert part in html

    def test_code_blocks_are_literal_even_when_cut_off(self) -> None:
        """Fenced code keeps its text literally, also while the closing fence has not arrived."""
        html = render_markdown("```py\nx = **1** < 2\n")
        assert html == '<pre><code class="language-py">x = **1** &lt; 2\n</code></pre>'
