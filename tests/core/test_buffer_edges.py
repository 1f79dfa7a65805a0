"""Edges of the transcript buffer that the stream-level tests reach only by chance: where a
chunk may be cut in UTF-8, and a bounded wait while ``idle_timeout`` is also set."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from yunhu_stream import Bot, FirstChunk
from yunhu_stream._buffer import utf8_floor
from yunhu_stream.emulator import Emulator

TEXT = "a é 中 😀 z".encode()


def boundaries(data: bytes) -> set[int]:
    """Every index at which a UTF-8 character starts, and the end."""
    return {i for i in range(len(data)) if data[i] & 0xC0 != 0x80} | {len(data)}


@pytest.mark.parametrize("pos", range(len(TEXT) + 1))
def test_a_cut_moves_back_to_the_start_of_the_character_it_falls_in(pos: int) -> None:
    """``utf8_floor`` gives the largest character boundary at or before ``pos``: inside a
    2-, 3- or 4-byte character (also the first one) it goes back to that character's
    start, never further, and the end of the data is a boundary."""
    expected = max(b for b in boundaries(TEXT) if b <= pos)
    assert utf8_floor(TEXT, pos) == expected


def test_a_cut_inside_the_first_character_goes_to_zero() -> None:
    data = "é".encode()  # C3 A9
    assert utf8_floor(data, 1) == 0


@pytest.mark.anyio
async def test_a_first_chunk_deadline_holds_while_an_idle_timeout_is_set(
    emulator: Emulator,
) -> None:
    """With ``idle_timeout`` set, a shorter bound on a wait (here the first chunk's
    ``max_wait``) still ends it: the held text goes out after 0.1 s, not after the 30 s
    idle timeout."""
    held = FirstChunk(min_chars=1000, max_wait=0.1)
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                   idle_timeout=30.0) as bot, bot.stream(to="user:1", first_chunk=held) as s:
        await s.write("held until the deadline")
        with anyio.fail_after(10):  # far below the idle timeout, far above 0.1 s
            msg = await emulator.wait_for_message("user", "1")
        assert msg.text == "held until the deadline"
        await s.write(", and more")  # the deadline's end did not end the stream
    assert msg.text == "held until the deadline, and more"


@pytest.mark.anyio
async def test_a_gap_inside_a_reopened_code_block_closes_and_reopens_it_again(
    emulator: Emulator,
) -> None:
    """Two gaps in one code block: the middle message starts inside the block (reopened)
    and ends inside it, so it is closed and the third message reopens it once more."""
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as bot, \
            bot.stream(to="group:1", content_type="markdown", gap=0.05) as s:
        await s.write("intro\n```python\nx = 1\n")
        await (await emulator.wait_for_stream()).wait_done()
        await s.write("y = 2\n")
        await emulator.wait_until(lambda: len(emulator.streams) == 2 or None)
        await emulator.streams[1].wait_done()
        await s.write("z = 3\n```\ndone")
    texts = [m.text for m in emulator.chat("group", "1")]
    assert texts == ["intro\n```python\nx = 1\n```", "```python\ny = 2\n```",
                     "```python\nz = 3\n```\ndone"]


@pytest.mark.anyio
async def test_a_large_write_after_a_timed_out_gathering_goes_through(
    emulator: Emulator,
) -> None:
    """Writes on every loop pass start the body gathering; once its 1 ms is over, a single
    write of more than a chunk's worth is taken like any other."""
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as bot, \
            bot.stream(to="user:1") as s:
        await s.write("start ")
        await emulator.wait_for_stream()
        for i in range(5):
            await s.write(f"{i} ")
            await asyncio.sleep(0)
        await asyncio.sleep(0.02)  # the gathering's timer has fired
        await s.write("x" * 70_000)
    assert emulator.chat("user", "1")[-1].text == s.text
