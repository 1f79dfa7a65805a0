"""Markdown-safe rollover in real streams: max_message_bytes on a markdown stream.

The rules themselves are pinned in test_markdown_rollover.py; here they run through
Bot.stream into the emulator: what each message shows, what the chat shows, recovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.core.test_markdown_rollover import open_fence_at_end
from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

CODE = "看这段代码：\n\n```python\n" + "".join(f"print({i})  # 第 {i} 行\n" for i in range(40)) \
    + "```\n\n说明完毕。\n"
LIMIT = 200


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


async def stream_in_pieces(bot: Bot, text: str, content_type: str = "markdown") -> None:
    async with bot.stream(to="group:1", content_type=content_type,
                          max_message_bytes=LIMIT) as s:
        for line in text.splitlines(keepends=True):
            await s.write(line)
    assert s.text == text


class TestCodeBlocksAcrossMessages:
    async def test_each_message_closes_the_block_and_the_next_reopens_it(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """A code block longer than a message: every message fits and leaves no fence
        open; the ones that start inside the block start with ```python."""
        await stream_in_pieces(bot, CODE)
        messages = emulator.chat("group", "1")
        assert len(messages) >= 4
        assert all(len(m.text.encode()) <= LIMIT for m in messages)
        assert all(open_fence_at_end(m.text.encode()) is None for m in messages)
        inside = [m.text for m in messages[1:] if "print(" in m.text.split("\n", 1)[1]]
        assert inside and all(t.startswith("```python\n") for t in inside)
        assert all(m.streamed for m in messages)

    async def test_without_what_the_cuts_add_the_messages_are_the_text(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """Removing each added closing fence and reopened fence gives back what was written."""
        await stream_in_pieces(bot, CODE)
        rebuilt = ""
        for message in emulator.chat("group", "1"):
            text = message.text
            if open_fence_at_end(rebuilt.encode()) is not None:  # it starts inside the block
                text = text.removeprefix("```python\n")
            body = text.removesuffix("```")
            if open_fence_at_end((rebuilt + body).encode()) is not None:  # the cut closed it
                text = body
            rebuilt += text
        assert rebuilt == CODE

    async def test_lines_sent_one_by_one_still_end_each_message_at_a_line(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """Each line reaches the chat before the next is written, so a split can only
        fall where nothing was sent yet: the first line end in the last quarter of the
        allowance ends the message (not the last one that fits)."""
        text = "".join(f"第 {i:02d} 行：一些文字\n" for i in range(40))
        async with bot.stream(to="group:1", content_type="markdown",
                              max_message_bytes=LIMIT) as s:
            for line in text.splitlines(keepends=True):
                await s.write(line)
                await asyncio.sleep(0.003)  # the body sends it and parks
        messages = [m.text for m in emulator.chat("group", "1")]
        assert len(messages) >= 4 and "".join(messages) == text
        assert all(m.endswith("\n") for m in messages)
        line = len(text.splitlines(keepends=True)[0].encode())
        assert all(len(m.encode()) <= LIMIT * 3 // 4 + line for m in messages)

    async def test_plain_text_streams_roll_over_as_before(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """content_type text: no fences are added (they would show as text)."""
        await stream_in_pieces(bot, CODE, content_type="text")
        messages = emulator.chat("group", "1")
        assert "".join(m.text for m in messages) == CODE


class TestRecoveryAfterARollover:
    async def test_a_message_that_started_inside_a_block_is_recovered_whole(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """The request of a message that starts inside the code block drops midway: that
        message is found (its reopened fence included) and finished by edit."""
        lines = CODE.splitlines(keepends=True)
        async with bot.stream(to="group:1", content_type="markdown",
                              max_message_bytes=LIMIT) as s:
            for line in lines[:12]:
                await s.write(line)
            await emulator.wait_until(lambda: bool(emulator.streams) and emulator.streams[0].done,
                                      what="the first message")
            emulator.faults.drop_after(20)  # the next request: "```python\n" and a bit
            for line in lines[12:]:
                await s.write(line)
        messages = emulator.chat("group", "1")
        broken = emulator.streams[1]
        assert broken.aborted and broken.text.startswith("```python\n")
        assert messages[1].text.startswith("```python\n") and messages[1].edits >= 1
        assert all(open_fence_at_end(m.text.encode()) is None for m in messages)
        assert messages[-1].text.endswith("说明完毕。\n")
