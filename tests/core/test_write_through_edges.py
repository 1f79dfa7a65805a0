"""What write-through promises (docs/performance.md): a write after a quiet spell is handed
to the connection by ``write()`` itself, before it returns; and a write too big for one
chunk still wakes the body for the rest. Also the transport's error texts, and recovery's
final edit carrying the mentions and logging its failure. Found unpinned by mutation
testing."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tests._support import emulator_bot, free_port
from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


async def test_a_write_after_a_quiet_spell_is_sent_before_write_returns(
    emulator: Emulator,
) -> None:
    """10 ms after the last chunk (the threshold is 1 ms), ``write()`` frames the text and
    hands it to the connection itself: the bytes are counted as sent when it returns, with
    no loop pass for a body task in between."""
    async with emulator_bot(emulator) as bot, bot.stream("user:1") as s:
        await s.write("first ")
        await emulator.wait_for_stream()
        await emulator.wait_until(lambda: s.stats.bytes_sent == 6 or None)
        for i in range(3):
            await asyncio.sleep(0.01)
            before = s.stats.bytes_sent
            await s.write(f"w{i} ")
            assert s.stats.bytes_sent == before + 3, s.stats
    assert emulator.chat("user", "1")[-1].text == "first w0 w1 w2 "


async def test_a_write_bigger_than_a_chunk_after_a_quiet_spell_is_sent_whole(
    emulator: Emulator,
) -> None:
    """A 100 KiB write in the quiet goes out as 64 KiB by write-through and the rest by the
    body, which it must wake: all of it reaches the chat while the stream is still open."""
    big = "x" * (100 * 1024)
    async with emulator_bot(emulator) as bot, bot.stream("user:1") as s:
        await s.write("first ")
        record = await emulator.wait_for_stream()
        await asyncio.sleep(0.01)
        await s.write(big)
        with anyio.fail_after(10):
            await emulator.wait_until(lambda: len(record.text) == 6 + len(big) or None)
    assert emulator.chat("user", "1")[-1].text == "first " + big


class TestTransportErrors:
    async def test_a_refused_connection_names_the_endpoint(self) -> None:
        port = free_port()
        async with Bot("t" * 20, base_url=f"http://127.0.0.1:{port}/open-apis/v1",
                       rate_limit=None, retry_attempts=1) as bot:
            with pytest.raises(errors.ConnectError) as caught:
                await bot.send("user:1", "hello")
        assert caught.value.endpoint == "bot/send"
        assert str(caught.value).startswith("bot/send: ClientConnectorError: ")

    async def test_no_answer_is_a_response_timeout_naming_the_endpoint(
        self, emulator: Emulator
    ) -> None:
        hold = emulator.faults.never_answer(endpoint="send")
        try:
            async with emulator_bot(emulator, response_timeout=0.2, retry_attempts=1) as bot:
                with pytest.raises(errors.ResponseTimeoutError) as caught:
                    await bot.send("user:1", "hello")
        finally:
            hold.release()
        assert caught.value.endpoint == "bot/send"
        assert str(caught.value).startswith("bot/send: timed out (")


async def test_recovery_keeps_the_mentions_and_logs_a_failed_final_edit(
    emulator: Emulator,
) -> None:
    """After a drop mid-body, the final edit carries the stream's mentions; and when that
    edit is refused, ``recovery_edit_failed`` says so (``final=True``, the error's class)."""
    from structlog.testing import capture_logs

    emulator.faults.drop_after(10)
    async with emulator_bot(emulator) as bot, bot.stream("group:1", at=["u-7"]) as s:
        await s.write("0123456789abcdef and the rest")
    (msg,) = emulator.chat("group", "1")
    assert msg.text == s.text and msg.at == ["u-7"]

    emulator.faults.drop_after(10)
    emulator.faults.reject(1002, when="before_body", times=None, endpoint="edit")
    with capture_logs() as logs:
        async with emulator_bot(emulator) as bot, bot.stream("group:2") as s:
            await s.write("0123456789abcdef")
            await emulator.wait_for_message("group", "2")
            for i in range(8):  # written while recovery looks (0.3 s), then edits
                await asyncio.sleep(0.1)
                await s.write(f" more {i}")
    failed = [e for e in logs if e["event"] == "recovery_edit_failed"]
    finals = [e for e in failed if e.get("final")]
    assert finals and finals[0]["final"] is True
    assert finals[0]["error"] == "InvalidParameterError"
    ongoing = [e for e in failed if "final" not in e]  # the edits while it was written
    assert ongoing and all(e["error"] == "InvalidParameterError" for e in ongoing), failed


async def test_recovery_logs_what_it_recovers_and_never_makes_writes_wait(
    emulator: Emulator,
) -> None:
    """Once a drop mid-body hands the stream to recovery, ``stream_recovering`` names the
    error, the message found and the bytes the attempt had sent; and since the text now
    goes out by edit, writes are not held to ``max_buffer_bytes`` (1 KiB here):
    ``write_nowait`` of 10 KiB does not raise."""
    from structlog.testing import capture_logs

    emulator.faults.drop_after(10)
    with capture_logs() as logs:
        async with emulator_bot(emulator, max_buffer_bytes=1024) as bot, \
                bot.stream("user:1") as s:
            await s.write("0123456789abcdef")
            msg = await emulator.wait_for_message("user", "1")
            await emulator.wait_until(lambda: msg.edits >= 1 or None)  # recovering
            for _ in range(10):
                s.write_nowait("y" * 1024)
    assert msg.text == s.text and len(s.text) == 16 + 10 * 1024
    (event,) = [e for e in logs if e["event"] == "stream_recovering"]
    assert event["found_msg_id"] == msg.msg_id
    assert event["error"] and event["error"] != "NoneType"
    assert event["sent_bytes"] == 16
