"""Promises of docs/streaming.md that no other test pinned (issue 17), against the emulator.

Each test is named after what must hold. Faults that stall the server are released in a
``finally``, and every wait that a regression could turn into a hang is bounded with
``anyio.fail_after`` (generous: it only turns a hang into a failure, it measures nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio
import pytest
from structlog.testing import capture_logs

from yunhu_stream import Bot, MessageInfo, Recipient, Streamer, StreamState, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

HANG = 30  # seconds: a bound that turns a hang into a failure, far above any legit wait


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


async def fill(s: object) -> None:
    """write_nowait() until the buffer refuses (the server must have stopped reading)."""
    with pytest.raises(errors.WouldBlockError):
        for _ in range(100_000):
            s.write_nowait("x" * 1024)  # type: ignore[attr-defined]
            await asyncio.sleep(0)


async def start_closing(s: Streamer) -> asyncio.Task[MessageInfo | None]:
    """close() in a task of its own, once the stream is CLOSING."""
    closing = asyncio.ensure_future(s.close())
    with anyio.fail_after(HANG):
        while s.state is not StreamState.CLOSING:
            await asyncio.sleep(0)
    return closing


class TestBlockedWriteIsReleased:
    async def test_write_waiting_for_room_raises_when_the_stream_is_aborted(
        self, emulator: Emulator
    ) -> None:
        fault = emulator.faults.stall(after_bytes=1)
        try:
            async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                           max_buffer_bytes=4096) as b:
                s = b.stream(to="user:1")
                await fill(s)
                blocked = asyncio.ensure_future(s.write("y" * 1024))
                await asyncio.sleep(0)
                assert not blocked.done()
                await s.abort()
                with anyio.fail_after(HANG), pytest.raises(errors.StreamClosedError):
                    await blocked
                assert "y" not in s.text
        finally:
            fault.release()

    async def test_write_waiting_for_room_raises_when_the_stream_fails(
        self, emulator: Emulator
    ) -> None:
        fault = emulator.faults.stall(after_bytes=1)
        try:
            async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                           max_buffer_bytes=4096, recover=False) as b:
                s = b.stream(to="user:1")
                await fill(s)
                blocked = asyncio.ensure_future(s.write("y" * 1024))
                await asyncio.sleep(0)
                assert not blocked.done()
                await emulator.restart()  # cuts the stalled request: the stream fails
                # The cut request may take the buffered bytes on its way down, making
                # room first: then the write is accepted; either way it must not hang.
                with anyio.fail_after(HANG), contextlib.suppress(errors.StreamBrokenError):
                    await blocked
                with pytest.raises(errors.StreamBrokenError) as info:
                    await s.write("z")
                with pytest.raises(errors.StreamBrokenError):
                    await s.close()
                assert info.value.text == s.text and "z" not in s.text
        finally:
            fault.release()


class TestQuoteFallback:
    async def test_write_nowait_never_blocks_a_quoted_fallback(self, emulator: Emulator) -> None:
        """quote="fallback" sends the text whole at close: it has no buffer bound."""
        async with (
            Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                max_buffer_bytes=16) as b,
            b.stream("user:1", reply_to="m-quoted", quote="fallback") as s,
        ):
            for i in range(100):  # no yield: the delivery task has not even started
                s.write_nowait(f"{i:04d}")
        [message] = emulator.chat("user", "1")
        assert message.text == "".join(f"{i:04d}" for i in range(100))
        assert message.parent_id == "m-quoted"
        assert s.message_info is not None and s.message_info.delivery == "send"

    async def test_quote_dropped_is_logged_when_the_quote_is_dropped(
        self, emulator: Emulator, bot: Bot
    ) -> None:
        with capture_logs() as logs:
            async with bot.stream("user:1", reply_to="m-quoted") as s:
                await s.write("streamed")
        assert [e["reply_to"] for e in logs if e["event"] == "quote_dropped"] == ["m-quoted"]
        [message] = emulator.chat("user", "1")
        assert message.parent_id is None and message.streamed
        with capture_logs() as logs:
            async with bot.stream("user:1", reply_to="m-quoted", quote="fallback") as s:
                await s.write("quoted")
        assert not [e for e in logs if e["event"] == "quote_dropped"]


class TestLifecycle:
    async def test_streamer_can_be_entered_only_once(self, bot: Bot) -> None:
        s = bot.stream("user:1")
        async with s:
            await s.write("a")
            with pytest.raises(errors.StreamClosedError, match="only once"):
                async with s:
                    pass  # pragma: no cover
        with pytest.raises(errors.StreamClosedError) as info:
            async with s:
                pass  # pragma: no cover
        assert str(info.value) == "a Streamer can be entered only once"

    async def test_a_streamer_names_its_recipient_and_content_type(self, bot: Bot) -> None:
        s = bot.stream("group:7", content_type="markdown")
        assert s.recipient == Recipient.group("7") and s.content_type == "markdown"
        assert repr(s) == ("<Streamer to=group:7 content_type='markdown' state=idle "
                           "bytes=0>")

    async def test_no_write_is_accepted_while_closing(self, emulator: Emulator, bot: Bot) -> None:
        fault = emulator.faults.never_answer()
        try:
            s = bot.stream("user:1")
            await s.write("the text")
            closing = await start_closing(s)
            with pytest.raises(errors.StreamClosedError, match="closing"):
                await s.write("late")
            with pytest.raises(errors.StreamClosedError, match="closing"):
                s.write_nowait("late")
            assert not closing.done()
        finally:
            fault.release()
        await closing
        assert s.text == "the text"
        assert [m.text for m in emulator.chat("user", "1")] == ["the text"]

    async def test_a_block_that_fails_while_another_task_closes_lets_the_close_finish(
        self, emulator: Emulator, bot: Bot
    ) -> None:
        """BotApp's shutdown closes a handler's open reply from outside; the handler's
        next write is refused and its ``async with`` exits with that error. The close
        already begun finishes the message: exiting the block must not cut it off."""
        fault = emulator.faults.stall(after_bytes=len("the text"))  # the close waits
        try:
            with pytest.raises(errors.StreamClosedError, match="closing"):
                async with bot.stream("user:1") as s:
                    await s.write("the text")
                    with anyio.fail_after(HANG):
                        await fault.wait_hit()
                    closing = await start_closing(s)
                    asyncio.get_running_loop().call_later(0.05, fault.release)
                    await s.write("late")  # refused: the block exits with that error
        finally:
            fault.release()
        with anyio.fail_after(HANG):
            await closing
        assert s.state is StreamState.CLOSED
        record = emulator.streams[-1]
        with anyio.fail_after(HANG):
            await record.wait_done()
        assert record.completed
        [message] = emulator.chat("user", "1")
        assert message.text == "the text" and not message.incomplete

    async def test_a_close_pending_when_another_task_aborts_says_so_with_the_text(
        self, emulator: Emulator, bot: Bot
    ) -> None:
        fault = emulator.faults.never_answer()
        try:
            s = bot.stream("user:1")
            await s.write("the text")
            closing = await start_closing(s)
            await asyncio.sleep(0.01)  # the close is waiting for the answer
            await s.abort()
            with anyio.fail_after(HANG), pytest.raises(errors.StreamClosedError) as info:
                await closing
        finally:
            fault.release()
        assert str(info.value) == "the stream was aborted (by another task) while closing"
        assert info.value.text == "the text"
        assert s.state is StreamState.ABORTED

    async def test_abort_is_idempotent_and_logged_once(self, emulator: Emulator, bot: Bot) -> None:
        s = bot.stream("user:1")
        with capture_logs() as logs:
            await s.write("cut off")
            await emulator.wait_for_stream()
            await s.abort()
            await s.abort()
            await s.close()  # after abort: nothing to raise, nothing sent
        assert s.state is StreamState.ABORTED
        aborted = [e for e in logs if e["event"] == "stream_aborted"]
        assert len(aborted) == 1 and aborted[0]["bytes"] == len(b"cut off")
        assert not [e for e in logs if e["event"] == "stream_closed"]
        record = emulator.streams[-1]
        with anyio.fail_after(HANG):
            await record.wait_done()
        assert not record.completed

    async def test_abort_of_an_unused_stream_logs_nothing(self, bot: Bot) -> None:
        s = bot.stream("user:1")
        with capture_logs() as logs:
            await s.abort()
        assert s.state is StreamState.ABORTED
        assert not [e for e in logs if e["event"] == "stream_aborted"]


class TestStatistics:
    async def test_stats_writes_counts_only_non_empty_writes(self, bot: Bot) -> None:
        async with bot.stream("user:1") as s:
            await s.write("")  # before the stream opened (the general path)
            s.write_nowait("")
            await s.write("a")
            await s.write("")  # an open stream (the fast path)
            await s.write("b")
            s.write_nowait("")
            s.write_nowait("c")
            assert s.stats.writes == 3
        assert s.stats.writes == 3 and s.text == "abc"


class TestIdleTimeout:
    async def test_idle_stream_ends_logs_and_refuses_later_writes(
        self, emulator: Emulator
    ) -> None:
        async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                       idle_timeout=0.2) as b:
            with capture_logs() as logs:
                s = b.stream("user:1")
                await s.write("then silence")
                with anyio.fail_after(HANG):
                    await emulator.wait_for_message(
                        "user", "1", lambda m: not m.streaming, timeout=None)
                    while s.stats.messages == 0:
                        await asyncio.sleep(0.01)
            idle = [e for e in logs if e["event"] == "stream_idle_closed"]
            assert [e["idle_timeout_s"] for e in idle] == [0.2]
            with pytest.raises(errors.StreamClosedError, match="idle_timeout"):
                await s.write("too late")
            await s.close()
        assert [m.text for m in emulator.chat("user", "1")] == ["then silence"]


class TestCoalescing:
    async def test_writes_that_yield_between_share_chunks(
        self, emulator: Emulator, bot: Bot
    ) -> None:
        """A producer writing on every event-loop pass gets far fewer chunks than writes."""
        async with bot.stream("user:1") as s:
            await s.write("start ")
            await emulator.wait_for_stream()
            for i in range(400):
                await s.write(f"{i} ")
                await asyncio.sleep(0)  # one loop pass between writes, as a token stream
        assert emulator.chat("user", "1")[-1].text == s.text
        assert s.stats.writes == 401
        assert s.stats.chunks_sent * 4 <= s.stats.writes, s.stats
