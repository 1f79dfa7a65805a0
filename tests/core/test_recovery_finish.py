"""How a recovery finishes the partial message (docs/reliability.md, "Recovery"): it
follows the writes with edits while the stream is open, edits only when there is new
text, and puts buttons and mentions on the message that ends the text in the same
request as its final text. Found unpinned by mutation testing (docs/testing.md)."""

from __future__ import annotations

import asyncio

from yunhu_stream import Bot, Streamer
from yunhu_stream._recovery import EDIT_GROWTH, EDIT_SMALL
from yunhu_stream.emulator import Emulator

GROUP = "group:42"
COMMON = "好的，"
TEXT = COMMON + "这是一个回答：" + "".join(f"A{i:03d} " for i in range(40))
OTHER = COMMON + "这是另一个回答：" + "".join(f"B{i:03d} " for i in range(40))
BUTTONS = [[{"text": "Again", "actionType": 3, "value": "again"}]]
EDIT_INTERVAL = 0.05


def make_bot(emu: Emulator, **options: object) -> Bot:
    base: dict[str, object] = {"base_url": emu.base_url, "rate_limit": None,
                               "edit_interval": EDIT_INTERVAL}
    base.update(options)
    return Bot(emu.token, **base)  # type: ignore[arg-type]


def shown(emu: Emulator) -> list[str]:
    return [m.text for m in emu.chat("group", "42")]


def edits(emu: Emulator) -> int:
    return sum(r.endpoint == "edit" for r in emu.requests)


def lookups(emu: Emulator) -> int:
    return sum(r.endpoint == "messages" for r in emu.requests)


async def write_slowly(s: Streamer, text: str, pieces: int = 20) -> None:
    step = max(1, len(text) // pieces)
    for i in range(0, len(text), step):
        await s.write(text[i:i + step])
        await asyncio.sleep(0.005)


class TestFollowing:
    async def test_a_one_character_text_is_shown_before_the_stream_ends(
        self, emulator: Emulator
    ) -> None:
        """A drop inside the only character leaves an empty message; the recovery edits
        it to that character while the stream is still open, not only when it closes."""
        emulator.faults.drop_after(1)
        async with make_bot(emulator) as bot:
            s = bot.stream(to=GROUP)
            await s.write("第")
            await emulator.wait_until(lambda: shown(emulator) == ["第"] or None, timeout=5,
                                      what="the one character shown by edit")
            await s.close()
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"

    async def test_no_new_text_means_no_new_edit(self, emulator: Emulator) -> None:
        """Once the chat shows everything written, ten edit intervals without a write
        bring no edit (an edit that must not happen has no event to await)."""
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot:
            s = bot.stream(to=GROUP)
            await write_slowly(s, TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [TEXT] or None, timeout=5,
                                      what="the written text shown by edit")
            before = edits(emulator)
            await asyncio.sleep(10 * EDIT_INTERVAL)
            assert edits(emulator) == before
            await s.close()
        assert shown(emulator) == [TEXT]

    async def test_past_the_small_size_an_edit_waits_for_a_quarter_more(
        self, emulator: Emulator
    ) -> None:
        """At exactly EDIT_SMALL characters a message is still small: one more character
        is shown by edit while the stream is open. Past it, an edit waits until the text
        grew by a quarter, so a few more characters are not edited in before the close."""
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot:
            s = bot.stream(to=GROUP)
            await write_slowly(s, "x" * EDIT_SMALL)
            await emulator.wait_until(lambda: shown(emulator) == ["x" * EDIT_SMALL] or None,
                                      timeout=5, what="EDIT_SMALL characters shown by edit")
            await s.write("y")
            await emulator.wait_until(
                lambda: shown(emulator) == ["x" * EDIT_SMALL + "y"] or None, timeout=5,
                what="one more character shown by edit")
            before = edits(emulator)
            await s.write("z" * (EDIT_SMALL // EDIT_GROWTH - 1))
            await asyncio.sleep(10 * EDIT_INTERVAL)
            assert edits(emulator) == before
            await s.close()
        assert shown(emulator) == ["x" * EDIT_SMALL + "y" + "z" * (EDIT_SMALL // EDIT_GROWTH - 1)]


class TestDecoration:
    async def test_the_final_edit_carries_the_buttons_and_mentions(
        self, emulator: Emulator
    ) -> None:
        """The partial message is found and followed; closing brings one edit, which gives
        it the whole text, the buttons and the mentions (no second edit adds them)."""
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot:
            s = bot.stream(to=GROUP, buttons=BUTTONS, at=["u1"])
            await write_slowly(s, TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [TEXT] or None, timeout=5,
                                      what="the written text shown by edit")
            before = edits(emulator)
            await s.close()
        assert edits(emulator) == before + 1
        (msg,) = emulator.chat("group", "42")
        assert (msg.text, msg.buttons, msg.at) == (TEXT, BUTTONS, ["u1"])
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"

    async def test_a_fresh_send_carries_the_buttons_and_mentions(
        self, emulator: Emulator
    ) -> None:
        """When the chat cannot be read, the recovery sends the whole text fresh, with the
        buttons and mentions in that request: no edit follows."""
        emulator.faults.drop_after(20)
        emulator.faults.http_status(500, times=None, endpoint="messages")
        async with make_bot(emulator, retry_attempts=1) as bot, bot.stream(
                to=GROUP, buttons=BUTTONS, at=["u1"]) as s:
            await write_slowly(s, TEXT)
        assert edits(emulator) == 0
        fresh = emulator.chat("group", "42")[-1]
        assert (fresh.text, fresh.buttons, fresh.at) == (TEXT, BUTTONS, ["u1"])
        assert s.message_info is not None and s.message_info.delivery == "send"

    async def test_a_recovered_message_that_rolls_over_keeps_no_buttons(
        self, emulator: Emulator
    ) -> None:
        """A drop in the first of several messages, the whole text written and closed
        while the recovery finishes it: only the last message gets the buttons."""
        line = "line of text number one.\n"
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot, bot.stream(
                to=GROUP, buttons=BUTTONS, max_message_bytes=64) as s:
            await s.write(line * 4)
        messages = emulator.chat("group", "42")
        assert len(messages) >= 2
        assert [m.buttons for m in messages] == [None] * (len(messages) - 1) + [BUTTONS]
        assert "".join(m.text for m in messages) == line * 4


class TestWaitingForTheOtherStream:
    """Two replies of one Bot stream into one group, both starting "好的，" (A's is
    dropped, B's is live); see test_recovery_safety.TestConcurrentRepliesInOneChat."""

    async def _open_both(self, emulator: Emulator, bot: Bot, drop_at: int
                         ) -> tuple[Streamer, Streamer]:
        emulator.faults.drop_after(drop_at)
        a = bot.stream(to=GROUP)
        await a.write(COMMON)
        await (await emulator.wait_for_stream()).wait_for_bytes(len(COMMON.encode()))
        b = bot.stream(to=GROUP)
        await b.write(COMMON)  # B now shows exactly the common prefix
        await emulator.wait_until(lambda: len(emulator.streams) == 2)
        await emulator.streams[1].wait_for_bytes(len(COMMON.encode()))
        return a, b

    async def test_while_the_other_stream_is_open_the_recovery_does_not_look_again(
        self, emulator: Emulator
    ) -> None:
        """A's partial shows only "好的，", like B's: after its two looks the recovery waits
        for B to end instead of reading the chat again (a second of nothing to await)."""
        async with make_bot(emulator) as bot:
            a, b = await self._open_both(emulator, bot, len(COMMON.encode()))
            await write_slowly(a, TEXT[len(COMMON):])
            await emulator.wait_until(lambda: lookups(emulator) >= 2 or None, timeout=5,
                                      what="the recovery's two looks")
            await asyncio.sleep(1.0)  # over three SETTLE_SECONDS, twenty edit intervals
            assert lookups(emulator) == 2
            await b.write(OTHER[len(COMMON):])
            await b.close()
            await a.close()
        assert sorted(shown(emulator)) == sorted([TEXT, OTHER])

    async def test_a_partial_found_beside_the_other_stays_found_after_it_ends(
        self, emulator: Emulator
    ) -> None:
        """A's partial shows 20 bytes, so it is found although B's "好的，" could also be
        A's; when B ends meanwhile, A keeps following its own message: the chat shows
        each reply once, and no leftover."""
        async with make_bot(emulator) as bot:
            a, b = await self._open_both(emulator, bot, 20)
            half = len(TEXT) // 2
            await write_slowly(a, TEXT[len(COMMON):half])
            await emulator.wait_until(lambda: TEXT[:half] in shown(emulator) or None,
                                      timeout=5, what="A's partial followed by edits")
            await b.write(OTHER[len(COMMON):])
            await b.close()
            await write_slowly(a, TEXT[half:])
            await a.close()
        assert sorted(shown(emulator)) == sorted([TEXT, OTHER])
