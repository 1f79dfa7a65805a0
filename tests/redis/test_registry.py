"""The shared registry of in-flight streams: one process's recovery never edits the
message another process is streaming into the same chat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anyio
import pytest
from structlog.testing import capture_logs

from tests.redis._support import RedisServer, redis_server
from yunhu_stream import Bot, Streamer
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

GROUP = "group:42"
COMMON = "好的，"
A_TEXT = COMMON + "这是第一个回答：" + "".join(f"A{i:03d} " for i in range(40))
B_TEXT = COMMON + "这是另一个回答：" + "".join(f"B{i:03d} " for i in range(40))


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def shown(emu: Emulator) -> list[str]:
    return [m.text for m in emu.chat("group", "42")]


async def write_in_pieces(s: Streamer, text: str) -> None:
    """Write ``text`` 20 characters at a time, 10 ms apart (the recovery follows them)."""
    for i in range(0, len(text), 20):
        await s.write(text[i:i + 20])
        await asyncio.sleep(0.01)


async def run(emu: Emulator, redis_url: str | None) -> tuple[str | None, str | None]:
    """B (one process) pauses at "好的，"; A (another process, its own store) loses its
    request before a byte arrives and recovers while B is still open. Returns how A's
    and B's replies were delivered."""
    options = {"base_url": emu.base_url, "rate_limit": None, "edit_interval": 0.05,
               "redis": redis_url}
    async with Bot(emu.token, **options) as bot_a, \
            Bot(emu.token, **options) as bot_b:  # type: ignore[arg-type]
        b = bot_b.stream(to=GROUP)
        await b.write(COMMON)
        record_b = await emu.wait_for_stream()
        await record_b.wait_for_bytes(len(COMMON.encode()))
        emu.faults.drop_after(0)
        a = bot_a.stream(to=GROUP)
        await a.write(A_TEXT[:40])
        await emu.wait_until(lambda: len(emu.streams) == 2)
        for i in range(40, len(A_TEXT), 20):
            await a.write(A_TEXT[i:i + 20])
            await asyncio.sleep(0.05)
        await a.close()
        await b.write(B_TEXT[len(COMMON):])
        await b.close()
    assert a.message_info is not None and b.message_info is not None
    return a.message_info.delivery, b.message_info.delivery


async def test_a_recovery_leaves_another_processes_live_message_alone(
    redis: RedisServer,
) -> None:
    async with Emulator() as emu:
        deliveries = await run(emu, redis.url)
        assert sorted(shown(emu)) == sorted([A_TEXT, B_TEXT])
    assert deliveries == ("send", "stream")


async def test_without_the_registry_it_would_have_taken_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: without Redis the two processes cannot know of each other, and A's
    recovery takes B's message (what the registry above prevents)."""
    monkeypatch.delenv("YUNHU_REDIS_URL", raising=False)
    async with Emulator() as emu:
        await run(emu, None)
        assert sorted(shown(emu)) != sorted([A_TEXT, B_TEXT])


async def test_a_finished_recovery_leaves_no_claim_behind(redis: RedisServer) -> None:
    """A recovery claims the partial message in Redis once and follows the writes with
    edits (the chat shows the whole text before the stream is closed), and gives the
    claim up when done: no claim outlives it (for REGISTRY_TTL it would keep another
    process's recovery from a message it no longer works on)."""
    async with Emulator() as emu:
        emu.faults.drop_after(20)
        async with Bot(emu.token, base_url=emu.base_url, rate_limit=None, edit_interval=0.05,
                       redis=redis.url) as bot, bot.stream(to=GROUP) as s:
            await write_in_pieces(s, A_TEXT)
            await emu.wait_until(lambda: shown(emu) == [A_TEXT] or None)
        assert shown(emu) == [A_TEXT]
    assert s.message_info is not None and s.message_info.delivery == "stream+edit"
    assert redis.client.keys("*:claim:*") == []


async def test_the_registry_lists_a_running_stream_with_its_progress_until_it_ends(
    redis: RedisServer,
) -> None:
    """What another process's recovery reads: a running stream of the chat with when it
    started and the bytes sent by its last finished message, that message among the
    chat's delivered ones; and once the stream is over, no stream."""
    async with Emulator() as emu:
        options = {"base_url": emu.base_url, "rate_limit": None, "redis": redis.url}
        async with Bot(emu.token, **options) as bot_a, \
                Bot(emu.token, **options) as bot_b:  # type: ignore[arg-type]
            other = bot_b.shared
            assert other is not None
            before_ms = int(time.time() * 1000)
            s = bot_a.stream(to=GROUP, gap=0.05)
            await s.write("the first message")
            await emu.wait_until(lambda: len(s.messages) == 1 or None)  # ended by the gap
            [(started_ms, sent)] = (await other.remote_streams(GROUP)).values()
            assert before_ms <= started_ms <= int(time.time() * 1000)
            assert sent == len(b"the first message")
            assert s.messages[0].msg_id in await other.delivered(GROUP)
            await s.write("the second")
            await s.close()
            assert await other.remote_streams(GROUP) == {}
            assert {m.msg_id for m in s.messages} <= await other.delivered(GROUP)


async def test_each_endpoint_has_its_own_shared_window(redis: RedisServer) -> None:
    """YunHu limits each endpoint on its own (10/s): a send and a stream count in two
    shared windows, named by the endpoint (and a hash of the token, never the token)."""
    async with Emulator() as emu, Bot(emu.token, base_url=emu.base_url,
                                      redis=redis.url) as bot:
        await bot.send(GROUP, "a message")
        async with bot.stream(to=GROUP) as s:
            await s.write("a stream")
    windows = {k.decode().rsplit(":rl:", 1)[1].rsplit(":", 1)[0]
               for k in redis.client.keys("*:rl:*")}
    assert windows == {"bot/send", "bot/send-stream"}
    assert not [k for k in redis.client.keys("*") if emu.token.encode() in k]


async def test_a_recovery_waiting_for_another_processes_stream_goes_on_when_it_ends(
    redis: RedisServer,
) -> None:
    """A's request drops while B (another process) streams into the same chat, so A's
    recovery cannot tell its partial message from B's and waits. When B's stream ends,
    A looks again, finds its own message and follows the writes with edits: the chat
    shows A's whole text before A is closed, and B's message is left alone."""
    half = len(A_TEXT) // 2
    async with Emulator() as emu:
        options = {"base_url": emu.base_url, "rate_limit": None, "edit_interval": 0.05,
                   "redis": redis.url}
        async with Bot(emu.token, **options) as bot_a, \
                Bot(emu.token, **options) as bot_b:  # type: ignore[arg-type]
            b = bot_b.stream(to=GROUP)
            await b.write(COMMON)
            record_b = await emu.wait_for_stream()
            await record_b.wait_for_bytes(len(COMMON.encode()))
            emu.faults.drop_after(30)
            with capture_logs() as logs:
                a = bot_a.stream(to=GROUP)
                await a.write(A_TEXT[:half])
                with anyio.fail_after(5):
                    while not [e for e in logs if e["event"] == "stream_recovering"]:
                        await asyncio.sleep(0.01)
            [recovering] = [e for e in logs if e["event"] == "stream_recovering"]
            assert recovering["found_msg_id"] is None  # B's stream may be writing it
            await b.write(B_TEXT[len(COMMON):])
            await b.close()
            await write_in_pieces(a, A_TEXT[half:])
            with anyio.fail_after(3):
                await emu.wait_until(lambda: sorted(shown(emu)) == sorted([A_TEXT, B_TEXT])
                                     or None)
            await a.close()
        assert sorted(shown(emu)) == sorted([A_TEXT, B_TEXT])
    assert a.message_info is not None and a.message_info.delivery == "stream+edit"
    assert b.message_info is not None and b.message_info.delivery == "stream"
