"""Buttons and mentions decided after a stream started: ``Streamer.attach``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator
from yunhu_stream.mentions import mention

pytestmark = pytest.mark.anyio

BUTTONS = [[{"text": "Again", "actionType": 3, "value": "again"}]]


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


class TestAttach:
    async def test_buttons_attached_mid_stream_arrive_with_the_closing_edit(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """Buttons attached after the first chunk went out are added by one edit at the end."""
        async with bot.stream(to="group:1") as s:
            await s.write("first ")
            await (await emulator.wait_for_stream()).wait_for_chunks(1)
            s.attach(buttons=BUTTONS)
            await s.write("second")
        (msg,) = emulator.chat("group", "1")
        assert (msg.text, msg.buttons, msg.edits) == ("first second", BUTTONS, 1)

    async def test_mentions_add_to_the_ones_given_when_the_stream_opened(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """at= ids given to stream() and ids attached later are all in the at list, once each."""
        first, second = mention("小明", "u-1"), mention("小红", "u-2")
        async with bot.stream(to="group:1", at=first.at) as s:
            await s.write(first.text + " 你好 ")
            s.attach(at=second.at + first.at)
            await s.write(second.text)
        (msg,) = emulator.chat("group", "1")
        assert msg.at == ["u-1", "u-2"]

    async def test_attached_buttons_go_on_the_last_message_after_a_rollover(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """With rollover, only the message holding the end of the text gets the buttons."""
        async with bot.stream(to="group:1", max_message_bytes=64) as s:
            await s.write("line of text number one.\n" * 4)
            s.attach(buttons=BUTTONS)
        messages = emulator.chat("group", "1")
        assert len(messages) >= 2
        assert [m.buttons for m in messages] == [None] * (len(messages) - 1) + [BUTTONS]
        assert "".join(m.text for m in messages) == "line of text number one.\n" * 4

    async def test_attach_after_close_is_refused(self, bot: Bot) -> None:
        """Once close() has begun there is no closing edit left to carry them."""
        async with bot.stream(to="group:1") as s:
            await s.write("done")
        with pytest.raises(errors.StreamClosedError, match="closed"):
            s.attach(buttons=BUTTONS)

    async def test_bad_buttons_are_refused_and_the_stream_goes_on(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """A malformed button raises ValueError naming it; the stream stays usable."""
        async with bot.stream(to="group:1") as s:
            await s.write("text")
            with pytest.raises(ValueError, match=r"buttons\[0\]\[0\]"):
                s.attach(buttons=[[{"text": "x", "actionType": 9}]])
        assert emulator.chat("group", "1")[0].text == "text"


class TestAttachAfterAMessageEnded:
    async def test_buttons_attached_after_a_gap_ended_the_message_keep_its_text(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """A gap ends the message; buttons attached afterwards, with no text after them,
        go on that message by an edit that keeps its text."""
        async with bot.stream(to="group:1", gap=0.05) as s:
            await s.write("the whole answer")
            await emulator.wait_until(lambda: s.messages or None, what="the gap to end it")
            s.attach(buttons=BUTTONS)
        (msg,) = emulator.chat("group", "1")
        assert (msg.text, msg.buttons, msg.edits) == ("the whole answer", BUTTONS, 1)
