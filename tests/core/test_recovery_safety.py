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

from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

GROUP = "group:42"
A_TEXT = "好的，这是第一个回答：" + "".join(f"A{i:03d} " for i in range(40))
B_TEXT = "好的，这是另一个回答：" + "".join(f"B{i:03d} " for i in range(40))
COMMON = "好的，"


def make_bot(emu: Emulator, **options: object) -> Bot:
    base = {"base_url": emu.base_url, "rate_limit": None, "edit_interval": 0.05}
    base.update(options)
    return Bot(emu.token, **base)  # type: ignore[arg-type]


def shown(emu: Emulator) -> list[str]:
    return [m.text for m in emu.chat("group", "42")]


async def write_slowly(s: object, text: str, pieces: int = 20) -> None:
    step = max(1, len(text) // pieces)
    for i in range(0, len(text), step):
        await s.write(text[i:i + step])  # type: ignore[attr-defined]
        await asyncio.sleep(0.005)


class TestConcurrentRepliesInOneChat:
    async def test_a_drop_never_edits_the_other_reply_of_the_same_bot(
        self, emulator: Emulator
    ) -> None:
        """Two replies stream into one group, both starting "好的，"; B's message is the
        newer one and pauses there while A's connection drops at byte 20: both texts end
        up shown once, under different ids (A never edits B's message)."""
        emulator.faults.drop_after(20)  # the first stream (A's) is cut at byte 20
        async with make_bot(emulator) as bot:
            a = bot.stream(to=GROUP)
            await a.write(COMMON)
            record_a = await emulator.wait_for_stream()
            await record_a.wait_for_bytes(len(COMMON.encode()))
            b = bot.stream(to=GROUP)
            await b.write(COMMON)  # B now shows exactly the common prefix
            await emulator.wait_until(lambda: len(emulator.streams) == 2)
            await emulator.streams[1].wait_for_bytes(len(COMMON.encode()))
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
        emulator.faults.drop_after(len(COMMON.encode()))
        async with make_bot(emulator) as bot:
            a = bot.stream(to=GROUP)
            await a.write(COMMON)
            record_a = await emulator.wait_for_stream()
            await record_a.wait_for_bytes(len(COMMON.encode()))
            b = bot.stream(to=GROUP)
            await b.write(COMMON)
            await emulator.wait_until(lambda: len(emulator.streams) == 2)
            await emulator.streams[1].wait_for_bytes(len(COMMON.encode()))
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
                sys.executable, "-c", other, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
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
        assert shown(emulator) == [A_TEXT]
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
        async with make_bot(emulator) as bot, bot.stream(to=GROUP) as s:
            await write_slowly(s, A_TEXT)
        assert shown(emulator) == [A_TEXT]
        assert s.message_info is not None and s.message_info.delivery == "stream+edit"


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
