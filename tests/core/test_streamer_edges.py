"""Promises of the Streamer that mutation testing found unpinned: pipe()'s argument checks
and its ``on_error="abort"``, a quoted fallback that keeps its buttons and mentions, a first
chunk held until its deadline, and chunks that grow to half a small buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest

from tests._support import emulator_bot
from yunhu_stream import FirstChunk, StreamState, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestPipe:
    async def test_a_source_that_is_not_async_iterable_is_named(self, emulator: Emulator) -> None:
        async with emulator_bot(emulator) as bot, bot.stream("user:1") as s:
            with pytest.raises(TypeError, match="async iterable of str, not list"):
                await s.pipe(["a", "b"])  # type: ignore[arg-type]

    async def test_a_bad_on_error_says_what_is_accepted(self, emulator: Emulator) -> None:
        async def source() -> AsyncIterator[str]:
            yield "x"

        async with emulator_bot(emulator) as bot, bot.stream("user:1") as s:
            with pytest.raises(errors.ConfigurationError,
                               match="on_error must be 'close' or 'abort', not 'drop'"):
                await s.pipe(source(), on_error="drop")  # type: ignore[arg-type]

    async def test_on_error_abort_cuts_the_message_off_and_reraises(
        self, emulator: Emulator
    ) -> None:
        """The source fails mid-answer: with ``on_error="abort"`` the stream is aborted (the
        chat keeps at most what was shown, as an unfinished message) and the source's error
        reaches the caller."""
        async def source() -> AsyncIterator[str]:
            yield "first part "
            await asyncio.sleep(0.05)
            raise RuntimeError("model went away")

        async with emulator_bot(emulator) as bot:
            s = bot.stream("user:1")
            with pytest.raises(RuntimeError, match="model went away"):
                await s.pipe(source(), on_error="abort")
            assert s.state is StreamState.ABORTED
            record = await emulator.wait_for_stream()
            await emulator.wait_until(lambda: record.aborted or None)
            assert not record.completed


async def test_a_quoted_fallback_keeps_its_buttons_and_mentions(emulator: Emulator) -> None:
    """``quote="fallback"`` sends the whole text with ``bot/send``: quoted, and with the
    stream's buttons and mentions on that one message (no edit needed afterwards)."""
    buttons = [[{"text": "Again", "actionType": 3, "value": "again"}]]
    async with emulator_bot(emulator) as bot:
        parent = await bot.send("group:1", "question?")
        async with bot.stream(to="group:1", reply_to=parent.msg_id, quote="fallback",
                              buttons=buttons, at=["u-42"]) as s:
            await s.write("the ")
            await asyncio.sleep(0)  # the delivery task starts collecting
            await s.write("answer")
    reply = emulator.chat("group", "1")[-1]
    assert (reply.text, reply.parent_id) == ("the answer", parent.msg_id)
    assert reply.buttons == buttons and reply.at == ["u-42"]
    assert reply.edits == 0


async def test_a_first_chunk_is_held_until_its_deadline(emulator: Emulator) -> None:
    """Short of ``min_chars``, the first chunk waits for ``max_wait`` (1 s): nothing is in the
    chat a third of the way there, and the text arrives after it."""
    held = FirstChunk(min_chars=1000, max_wait=1.0)
    async with emulator_bot(emulator) as bot, bot.stream("user:1", first_chunk=held) as s:
        await s.write("short")
        await asyncio.sleep(0.3)
        assert emulator.chat("user", "1") == [] and emulator.streams == []
        with anyio.fail_after(10):
            msg = await emulator.wait_for_message("user", "1")
        assert msg.text == "short"


async def test_coalesced_chunks_grow_to_half_a_small_buffer(emulator: Emulator) -> None:
    """With a 4 KiB buffer and 100-byte writes on every loop pass, the body gathers about
    half the buffer (~20 writes) per chunk: 400 writes make some 20 chunks, not hundreds,
    and no write had to wait."""
    async with emulator_bot(emulator, max_buffer_bytes=4096) as bot, bot.stream("user:1") as s:
        await s.write("start ")
        await emulator.wait_for_stream()
        for i in range(400):
            s.write_nowait(f"{i:04d}".ljust(100, "."))  # raises WouldBlockError if full
            await asyncio.sleep(0)
    assert emulator.chat("user", "1")[-1].text == s.text
    assert s.stats.chunks_sent <= 100, s.stats


async def test_a_quoted_fallback_with_buttons_only_needs_no_edit(emulator: Emulator) -> None:
    buttons = [[{"text": "Again", "actionType": 3, "value": "again"}]]
    async with emulator_bot(emulator) as bot:
        parent = await bot.send("group:1", "question?")
        async with bot.stream(to="group:1", reply_to=parent.msg_id, quote="fallback",
                              buttons=buttons) as s:
            await s.write("the answer")
    reply = emulator.chat("group", "1")[-1]
    assert reply.buttons == buttons and reply.edits == 0


async def test_a_failed_stream_logs_what_failed_and_raises_with_its_traceback(
    emulator: Emulator,
) -> None:
    """``stream_failed`` carries the error's class and text, the bytes written and the
    messages delivered; the error the caller gets still shows where it was raised (the
    delivery's frames), not only the caller's."""
    from structlog.testing import capture_logs

    emulator.faults.reject(1002, when="before_body")
    with capture_logs() as logs:
        async with emulator_bot(emulator) as bot:
            s = bot.stream("user:1")
            await s.write("doomed text")
            with pytest.raises(errors.APIError) as caught:
                await s.close()
    (failed,) = [e for e in logs if e["event"] == "stream_failed"]
    assert failed["error"] == type(caught.value).__name__
    assert failed["detail"] == str(caught.value) and failed["detail"]
    assert failed["bytes"] == len(b"doomed text") and failed["messages"] == 0
    frames = []
    tb = caught.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    # (substrings: under `make mutate` the frames' names are mutmut's wrappers of them)
    assert any("_post_stream" in f or "_deliver_message" in f for f in frames), frames
