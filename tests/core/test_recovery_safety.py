"""Recovery touches only its own message, and a recovered reply is shown exactly once.

Each case drives a real emulator on loopback; the faults are the emulator's own.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests._support import child_env
from yunhu_stream import Bot, Streamer, errors
from yunhu_stream._recovery import EDIT_GROWTH, EDIT_SMALL
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

GROUP = "group:42"
A_TEXT = "好的，这是第一个回答：" + "".join(f"A{i:03d} " for i in range(40))
B_TEXT = "好的，这是另一个回答：" + "".join(f"B{i:03d} " for i in range(40))
COMMON = "好的，"
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


async def open_both(emulator: Emulator, bot: Bot, drop_at: int) -> tuple[Streamer, Streamer]:
    """A's request drops after ``drop_at`` bytes; B opens second and shows exactly the
    common prefix "好的，", still live."""
    emulator.faults.drop_after(drop_at)
    a = bot.stream(to=GROUP)
    await a.write(COMMON)
    await (await emulator.wait_for_stream()).wait_for_bytes(len(COMMON.encode()))
    b = bot.stream(to=GROUP)
    await b.write(COMMON)
    await emulator.wait_until(lambda: len(emulator.streams) == 2)
    await emulator.streams[1].wait_for_bytes(len(COMMON.encode()))
    return a, b


class TestConcurrentRepliesInOneChat:
    async def test_a_drop_never_edits_the_other_reply_of_the_same_bot(
        self, emulator: Emulator
    ) -> None:
        """Two replies stream into one group, both starting "好的，"; B's message is the
        newer one and pauses there while A's connection drops at byte 20: both texts end
        up shown once, under different ids (A never edits B's message)."""
        async with make_bot(emulator) as bot:
            a, b = await open_both(emulator, bot, 20)
            await write_slowly(a, A_TEXT[len(COMMON):])
            await a.close()
            await b.write(B_TEXT[len(COMMON):])
            await b.close()
        assert sorted(shown(emulator)) == sorted([A_TEXT, B_TEXT])
        assert a.message_info is not None and b.message_info is not None
        assert a.message_info.msg_id != b.message_info.msg_id
        assert a.message_info.delivery == "stream+edit"
        assert b.message_info.delivery == "stream"

    async def test_a_partial_no_longer_than_the_shared_prefix_waits_for_the_other(
        self, emulator: Emulator
    ) -> None:
        """When A's partial message shows only "好的，" — exactly what B's shows — A cannot
        tell them apart until B has finished; then it takes its own and follows A's writes
        with edits while A is still open."""
        async with make_bot(emulator) as bot:
            a, b = await open_both(emulator, bot, len(COMMON.encode()))
            await write_slowly(a, A_TEXT[len(COMMON):])
            await asyncio.sleep(0.5)  # A's recovery has looked and found it undecidable
            await b.write(B_TEXT[len(COMMON):])
            await b.close()  # B's message is now known: the other one is A's
            await emulator.wait_until(lambda: A_TEXT in shown(emulator) or None, timeout=5,
                                      what="A's partial message edited while A is open")
            await a.close()
        assert sorted(shown(emulator)) == sorted([A_TEXT, B_TEXT])
        assert a.message_info is not None and a.message_info.delivery == "stream+edit"

    async def test_two_processes_sharing_a_token(self, emulator: Emulator) -> None:
        """This process's A starts first and drops at byte 20; meanwhile another process
        streams B into the same group, paused at "好的，": A never edits B's message, and
        both are shown once."""
        other = textwrap.dedent(f"""
            import asyncio, sys
            from yunhu_stream import Bot
            async def main():
                async with Bot({emulator.token!r}, base_url={emulator.base_url!r},
                               rate_limit=None) as bot:
                    async with bot.stream(to={GROUP!r}) as s:
                        await s.write({COMMON!r})
                        print("paused", flush=True)
                        await asyncio.to_thread(sys.stdin.readline)
                        await s.write({B_TEXT[len(COMMON):]!r})
                    print(s.message_info.msg_id, flush=True)
            asyncio.run(main())
        """)
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot:
            a = bot.stream(to=GROUP)
            await a.write(COMMON)
            record_a = await emulator.wait_for_stream()
            await record_a.wait_for_bytes(len(COMMON.encode()))
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", other, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env=child_env())
            assert proc.stdout is not None and proc.stdin is not None
            try:
                assert (await proc.stdout.readline()).strip() == b"paused"
                await emulator.wait_until(lambda: len(emulator.streams) == 2)
                await emulator.streams[1].wait_for_bytes(len(COMMON.encode()))
                await write_slowly(a, A_TEXT[len(COMMON):])
                await a.close()
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
                b_id = (await proc.stdout.readline()).decode().strip()
            finally:
                await proc.wait()
        assert sorted(shown(emulator)) == sorted([A_TEXT, B_TEXT])
        assert a.message_info is not None and a.message_info.msg_id != b_id


class TestShownOnce:
    async def test_drop_inside_the_first_character(self, emulator: Emulator) -> None:
        """A drop after 1 byte of "第" leaves an empty message; it is finished by edit,
        not left beside a second copy."""
        emulator.faults.drop_after(1)
        async with make_bot(emulator) as bot, bot.stream(to=GROUP) as s:
            await write_slowly(s, "第一行\n第二行")
        assert shown(emulator) == ["第一行\n第二行"]
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"

    async def test_lost_edit_answers_that_took_effect(self, emulator: Emulator) -> None:
        """Every edit takes effect but its answer is a 502: the text is checked in the chat
        and not sent a second time."""
        emulator.faults.drop_after(20)
        emulator.faults.http_status(502, when="after_body", times=None, endpoint="edit")
        async with make_bot(emulator, retry_attempts=2) as bot, bot.stream(to=GROUP) as s:
            await write_slowly(s, A_TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [A_TEXT] or None)
            await bot.send(GROUP, "another message meanwhile")  # the newest in the chat
        assert shown(emulator) == [A_TEXT, "another message meanwhile"]
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"

    async def test_rejected_edits_send_fresh_and_recall_the_partial(
        self, emulator: Emulator
    ) -> None:
        """When YunHu refuses every edit, the whole text goes out fresh and the partial
        message is recalled: the chat shows the reply once."""
        emulator.faults.drop_after(20)
        emulator.faults.reject(-1, "消息不存在", times=None, endpoint="edit")
        async with make_bot(emulator) as bot, bot.stream(to=GROUP) as s:
            await write_slowly(s, A_TEXT)
        assert shown(emulator) == [A_TEXT]
        assert s.message_info is not None and s.message_info.delivery == "send"
        recalled = [m for m in emulator.chat("group", "42", include_recalled=True) if m.recalled]
        assert [m.text for m in recalled] and A_TEXT.startswith(recalled[0].text)

    async def test_a_failed_lookup_is_tried_again_before_sending_it_all(
        self, emulator: Emulator
    ) -> None:
        """bot/messages fails when the stream breaks; looked at again at the end, the
        partial message is found and finished instead of sent twice."""
        emulator.faults.drop_after(20)
        emulator.faults.reject(-1, "busy", times=1, endpoint="messages")
        with capture_logs() as logs:
            async with make_bot(emulator) as bot, bot.stream(to=GROUP) as s:
                await write_slowly(s, A_TEXT)
        assert shown(emulator) == [A_TEXT]
        failed = [e for e in logs if e["event"] == "recovery_lookup_failed"]
        assert failed == [{"event": "recovery_lookup_failed", "error": "APIError",
                           "log_level": "warning", "recv_type": "group", "recv_id": "42"}]
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"

    async def test_a_failed_final_edit_that_cannot_be_checked_sends_the_text_again(
        self, emulator: Emulator
    ) -> None:
        """The closing edit of a recovered message fails and the lookup that would show
        whether it took effect fails too: the whole text is sent as a new message and
        the partial one recalled (never taken as shown)."""
        emulator.faults.drop_after(20)
        async with make_bot(emulator) as bot:
            s = bot.stream(to=GROUP)
            await write_slowly(s, A_TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [A_TEXT] or None)
            emulator.faults.reject(-1, "down", times=None, endpoint=("edit", "messages"))
            await s.write("，完")
            await s.close()
        assert shown(emulator) == [A_TEXT + "，完"]
        assert s.message_info is not None and s.message_info.delivery == "send"
        [partial] = [m for m in emulator.chat("group", "42", include_recalled=True)
                     if m.recalled]
        assert partial.text == A_TEXT


class TestAfterRecovery:
    async def test_rollover_continues_after_a_recovery(self, emulator: Emulator) -> None:
        """With max_message_bytes=4096, a drop early in the first message does not stop
        rollover: every message stays within the limit and the text is complete."""
        text = "".join(f"line {i:05d} of a long answer\n" for i in range(1500))
        emulator.faults.drop_after(50)
        async with make_bot(emulator) as bot, bot.stream(to=GROUP, max_message_bytes=4096) as s:
            await write_slowly(s, text, pieces=200)
        messages = shown(emulator)
        assert "".join(messages) == text
        assert len(messages) >= len(text.encode()) // 4096
        assert max(len(m.encode()) for m in messages) <= 4096
        assert s.messages[0].delivery == "stream+edit"
        assert {m.delivery for m in s.messages[1:]} == {"stream"}

    async def test_edits_carry_bytes_linear_in_the_text(self, emulator: Emulator) -> None:
        """A drop at byte 50, then 2 MB written: all edits together carry a small
        multiple of the text, not its square."""
        sent = 0

        async def count(_s: object, _ctx: object, params: aiohttp.TraceRequestChunkSentParams
                        ) -> None:
            nonlocal sent
            if params.url.path.endswith("/bot/edit"):
                sent += len(params.chunk)

        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(count)
        text = "".join(f"{i:07d} tokens keep coming\n" for i in range(80_000))  # ~2 MB
        emulator.faults.drop_after(50)
        async with (
            aiohttp.ClientSession(trace_configs=[trace]) as session,
            make_bot(emulator, session=session, edit_interval=0.01) as bot,
            bot.stream(to=GROUP) as s,
        ):
            await write_slowly(s, text, pieces=400)
        assert shown(emulator) == [text]
        assert sent < 8 * len(text.encode())


class TestBoundedTranscript:
    async def test_max_text_bytes_keeps_memory_constant_over_rollovers(
        self, emulator: Emulator
    ) -> None:
        """With max_message_bytes and max_text_bytes, s.text keeps only the tail while
        every byte still reaches the chat and stats count them all."""
        text = "".join(f"{i:06d} log line\n" for i in range(30_000))  # ~480 KB
        bot = make_bot(emulator)
        async with bot, bot.stream(to=GROUP, max_message_bytes=4096, max_text_bytes=8192) as s:
            await write_slowly(s, text, pieces=300)
            kept = len(s.text.encode())
        assert "".join(shown(emulator)) == text
        assert kept <= 8192 + 4096
        assert s.stats.bytes_written == len(text.encode())
        assert text.endswith(s.text)

    async def test_an_error_still_carries_the_undelivered_text(self, emulator: Emulator) -> None:
        """A bounded transcript still hands back, on failure, the message that did not
        reach the chat."""
        async with make_bot(emulator, recover=False) as bot:
            s = bot.stream(to=GROUP, max_message_bytes=256, max_text_bytes=0)
            await s.write("x" * 2000)
            await emulator.wait_until(lambda: len(emulator.streams) >= 3)
            emulator.faults.reject(1002, "bad", when="before_body", times=None)
            await s.write("the tail that never arrived")
            with pytest.raises(errors.YunhuError) as info:
                await s.close()
        assert info.value.text.endswith("the tail that never arrived")


class TestRecoveryWithMarkdownRollover:
    async def test_a_code_block_split_by_rollover_after_a_drop(self, emulator: Emulator) -> None:
        """A markdown stream dropped early, whose code block spans a rollover, still ends:
        every message is whole Markdown and the text is complete."""
        code = "".join(f"print({i})\n" for i in range(200))
        text = "好的，代码如下：\n\n```python\n" + code + "```\n\n完成。"
        emulator.faults.drop_after(30)
        bot = make_bot(emulator)
        async with bot, bot.stream(to=GROUP, content_type="markdown",
                                   max_message_bytes=1024) as s:
            await write_slowly(s, text, pieces=100)
        messages = shown(emulator)
        assert len(messages) > 1
        assert all(m.count("```") % 2 == 0 for m in messages)
        # each split closes the block ("```" on its own line) and the next reopens it
        rejoined = messages[0]
        for m in messages[1:]:
            if rejoined.endswith("```") and m.startswith("```python\n"):
                rejoined, m = rejoined[: -len("```")], m[len("```python\n"):]
            rejoined += m
        assert rejoined == text


# How a recovery finishes the partial message: it follows the writes with edits while the
# stream is open, edits only when there is new text, and puts buttons and mentions on the
# message that ends the text in the same request as its final text. Found unpinned by
# mutation testing (docs/testing.md).

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
            await write_slowly(s, A_TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [A_TEXT] or None, timeout=5,
                                      what="the written text shown by edit")
            before = edits(emulator)
            await asyncio.sleep(10 * EDIT_INTERVAL)
            assert edits(emulator) == before
            await s.close()
        assert shown(emulator) == [A_TEXT]

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
            await write_slowly(s, A_TEXT)
            await emulator.wait_until(lambda: shown(emulator) == [A_TEXT] or None, timeout=5,
                                      what="the written text shown by edit")
            before = edits(emulator)
            await s.close()
        assert edits(emulator) == before + 1
        (msg,) = emulator.chat("group", "42")
        assert (msg.text, msg.buttons, msg.at) == (A_TEXT, BUTTONS, ["u1"])
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
            await write_slowly(s, A_TEXT)
        assert edits(emulator) == 0
        fresh = emulator.chat("group", "42")[-1]
        assert (fresh.text, fresh.buttons, fresh.at) == (A_TEXT, BUTTONS, ["u1"])
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
    dropped, B's is live), as in TestConcurrentRepliesInOneChat."""

    async def test_while_the_other_stream_is_open_the_recovery_does_not_look_again(
        self, emulator: Emulator
    ) -> None:
        """A's partial shows only "好的，", like B's: after its two looks the recovery waits
        for B to end instead of reading the chat again (a second of nothing to await)."""
        async with make_bot(emulator) as bot:
            a, b = await open_both(emulator, bot, len(COMMON.encode()))
            await write_slowly(a, A_TEXT[len(COMMON):])
            await emulator.wait_until(lambda: lookups(emulator) >= 2 or None, timeout=5,
                                      what="the recovery's two looks")
            await asyncio.sleep(1.0)  # over three SETTLE_SECONDS, twenty edit intervals
            assert lookups(emulator) == 2
            await b.write(B_TEXT[len(COMMON):])
            await b.close()
            await a.close()
        assert sorted(shown(emulator)) == sorted([A_TEXT, B_TEXT])

    async def test_a_partial_found_beside_the_other_stays_found_after_it_ends(
        self, emulator: Emulator
    ) -> None:
        """A's partial shows 20 bytes, so it is found although B's "好的，" could also be
        A's; when B ends meanwhile, A keeps following its own message: the chat shows
        each reply once, and no leftover."""
        async with make_bot(emulator) as bot:
            a, b = await open_both(emulator, bot, 20)
            half = len(A_TEXT) // 2
            await write_slowly(a, A_TEXT[len(COMMON):half])
            await emulator.wait_until(lambda: A_TEXT[:half] in shown(emulator) or None,
                                      timeout=5, what="A's partial followed by edits")
            await b.write(B_TEXT[len(COMMON):])
            await b.close()
            await write_slowly(a, A_TEXT[half:])
            await a.close()
        assert sorted(shown(emulator)) == sorted([A_TEXT, B_TEXT])
