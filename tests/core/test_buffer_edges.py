"""Edges of the transcript buffer that the stream-level tests reach only by chance: where a
chunk may be cut in UTF-8, and a bounded wait while ``idle_timeout`` is also set."""

from __future__ import annotations

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
