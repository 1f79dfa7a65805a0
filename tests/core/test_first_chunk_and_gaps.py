"""Bot.stream(first_chunk=..., gap=...): how a long LLM reply opens, and long silences in it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from structlog.testing import capture_logs

from tests.core.test_markdown_rollover import open_fence_at_end
from yunhu_stream import Bot, FirstChunk
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import ConfigurationError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


class TestFirstChunk:
    async def test_a_lone_heading_marker_is_held_until_words_follow(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """With a FirstChunk policy no request starts on "#" alone; the first chunk is
        the heading with its words."""
        async with bot.stream(to="group:1", content_type="markdown",
                              first_chunk=FirstChunk()) as s:
            await s.write("#")
            await bot.send("group:2", "a full round trip meanwhile")
            assert emulator.streams == []
            await s.write(" 标题\n正文")
            record = await emulator.wait_for_stream()
            await record.wait_for_chunks(1)
            assert record.chunks[0].data.decode() == "# 标题\n正文"
        assert emulator.chat("group", "1")[0].text == "# 标题\n正文"

    async def test_the_deadline_lets_it_go_without_a_sentence_end(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """sentence=True waits for a sentence end, but no longer than max_wait (0.05 s:
        the chunk leaves within 10× that)."""
        async with bot.stream(to="group:1",
                              first_chunk=FirstChunk(sentence=True, max_wait=0.05)) as s:
            await s.write("让我想想")
            with anyio.fail_after(0.5):
                record = await emulator.wait_for_stream()
                await record.wait_for_chunks(1)
            assert record.chunks[0].data.decode() == "让我想想"
            await s.write("……好了。")
        assert emulator.chat("group", "1")[0].text == "让我想想……好了。"

    async def test_closing_releases_a_held_chunk(self, bot: Bot, emulator: Emulator) -> None:
        """A reply that is only "#" is still delivered when the stream closes."""
        async with bot.stream(to="group:1", first_chunk=FirstChunk(min_chars=50)) as s:
            await s.write("#")
        assert emulator.chat("group", "1")[0].text == "#"


class TestGaps:
    async def test_a_long_silence_ends_the_message_and_the_rest_starts_another(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """gap=...: after that long without a write (0.05 s; it ends within 10× that)
        the message is finished where it is; what comes later is a second streamed
        message."""
        with capture_logs() as logs:
            async with bot.stream(to="group:1", gap=0.05) as s:
                await s.write("我去查一下。")
                with anyio.fail_after(0.5):
                    first = await emulator.wait_for_stream()
                    await first.wait_done()
                assert first.completed and first.text == "我去查一下。"
                await s.write("查到了：晴。")
        assert [m.text for m in emulator.chat("group", "1")] == ["我去查一下。", "查到了：晴。"]
        assert len(s.messages) == 2 and s.text == "我去查一下。查到了：晴。"
        splits = [e for e in logs if e["event"] == "stream_gap_split"]
        assert [e["gap_s"] for e in splits] == [0.05]

    async def test_a_silence_inside_a_code_block_closes_and_reopens_it(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """In markdown, the message ended by a gap closes its open code block; the next
        message reopens it."""
        async with bot.stream(to="group:1", content_type="markdown", gap=0.05) as s:
            await s.write("```python\nx = 1\n")
            await (await emulator.wait_for_stream()).wait_done()
            await s.write("y = 2\n```\n")
        first, second = emulator.chat("group", "1")
        assert first.text == "```python\nx = 1\n```"
        assert second.text == "```python\ny = 2\n```\n"
        assert all(open_fence_at_end(m.text.encode()) is None for m in (first, second))

    async def test_without_gap_a_silence_changes_nothing(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """The default: one message, however long the model pauses."""
        async with bot.stream(to="group:1") as s:
            await s.write("第一句。")
            record = await emulator.wait_for_stream()
            await record.wait_for_chunks(1)
            await bot.send("group:2", "a full round trip meanwhile")
            await s.write("第二句。")
        assert [m.text for m in emulator.chat("group", "1")] == ["第一句。第二句。"]


class TestValidation:
    async def test_bad_options_are_refused_with_what_is_accepted(self, bot: Bot) -> None:
        """first_chunk takes a FirstChunk; gap a positive number of seconds."""
        with pytest.raises(ConfigurationError, match="first_chunk must be a FirstChunk or None"):
            bot.stream(to="group:1", first_chunk="sentence")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="gap must be a number of seconds > 0"):
            bot.stream(to="group:1", gap=0)
