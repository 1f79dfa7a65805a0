"""Never lose a reply (issue 3): every fault the emulator injects, with and without recovery.

For each fault the chat must end up with exactly one message holding the whole
transcript, or the caller gets a typed error carrying it; and nothing may be
left running or connected.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from structlog.testing import capture_logs

from tests._paths import ROOT
from tests._support import child_env, no_client_tasks
from yunhu_stream import Bot, BotStatistics, MessageInfo, Streamer, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PIECES = [f"第{i}段 chunk {i} 😀\n" for i in range(12)]
TRANSCRIPT = "".join(PIECES)


@dataclass(frozen=True)
class Case:
    """One row of the fault matrix."""

    name: str
    inject: Callable[[Emulator], object]
    delivery: str  # what the default (recovering) path must report
    strict: type[errors.YunhuError] | None  # what recover=False raises (None: succeeds)


CASES = [
    Case("reject early 1007", lambda e: e.faults.rate_limit(2), "stream", errors.RateLimitedError),
    Case("503 before body", lambda e: e.faults.http_status(503, when="before_body"), "stream",
         errors.HTTPStatusError),
    Case("500 before body (the lowest retried status)",
         lambda e: e.faults.http_status(500, when="before_body"), "stream",
         errors.HTTPStatusError),
    Case("non-JSON before body", lambda e: e.faults.non_json(when="before_body"), "stream",
         errors.InvalidResponseError),
    Case("503 after body", lambda e: e.faults.http_status(503, when="after_body"),
         "stream+edit", errors.StreamBrokenError),
    Case("non-JSON after body", lambda e: e.faults.non_json(when="after_body"), "stream+edit",
         errors.StreamBrokenError),
    Case("never answers", lambda e: e.faults.never_answer(), "stream+edit",
         errors.StreamBrokenError),
    Case("drop after 0 bytes", lambda e: e.faults.drop_after(0), "send",
         errors.StreamBrokenError),
    Case("drop after 4 bytes (inside a character)", lambda e: e.faults.drop_after(4), "stream+edit",
         errors.StreamBrokenError),
    Case("drop after 40 bytes", lambda e: e.faults.drop_after(40), "stream+edit",
         errors.StreamBrokenError),
    Case("slow reader", lambda e: e.faults.slow_read(0.005, times=None), "stream", None),
    Case("stalled reader", lambda e: e.faults.stall(after_bytes=10, seconds=0.2), "stream", None),
]


def settle_check(bot: Bot, s: Streamer) -> None:
    """The stream's task has finished and the Bot has no request in flight."""
    assert no_client_tasks(), s
    assert bot.stats == BotStatistics(calls_in_flight=0, streams_in_flight=0)


async def write_all(s: object, delay: bool = True) -> None:
    for piece in PIECES:
        await s.write(piece)  # type: ignore[attr-defined]
        if delay:
            await asyncio.sleep(0.005)


def make_bot(emu: Emulator, **kw: object) -> Bot:
    options: dict[str, object] = {
        "base_url": emu.base_url, "response_timeout": 0.3, "edit_interval": 0.02,
        "retry_max_wait": 5.0, "rate_limit": None,
    }
    options.update(kw)
    return Bot(emu.token, **options)  # type: ignore[arg-type]


class TestFaultMatrix:
    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    async def test_recovering_path_delivers_once(self, emulator: Emulator, case: Case) -> None:
        """By default the chat ends with exactly one message holding the whole transcript."""
        case.inject(emulator)
        with capture_logs() as logs:
            async with make_bot(emulator) as bot:
                async with bot.stream(to="group:42") as s:
                    await write_all(s)
                settle_check(bot, s)
        assert s.message_info is not None
        assert s.message_info.delivery == case.delivery
        chat = emulator.chat("group", "42")
        assert [m.text for m in chat] == [TRANSCRIPT]
        assert chat[0].msg_id == s.message_info.msg_id
        closed = [e for e in logs if e["event"] == "stream_closed"]
        assert closed[0]["delivery"] == case.delivery
        if case.delivery != "stream":
            assert any(e["event"] == "stream_recovering" for e in logs)

    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    async def test_strict_path_raises_with_transcript(
        self, emulator: Emulator, case: Case
    ) -> None:
        """With recover=False a failure raises its typed error carrying the whole text."""
        case.inject(emulator)
        async with make_bot(emulator, recover=False) as bot:
            s = bot.stream(to="group:42")
            if case.strict is None:
                await write_all(s)
                assert (await s.close()) is not None
                assert [m.text for m in emulator.chat("group", "42")] == [TRANSCRIPT]
            else:
                with pytest.raises(case.strict) as info:
                    await write_all(s)
                    await s.close()
                assert info.value.text is not None
                assert TRANSCRIPT.startswith(info.value.text)
                assert info.value.text == s.text
            settle_check(bot, s)

    async def test_server_restart_between_requests(self, emulator: Emulator) -> None:
        """A restart between two streams (stale pooled connection) costs the second nothing."""
        async with make_bot(emulator) as bot:
            async with bot.stream(to="user:1") as s1:
                await s1.write("before")
            await emulator.restart()
            async with bot.stream(to="user:1") as s2:
                await write_all(s2)
        assert [m.text for m in emulator.chat("user", "1")] == ["before", TRANSCRIPT]
        assert s2.message_info is not None and s2.message_info.delivery == "stream"

    async def test_server_down_then_back(self, emulator: Emulator) -> None:
        """Connection refused is retried with backoff until the server is back."""
        port = emulator.port
        await emulator.close()
        async with Bot(emulator.token, base_url=f"http://127.0.0.1:{port}/open-apis/v1",
                       rate_limit=None, retry_attempts=50) as bot:
            with capture_logs() as logs:
                s = bot.stream(to="user:1")
                await s.write("queued while down")
                while not any(e["event"] == "stream_retry" for e in logs):
                    await asyncio.sleep(0.01)
                restarted = Emulator(token=emulator.token, port=port)
                await restarted.start()
                try:
                    info = await s.close()
                    assert info is not None and info.delivery == "stream"
                    assert [m.text for m in restarted.chat("user", "1")] == ["queued while down"]
                finally:
                    await restarted.close()

    async def test_retries_are_bounded(self, emulator: Emulator) -> None:
        """When attempts run out the typed error is raised, carrying the transcript; each
        retry is logged with the error that caused it."""
        emulator.faults.rate_limit(first=100)
        async with make_bot(emulator, retry_attempts=3) as bot:
            s = bot.stream(to="user:1")
            await s.write("hello")
            with capture_logs() as logs, pytest.raises(errors.RateLimitedError) as info:
                await s.close()
        assert info.value.text == "hello"
        assert len(emulator.streams) == 3
        retries = [e for e in logs if e["event"] == "stream_retry"]
        assert [(e["attempt"], e["error"]) for e in retries] == [
            (1, "RateLimitedError"), (2, "RateLimitedError")]

    @pytest.mark.parametrize("code", [1002, 1003, 1004, 1005, -1])
    async def test_terminal_codes_are_not_retried(self, emulator: Emulator, code: int) -> None:
        """Terminal API errors stop at once and carry the transcript."""
        emulator.faults.reject(code, when="after_body")
        async with make_bot(emulator) as bot:
            s = bot.stream(to="user:1")
            await write_all(s, delay=False)
            with pytest.raises(errors.APIError) as info:
                await s.close()
        assert info.value.code == code and info.value.text == TRANSCRIPT
        assert len(emulator.streams) == 1


class TestRecoveryByEdit:
    async def test_message_is_kept_up_to_date_while_caller_writes(
        self, emulator: Emulator
    ) -> None:
        """After a mid-body drop, the partial message is edited as writes continue."""
        emulator.faults.drop_after(10)
        bot = make_bot(emulator, edit_interval=0.01)
        async with bot, bot.stream(to="user:1") as s:
            await s.write("0123456789abcdef")
            msg = await emulator.wait_for_message("user", "1")
            for i in range(5):
                await s.write(f" more{i}")
                await emulator.wait_until(
                    lambda i=i: msg.text.endswith(f" more{i}") or None)  # type: ignore[misc]
        assert msg.edits >= 5 and msg.text == s.text
        assert s.message_info == MessageInfo(msg.msg_id, "1", "user", "stream+edit")

    async def test_lookup_ignores_other_bot_messages(self, emulator: Emulator) -> None:
        """Only a message whose text is a prefix of ours is taken as the partial one."""
        async with make_bot(emulator) as bot:
            await bot.send("user:1", "an older, unrelated answer")
            emulator.faults.drop_after(12)
            async with bot.stream(to="user:1") as s:
                await write_all(s)
        texts = [m.text for m in emulator.chat("user", "1")]
        assert texts == ["an older, unrelated answer", TRANSCRIPT]

    async def test_buttons_survive_recovery(self, emulator: Emulator) -> None:
        """Buttons requested for the stream are attached by the recovery's final edit."""
        buttons = [[{"text": "Again", "actionType": 3, "value": "again"}]]
        emulator.faults.never_answer()
        async with make_bot(emulator) as bot, bot.stream(to="user:1", buttons=buttons) as s:
            await write_all(s, delay=False)
        (msg,) = emulator.chat("user", "1")
        assert msg.buttons == buttons and msg.text == TRANSCRIPT


class TestRateLimit:
    async def test_burst_of_streams_never_hits_1007(self) -> None:
        """Streams started at once are spread under the limit: the server sends no 1007."""
        async with Emulator(rate_limit=20) as emu, Bot(
            emu.token, base_url=emu.base_url, rate_limit=20
        ) as bot:

            async def one(i: int) -> None:
                async with bot.stream(to=f"user:{i}") as s:
                    await s.write(f"reply {i}")

            await asyncio.gather(*(one(i) for i in range(45)))
            assert emu.rate_limited == 0
            assert len(emu.chats()) == 45

    async def test_limiter_is_shared_by_streams_and_calls(self) -> None:
        """send and send-stream each have their own window, shared by every caller of the Bot."""
        async with Emulator(rate_limit=15) as emu, Bot(
            emu.token, base_url=emu.base_url, rate_limit=15
        ) as bot:
            await asyncio.gather(*(bot.send(f"user:{i}", "x") for i in range(40)))
            assert emu.rate_limited == 0

    async def test_without_limiter_the_server_rate_limits_and_we_retry(self) -> None:
        """A 1007 that still arrives is retried, so every reply lands once."""
        async with Emulator(rate_limit=10) as emu, Bot(
            emu.token, base_url=emu.base_url, rate_limit=None, retry_max_wait=60,
            retry_attempts=40,
        ) as bot:

            async def one(i: int) -> None:
                async with bot.stream(to=f"user:{i}") as s:
                    await s.write(f"reply {i}")

            await asyncio.gather(*(one(i) for i in range(25)))
            assert emu.rate_limited > 0
            assert sorted(len(emu.chat("user", str(i))) for i in range(25)) == [1] * 25


class TestIdleTimeout:
    async def test_idle_stream_closes_cleanly(self, emulator: Emulator) -> None:
        """No write for idle_timeout ends the message; a later write says why it is closed."""
        async with make_bot(emulator, idle_timeout=0.05) as bot:
            s = bot.stream(to="user:1")
            await s.write("then silence")
            record = await emulator.wait_for_stream()
            await record.wait_done()
            assert record.completed
            with pytest.raises(errors.StreamClosedError, match="idle_timeout"):
                await s.write("too late")
            info = await s.close()
        assert info is not None and emulator.chat("user", "1")[0].text == "then silence"


class TestSecrets:
    async def test_token_never_leaks_across_the_fault_matrix(self) -> None:
        """A random token appears in no log event, exception, repr or warning for any fault."""
        token = "tok-" + secrets.token_hex(16)
        seen: list[str] = []
        with warnings.catch_warnings(record=True) as caught, capture_logs() as logs:
            warnings.simplefilter("always")
            for case in CASES:
                for recover in (True, False):
                    async with Emulator(token=token) as emu:
                        case.inject(emu)
                        async with make_bot(emu, recover=recover) as bot:
                            s = bot.stream(to="group:1")
                            seen += [repr(bot), repr(s), repr(emu)]
                            try:
                                await write_all(s, delay=False)
                                await s.close()
                            except errors.YunhuError as exc:
                                e: BaseException | None = exc
                                while e is not None:
                                    seen += [str(e), repr(e)]
                                    e = e.__cause__ or e.__context__
        seen += [repr(e) for e in logs] + [str(w.message) for w in caught]
        assert len(logs) > len(CASES)
        leaks = [item for item in seen if token in item]
        assert leaks == []


@pytest.mark.soak
def soak_settings() -> tuple[int, random.Random]:
    count = int(os.environ.get("YUNHU_SOAK_COUNT", "120"))
    return count, random.Random(int(os.environ.get("YUNHU_SOAK_SEED", "20261122")))


def soak_text(rng: random.Random) -> list[str]:
    """Pieces of one random reply; every reply starts with the same "好的，" on purpose."""
    pieces = ["".join(rng.choice("ab云湖😀 \n") for _ in range(rng.randint(1, 30)))
              for _ in range(rng.randint(1, 25))]
    return ["好的，", *pieces]


SOAK_CHILD = """
import asyncio, json, random, sys
from yunhu_stream import Bot
from tests.core.test_fault_recovery import soak_text

async def main(token, base_url, count, seed):
    rng = random.Random(seed)
    texts = {}
    async with Bot(token, base_url=base_url, rate_limit=None, edit_interval=0.05) as bot:
        async def one(i):
            pieces = soak_text(rng)
            async with bot.stream(to=f"group:{i % max(1, count // 4)}") as s:
                for piece in pieces:
                    await s.write(piece)
                    if rng.random() < 0.3:
                        await asyncio.sleep(rng.random() * 0.01)
            texts[i] = "".join(pieces)
        await asyncio.gather(*(one(i) for i in range(count)))
    print(json.dumps(texts))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


class TestSoak:
    async def _run(self, emu: Emulator, count: int, rng: random.Random) -> dict[str, list[str]]:
        """``count`` concurrent streams, about four per chat, with random faults; the texts
        each chat must show."""
        faults = [c for c in CASES if c.name != "slow reader"] + [None] * 6
        chats = max(1, count // 4)
        expected: dict[str, list[str]] = {}
        async with make_bot(emu, rate_limit=None) as bot:

            async def one(i: int) -> None:
                pieces = soak_text(rng)
                chat = str(i % chats)
                async with bot.stream(to=f"group:{chat}") as s:
                    for piece in pieces:
                        await s.write(piece)
                        if rng.random() < 0.3:
                            await asyncio.sleep(rng.random() * 0.01)
                expected.setdefault(chat, []).append("".join(pieces))

            for start in range(0, count, 40):
                batch = range(start, min(count, start + 40))
                for _i in batch:
                    case = rng.choice(faults)
                    if case is not None:
                        case.inject(emu)
                await asyncio.gather(*(one(i) for i in batch))
                emu.faults.clear()
            assert bot.stats == BotStatistics(calls_in_flight=0, streams_in_flight=0)
        return expected

    async def test_random_faults_and_writes(self) -> None:
        """Many streams, several per chat all starting alike, with random faults: every
        transcript is in its chat exactly once, complete."""
        count, rng = soak_settings()
        async with Emulator() as emu:
            expected = await self._run(emu, count, rng)
            for chat, texts in expected.items():
                assert sorted(m.text for m in emu.chat("group", chat)) == sorted(texts), chat
        assert no_client_tasks()

    async def test_two_processes_share_a_token(self) -> None:
        """A second process streams into the same chats with the same token, and both meet
        random faults: every reply of both is shown whole exactly once, and nothing else
        is in the chats but leftover partial messages of recoveries that could not tell
        two identical partial messages of the two processes apart (docs/reliability.md:
        without Redis the processes cannot know each other's streams)."""
        count, rng = soak_settings()
        count = max(8, count // 2)
        async with Emulator() as emu:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SOAK_CHILD, emu.token, emu.base_url, str(count),
                str(rng.randint(0, 2**31)), stdout=subprocess.PIPE, cwd=ROOT, env=child_env(),
            )
            expected = await self._run(emu, count, rng)
            out, _ = await child.communicate()
            assert child.returncode == 0
            for i, text in json.loads(out).items():
                expected.setdefault(str(int(i) % max(1, count // 4)), []).append(text)
            for chat, texts in expected.items():
                shown = [m.text for m in emu.chat("group", chat)]
                for text in texts:
                    assert shown.count(text) == texts.count(text), (chat, text)
                extra = [t for t in shown if t not in texts]
                assert all(any(x.startswith(t) for x in texts) for t in extra), (chat, extra)
