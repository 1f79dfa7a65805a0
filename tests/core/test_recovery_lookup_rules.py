"""Recovery's lookup rules that docs/reliability.md ("Which message recovery edits") promises
and the other recovery tests do not pin: the clock-skew window, the preference for streamed
messages (YunHu's AI ``tip``), and at most one edit per ``edit_interval``.

"Another process" below is a second ``Bot`` with the same token: the same bot in YunHu's
eyes, whose deliveries this Bot does not know of.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from tests._support import emulator_bot
from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

ANSWER = "Hello, world: this is the whole answer."


def make_bot(emu: Emulator, **kw: object) -> Bot:
    return emulator_bot(emu, response_timeout=5.0, retry_max_wait=5.0, **kw)


async def test_a_sent_reply_that_starts_the_same_way_is_not_taken_for_the_streamed_partial(
    emulator: Emulator,
) -> None:
    """Of two candidates, the streamed one (labelled ``tip``) is ours, although the other,
    a ``bot/send`` reply of another process, is longer: that one is left as it was."""
    async with make_bot(emulator) as other:
        await other.send("user:1", "Hello, wor")
    emulator.faults.drop_after(len(b"Hello"))  # our partial message shows "Hello"
    async with make_bot(emulator) as bot, bot.stream(to="user:1") as s:
        await s.write(ANSWER)
    assert [m.text for m in emulator.chat("user", "1")] == ["Hello, wor", ANSWER]
    assert s.message_info is not None and s.message_info.delivery == "stream+edit"


@pytest.mark.parametrize(("age_s", "taken"), [(25.0, False), (5.0, True)])
async def test_only_a_message_sent_within_the_clock_skew_window_can_be_taken(
    emulator: Emulator, age_s: float, taken: bool,
) -> None:
    """A streamed message of another process that matches our text is a candidate only if
    it was sent at most 10 s (the allowed clock skew) before the failed attempt began.

    Nothing of our own attempt reaches the chat, so the older message is the only one that
    could be taken: sent 25 s earlier it is left alone and the answer is sent fresh; sent
    5 s earlier it is indistinguishable from ours (docs/reliability.md says so) and edited.
    """
    async with make_bot(emulator) as other, other.stream(to="user:1") as earlier:
        await earlier.write("Hello")
    (old,) = emulator.chat("user", "1")
    old.send_time -= int(age_s * 1000)  # as if sent that long ago (or YunHu's clock lagging)
    emulator.faults.drop_after(0)
    async with make_bot(emulator) as bot, bot.stream(to="user:1") as s:
        await s.write(ANSWER)
    texts = [m.text for m in emulator.chat("user", "1")]
    if taken:
        assert texts == [ANSWER] and old.text == ANSWER
    else:
        assert texts == ["Hello", ANSWER]


async def test_a_recovered_message_is_edited_at_most_once_per_edit_interval(
    emulator: Emulator,
) -> None:
    """While the caller goes on writing after a mid-body drop, the partial message gets at
    most one edit per ``edit_interval``, however often the caller writes.

    40 writes 25 ms apart take about 1 s; with a 0.6 s interval that allows the first
    edit, about two more and the final one. Editing on every write would make ~40."""
    emulator.faults.drop_after(10)
    async with make_bot(emulator, edit_interval=0.6) as bot, bot.stream(to="user:1") as s:
        await s.write("0123456789abcdef")
        msg = await emulator.wait_for_message("user", "1")
        for i in range(40):
            await s.write(f" {i}")
            await asyncio.sleep(0.025)
    assert msg.text == s.text
    assert 2 <= msg.edits <= 6, msg.edits


async def test_a_leftover_that_cannot_be_recalled_is_logged_with_its_id(
    emulator: Emulator,
) -> None:
    """The partial message cannot be edited (every ``bot/edit`` refused with 1002), so the
    whole text is sent again; when recalling the leftover fails too,
    ``recovery_leftover_kept`` names the message left in the chat and the error."""
    from structlog.testing import capture_logs

    emulator.faults.drop_after(10)
    emulator.faults.reject(1002, when="before_body", times=None, endpoint="edit")
    emulator.faults.reject(1002, when="before_body", times=None, endpoint="recall")
    with capture_logs() as logs:
        async with make_bot(emulator) as bot, bot.stream(to="user:1") as s:
            await s.write(ANSWER)
    partial, whole = emulator.chat("user", "1")
    assert whole.text == ANSWER and ANSWER.startswith(partial.text)
    kept = [e for e in logs if e["event"] == "recovery_leftover_kept"]
    assert kept == [{"event": "recovery_leftover_kept", "log_level": "warning",
                     "msg_id": partial.msg_id, "error": "InvalidParameterError",
                     "recv_id": "1", "recv_type": "user"}], kept
    assert s.message_info is not None and s.message_info.msg_id == whole.msg_id


async def test_two_candidates_of_the_same_length_are_ambiguous_and_neither_is_edited(
    emulator: Emulator,
) -> None:
    """Another process's streamed "Hello" and our own partial "Hello": recovery cannot
    tell which is ours, so it edits neither, says so, and sends the answer fresh."""
    async with make_bot(emulator) as other, other.stream(to="user:1") as theirs:
        await theirs.write("Hello")
    emulator.faults.drop_after(len(b"Hello"))  # our partial message shows "Hello" too
    with capture_logs() as logs:
        async with make_bot(emulator) as bot, bot.stream(to="user:1") as s:
            await s.write(ANSWER)
    assert [m.text for m in emulator.chat("user", "1")] == ["Hello", "Hello", ANSWER]
    assert not any(m.edits for m in emulator.chat("user", "1"))
    ambiguous = [e for e in logs if e["event"] == "recovery_ambiguous"]
    assert ambiguous and all(e["candidates"] == 2 for e in ambiguous)
    assert {e["log_level"] for e in ambiguous} == {"warning"}
