"""Streamer.pipe() end to end against the emulator: token streams become one message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from yunhu_stream import Bot, PipeResult, StreamState
from yunhu_stream.emulator import Emulator
from yunhu_stream.fake_llm import DEFAULT_ANSWER, FakeLLM, tokenize
from yunhu_stream.llm import LLMProviderError, openai_chat_deltas
from yunhu_stream.sse import tee

pytestmark = pytest.mark.anyio

TO = "group:4242"
MESSAGES = [{"role": "user", "content": "讲个故事"}]

@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


async def pieces(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


async def failing_after(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item
    raise LLMProviderError({"message": "model crashed"}, url="http://llm")


class TestPipe:
    async def test_returns_writes_and_chars(self, bot: Bot, emulator: Emulator) -> None:
        """pipe() reports the non-empty pieces and characters it wrote; the chat shows them all."""
        async with bot.stream(TO) as s:
            result = await s.pipe(pieces("你好", "", "，", "world 🌏"))
        assert result == PipeResult(writes=3, chars=len("你好，world 🌏"))
        [message] = emulator.chat(TO)
        assert message.text == "你好，world 🌏"
        assert message.streamed
        assert not message.incomplete

    async def test_llm_answer_becomes_one_message(self, bot: Bot, emulator: Emulator) -> None:
        """Every delta of the fake model's answer ends up, in order, in one streamed message."""
        async with FakeLLM(delay=0.001) as llm:
            deltas = openai_chat_deltas(
                base_url=llm.base_url, api_key=None, model="fake-gpt", messages=MESSAGES
            )
            async with bot.stream(TO, content_type="markdown") as s:
                result = await s.pipe(deltas)
        assert result == PipeResult(writes=len(tokenize(DEFAULT_ANSWER)), chars=len(DEFAULT_ANSWER))
        [message] = emulator.chat(TO)
        assert message.text == DEFAULT_ANSWER
        assert message.content_type == "markdown"
        assert s.message_info is not None
        assert s.message_info.msg_id == message.msg_id

    async def test_source_is_paced_by_the_buffer(self, emulator: Emulator) -> None:
        """pipe() asks for the next piece only while the unsent text fits the buffer bound."""
        limit = 1024
        seen: list[int] = []

        async with Bot(
            emulator.token, base_url=emulator.base_url, rate_limit=None, max_buffer_bytes=limit
        ) as small:
            s = small.stream(TO)

            async def big_source() -> AsyncIterator[str]:
                for i in range(300):
                    seen.append(s.stats.buffered_bytes)
                    yield f"{i:04d}" + "x" * 96  # 100 bytes

            async with s:
                result = await s.pipe(big_source())
        assert result.chars == 300 * 100
        assert max(seen) <= limit
        assert emulator.chat(TO)[0].text == "".join(f"{i:04d}" + "x" * 96 for i in range(300))

    async def test_one_answer_feeds_chat_and_second_reader(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """With tee, the chat message and a second reader get the same complete answer."""
        async with FakeLLM(delay=0.001) as llm:
            deltas = openai_chat_deltas(
                base_url=llm.base_url, api_key=None, model="fake-gpt", messages=MESSAGES
            )
            to_chat, to_page = tee(deltas, 2, max_buffer=4)
            page: list[str] = []

            async def read_page() -> None:
                async with to_page:
                    page.extend([p async for p in to_page])

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_page)
                async with bot.stream(TO) as s, to_chat:
                    await s.pipe(to_chat)
        assert "".join(page) == DEFAULT_ANSWER
        assert emulator.chat(TO)[0].text == DEFAULT_ANSWER
        assert llm.outcomes == ["done"]

    async def test_rejects_non_iterable(self, bot: Bot) -> None:
        """A plain string is not a source: TypeError names what pipe() takes."""
        async with bot.stream(TO) as s:
            with pytest.raises(TypeError, match="async iterable"):
                await s.pipe("text")  # type: ignore[arg-type]

    async def test_non_str_piece_raises_type_error(self, bot: Bot) -> None:
        """A piece that is not str raises TypeError; the pieces before it were written."""
        async with bot.stream(TO) as s:
            with pytest.raises(TypeError, match="takes str"):
                await s.pipe(pieces("ok", 5))  # type: ignore[arg-type]
            assert s.text == "ok"


class TestFailingSource:
    async def test_source_error_is_reraised_and_text_kept(self, bot: Bot) -> None:
        """The source's own exception comes out of pipe(); what arrived stays in the transcript."""
        s = bot.stream(TO)
        with pytest.raises(LLMProviderError, match="model crashed"):
            async with s:
                await s.pipe(failing_after("第一段", "，第二段"))
        assert s.text == "第一段，第二段"

    async def test_message_finished_with_what_arrived(self, bot: Bot, emulator: Emulator) -> None:
        """When the source fails, the message is closed cleanly with the text that arrived."""
        s = bot.stream(TO)
        with pytest.raises(LLMProviderError):
            async with s:
                await s.pipe(failing_after("第一段", "，第二段"))
        assert s.state is StreamState.CLOSED
        [message] = emulator.chat(TO)
        assert message.text == "第一段，第二段"
        assert not message.incomplete
        assert s.message_info is not None
        assert s.message_info.msg_id == message.msg_id

    async def test_fake_llm_error_mid_stream(self, bot: Bot, emulator: Emulator) -> None:
        """A model error mid-answer leaves a finished message with the tokens before it."""
        async with FakeLLM(fault="error_mid_stream", fault_after=5) as llm:
            deltas = openai_chat_deltas(
                base_url=llm.base_url, api_key=None, model="fake-gpt", messages=MESSAGES
            )
            s = bot.stream(TO)
            with pytest.raises(LLMProviderError) as info:
                async with s:
                    await s.pipe(deltas)
        expected = "".join(tokenize(DEFAULT_ANSWER)[:5])
        assert info.value.text == expected
        assert s.state is StreamState.CLOSED
        [message] = emulator.chat(TO)
        assert message.text == expected
        assert not message.incomplete

    async def test_failure_before_any_text_sends_nothing(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """A source failing before its first piece creates no message and re-raises."""
        s = bot.stream(TO)
        with pytest.raises(LLMProviderError):
            async with s:
                await s.pipe(failing_after())
        assert emulator.chat(TO) == []
        assert emulator.streams == []
