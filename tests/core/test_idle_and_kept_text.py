"""``idle_timeout`` counts from the last write, however the delivery waits meanwhile; and
``max_text_bytes`` keeps the newest text, cut at a character boundary, counting all of it.
Both were found unpinned by mutation testing (docs/testing.md)."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from structlog.testing import capture_logs

from tests._support import emulator_bot
from yunhu_stream import errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestIdleTimeout:
    async def test_writes_closer_together_than_the_idle_timeout_keep_the_stream_open(
        self, emulator: Emulator
    ) -> None:
        """Writes 0.15 s apart with a 0.6 s idle timeout (4× margin): one message, all
        of it, and no ``stream_idle_closed``."""
        with capture_logs() as logs:
            async with emulator_bot(emulator, idle_timeout=0.6) as bot, bot.stream("user:1") as s:
                for i in range(6):
                    await s.write(f"part {i}. ")
                    await asyncio.sleep(0.15)
        assert [m.text for m in emulator.chat("user", "1")] == [s.text]
        assert not [e for e in logs if e["event"] == "stream_idle_closed"]

    async def test_a_message_ended_by_a_gap_still_idles_out(self, emulator: Emulator) -> None:
        """After a ``gap`` (0.1 s) ended the message, the stream waits for a next one; that
        wait too ends the stream once ``idle_timeout`` (0.3 s) has passed since the last
        write (it closes within 4× the timeout), and a later write is refused, as after any
        idle close.
        (Before, that wait had no idle timeout: the write was taken as a new message.)"""
        with capture_logs() as logs:
            async with emulator_bot(emulator, idle_timeout=0.3) as bot:
                s = bot.stream("user:1", gap=0.1)
                await s.write("before the silence")
                await emulator.wait_until(lambda: s.stats.messages == 1 or None)
                with anyio.fail_after(1.2):  # 4× the timeout
                    while not any(e["event"] == "stream_idle_closed" for e in logs):
                        await asyncio.sleep(0.01)
                with pytest.raises(errors.StreamClosedError) as info:
                    await s.write("too late")
                assert str(info.value) == ("cannot write: the stream was closed after "
                                           "idle_timeout")
                await s.close()
                with pytest.raises(errors.StreamClosedError) as info:
                    await s.write("later still")  # closed now, and still says why
                assert str(info.value) == ("cannot write to a stream that is closed after "
                                           "idle_timeout")
        assert [m.text for m in emulator.chat("user", "1")] == ["before the silence"]
        assert [e["event"] for e in logs].count("stream_idle_closed") == 1


@pytest.mark.parametrize("max_text", [100, 101, 103, 104])
async def test_kept_text_is_the_newest_bytes_cut_at_a_character(
    emulator: Emulator, max_text: int
) -> None:
    """With rollover every 64 bytes and ``max_text_bytes`` not a multiple of 3, after 1,500
    bytes of 3-byte characters ``s.text`` is the newest whole characters that fit (100 bytes
    keep 33: the 34th would be cut), every message in the chat is whole, and the counters
    still count everything."""
    text = "".join(chr(0x4E00 + i) for i in range(500))  # 500 CJK characters, 1,500 bytes
    async with emulator_bot(emulator) as bot, bot.stream(
            "user:1", max_message_bytes=64, max_text_bytes=max_text) as s:
        for i in range(0, len(text), 7):
            await s.write(text[i:i + 7])
    assert s.text == text[-(max_text // 3):]
    assert s.stats.bytes_written == 1500
    assert "".join(m.text for m in emulator.chat("user", "1")) == text


async def test_a_large_max_text_bytes_keeps_everything(emulator: Emulator) -> None:
    text = "é" * 300
    async with emulator_bot(emulator) as bot, bot.stream(
            "user:1", max_message_bytes=64, max_text_bytes=10_000) as s:
        for i in range(0, len(text), 10):
            await s.write(text[i:i + 10])
    assert s.text == text
