"""What streamed messages cannot carry, done anyway: buttons, quotes and rollover (issue 5.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunhu_stream import Bot
from yunhu_stream._buffer import TranscriptBuffer
from yunhu_stream.emulator import Emulator
from yunhu_stream.mentions import mention

pytestmark = pytest.mark.anyio

BUTTONS = [[{"text": "Docs", "actionType": 1, "url": "https://example.com/docs"},
            {"text": "Again", "actionType": 3, "value": "again"}]]


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


class TestButtons:
    async def test_buttons_attached_by_one_edit_after_stream(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """The message streams without buttons, then one edit adds them with the full text."""
        async with bot.stream(to="group:1", content_type="markdown", buttons=BUTTONS) as s:
            await s.write("**answer** ")
            msg = await emulator.wait_for_message("group", "1")
            assert msg.buttons is None
            await s.write("done")
        assert (msg.text, msg.buttons, msg.edits) == ("**answer** done", BUTTONS, 1)
        assert s.message_info is not None and s.message_info.delivery == "stream"
        edits = [r for r in emulator.requests if r.endpoint == "edit"]
        assert len(edits) == 1

    async def test_no_buttons_no_edit(self, bot: Bot, emulator: Emulator) -> None:
        """Without buttons or mentions no edit is made."""
        async with bot.stream(to="group:1") as s:
            await s.write("plain")
        assert not [r for r in emulator.requests if r.endpoint == "edit"]


class TestMentions:
    async def test_stream_with_mention_gets_at_list(self, bot: Bot, emulator: Emulator) -> None:
        """A mention written into the stream is completed by the closing edit's at list."""
        m = mention("小明", "u-42")
        async with bot.stream(to="group:1", at=m.at) as s:
            await s.write(m.text + " 你好")
        (msg,) = emulator.chat("group", "1")
        assert msg.at == ["u-42"] and msg.text == "@小明\u200b 你好"


class TestQuote:
    async def test_fallback_sends_one_quoted_message(self, bot: Bot, emulator: Emulator) -> None:
        """quote='fallback' collects the writes and sends them whole, quoted, at close."""
        parent = await bot.send("group:1", "question?")
        async with bot.stream(to="group:1", reply_to=parent.msg_id, quote="fallback") as s:
            await s.write("part one, ")
            await s.write("part two")
            assert emulator.streams == []
        reply = emulator.chat("group", "1")[-1]
        assert (reply.text, reply.parent_id) == ("part one, part two", parent.msg_id)
        assert s.message_info is not None and s.message_info.delivery == "send"

    async def test_drop_streams_without_quote(self, bot: Bot, emulator: Emulator) -> None:
        """The default quote='drop' still streams; the quote is not carried."""
        async with bot.stream(to="group:1", reply_to="m-1") as s:
            await s.write("streamed")
        assert emulator.streams[-1].completed
        assert emulator.chat("group", "1")[-1].parent_id in (None, "")

    async def test_bad_quote_option(self, bot: Bot) -> None:
        """quote takes 'drop' or 'fallback' only."""
        with pytest.raises(ValueError, match="'drop', 'fallback'"):
            bot.stream(to="group:1", reply_to="m", quote="always")  # type: ignore[arg-type]


class TestRollover:
    async def test_long_answer_rolls_over_at_paragraphs(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """Past max_message_bytes a new streamed message starts at a paragraph boundary."""
        paragraphs = [f"第{i}段：" + "内容" * 30 + "\n\n" for i in range(6)]
        async with bot.stream(to="user:1", max_message_bytes=600) as s:
            for p in paragraphs:
                for i in range(0, len(p), 7):
                    await s.write(p[i : i + 7])
        chat = emulator.chat("user", "1")
        assert len(chat) == len(s.messages) >= 2
        assert [m.msg_id for m in chat] == [i.msg_id for i in s.messages]
        assert "".join(m.text for m in chat) == s.text
        for m in chat:
            assert len(m.text.encode()) <= 600
            assert m.text.endswith("\n\n") or m is chat[-1]
        assert s.message_info == s.messages[-1]

    async def test_rollover_without_boundaries_never_splits_a_character(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """Text with no boundary is cut at the limit, on a character boundary."""
        text = "云湖😀" * 100  # 700 bytes, no spaces or newlines
        async with bot.stream(to="user:1", max_message_bytes=128) as s:
            await s.write(text)
        chat = emulator.chat("user", "1")
        assert "".join(m.text for m in chat) == text
        assert all(len(m.text.encode()) <= 128 for m in chat)
        assert all(r.completed for r in emulator.streams)

    async def test_buttons_go_on_the_last_message(self, bot: Bot, emulator: Emulator) -> None:
        """After a rollover the buttons are attached to the final message only."""
        async with bot.stream(to="user:1", max_message_bytes=64, buttons=BUTTONS) as s:
            await s.write("line one is here\n" * 8)
        chat = emulator.chat("user", "1")
        assert len(chat) > 1
        assert [m.buttons for m in chat] == [None] * (len(chat) - 1) + [BUTTONS]

    @pytest.mark.parametrize("size", [0, 63, "100"])
    async def test_bad_limit(self, bot: Bot, size: object) -> None:
        """max_message_bytes must be an integer of at least 64."""
        with pytest.raises(ValueError, match="max_message_bytes"):
            bot.stream(to="user:1", max_message_bytes=size)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=400),
       limit=st.integers(64, 200), step=st.integers(1, 50))
def test_split_points_are_bounded_and_whole(text: str, limit: int, step: int) -> None:
    """Any text fed in any steps splits into messages within the limit, on character bounds."""
    buf = TranscriptBuffer(max_pending=1 << 20, max_message=limit)
    data = text.encode()
    messages: list[bytes] = []
    pos = 0
    while True:
        if pos < len(data):
            # feed whole characters only, as write() does
            end = min(len(data), pos + step)
            while end < len(data) and (data[end] & 0xC0) == 0x80:
                end += 1
            buf.append(data[pos:end])
            pos = end
        else:
            buf.eof = True
        while buf.take() is not None:
            pass
        if buf.message_done() and (buf.split is not None or buf.eof):
            messages.append(bytes(buf.data[buf.message_start : buf.taken]))
            if buf.eof and buf.taken >= len(buf.data):
                break
            buf.next_message()
    assert b"".join(messages) == data
    for m in messages:
        assert len(m) <= limit
        m.decode("utf-8")
