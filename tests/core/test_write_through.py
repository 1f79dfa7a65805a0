"""The stream body's two ways out (issue 16): write-through from write(), and the body.

Writes spaced apart go from ``write()`` straight to the connection while the body waits;
writes close together are coalesced by the body; a reply written whole before its request
starts goes out with the end of the body. Whichever way each piece went, the chat must show
exactly the text, in order, through rollover, backpressure and recovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest

from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PIECES = [f"第{i}句话，" if i % 3 else f"line {i}.\n" for i in range(40)]
TEXT = "".join(PIECES)


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                   edit_interval=0.02) as b:
        yield b


async def write_mixed(stream: object, pieces: list[str]) -> None:
    """Alternate pauses (the body parks, the next write may go through) and bursts."""
    for i, piece in enumerate(pieces):
        await stream.write(piece)  # type: ignore[attr-defined]
        if i % 5 == 4:
            await asyncio.sleep(0.003)


async def test_spaced_and_burst_writes_show_the_text_in_order(
    bot: Bot, emulator: Emulator
) -> None:
    async with bot.stream(to="user:1") as s:
        await write_mixed(s, PIECES)
    [message] = emulator.chat("user", "1")
    assert message.text == TEXT
    assert s.text == TEXT
    assert s.stats.bytes_sent == len(TEXT.encode())
    assert 1 <= s.stats.chunks_sent <= len(PIECES)


async def test_a_close_right_after_a_burst_still_sends_the_burst(
    bot: Bot, emulator: Emulator
) -> None:
    """The last writes woke the body but it had not run yet when close() came: it sends
    them before it ends the body."""
    async with bot.stream(to="user:4") as s:
        await s.write("a")
        await (await emulator.wait_for_stream()).wait_for_chunks(1)
        await asyncio.sleep(0.01)  # the body parks: the next write goes through
        await s.write("b")
        await s.write("c")  # right after it: this one wakes the body instead
    assert emulator.chat("user", "4")[0].text == "abc"
    assert s.stats.bytes_sent == 3


async def test_one_byte_writes_reach_the_chat_without_a_close(
    bot: Bot, emulator: Emulator
) -> None:
    """A single byte written while the body waits is sent at once, whether it goes
    through (the connection idle) or wakes the body (right after another write)."""
    async with bot.stream(to="user:5") as s:
        await s.write("a")
        record = await emulator.wait_for_stream()
        await record.wait_for_chunks(1)
        await asyncio.sleep(0.01)  # the body parks
        await s.write("b")  # goes through
        await s.write("c")  # right after it: wakes the body
        with anyio.fail_after(2):
            await emulator.wait_until(lambda: record.text == "abc" or None)
        await asyncio.sleep(0.01)
        await s.write("d")  # the body parked again
        with anyio.fail_after(2):
            await emulator.wait_until(lambda: record.text == "abcd" or None)
    assert emulator.chat("user", "5")[0].text == "abcd"


async def test_spaced_writes_roll_over_at_the_limit(bot: Bot, emulator: Emulator) -> None:
    """Writes that reach a message's split while going through still end that message
    there and start the next one."""
    async with bot.stream(to="user:2", max_message_bytes=120) as s:
        for piece in PIECES:
            await s.write(piece)
            await asyncio.sleep(0.002)
    messages = emulator.chat("user", "2")
    assert len(messages) >= 3
    assert all(len(m.text.encode()) <= 120 for m in messages)
    assert "".join(m.text for m in messages) == TEXT
    assert [m.msg_id for m in messages] == [i.msg_id for i in s.messages]


async def test_a_reply_written_before_its_request_goes_out_in_one_chunk(
    bot: Bot, emulator: Emulator
) -> None:
    s = bot.stream(to="user:3")
    await s.write("Hello")
    await s.write(", world")
    info = await s.close()
    assert info is not None
    assert emulator.chat("user", "3")[0].text == "Hello, world"
    assert s.stats.chunks_sent == 1


async def test_recovery_after_a_drop_replays_what_went_through(
    bot: Bot, emulator: Emulator
) -> None:
    """The connection drops after some of the spaced writes went out by write-through:
    recovery finishes the message with the whole text, shown once."""
    emulator.faults.drop_after(30)
    async with bot.stream(to="user:4") as s:
        await write_mixed(s, PIECES)
    messages = emulator.chat("user", "4")
    assert [m.text for m in messages] == [TEXT]
    assert s.message_info is not None
    assert s.message_info.delivery in ("stream", "stream+edit", "send")


async def test_a_stalled_server_holds_spaced_writes_back(emulator: Emulator) -> None:
    """While the server reads nothing, write-through must not bypass the buffer bound by
    queueing in the connection: once the socket is full, spaced writes wait (the producer
    does not get through 16 MiB), and when reading resumes all of it arrives."""
    fault = emulator.faults.stall(after_bytes=1)
    piece = "y" * (64 * 1024 - 1) + "\n"
    count = 256  # 16 MiB: far more than loopback socket buffers hold

    async def produce(s: object) -> None:
        for _ in range(count):
            await s.write(piece)  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)  # spaced: each write could go through

    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                   max_buffer_bytes=64 * 1024) as b, b.stream(to="user:5") as s:
        producer = asyncio.create_task(produce(s))
        # Unbounded, the 256 spaced writes would end in about 0.3 s (margin > 4×).
        done, _ = await asyncio.wait({producer}, timeout=1.3)
        assert not done, "all writes returned while the server read nothing"
        assert s.stats.buffered_bytes <= 64 * 1024
        fault.release()
        await producer
    assert emulator.chat("user", "5")[0].text == piece * count
