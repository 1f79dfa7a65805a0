"""Several processes share one bot's rate limit, dedup and chat order through a real
redis-server (started here on a free loopback port; skipped when it is missing)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests._support import child_env, free_port
from tests.redis._support import RedisServer, Worker, redis_server
from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator, StreamRecord
from yunhu_stream.errors import ConfigurationError
from yunhu_stream.testing import message_event

pytestmark = pytest.mark.anyio

TOKEN = "tok-shared-0123456789abcdef"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def text_of(record: StreamRecord) -> str:
    return b"".join(c.data for c in record.chunks).decode()


def test_without_the_extra_nothing_imports_redis() -> None:
    """With redis blocked from import, the library, the app and a Bot work as before; a
    Redis URL asks for the extra by name."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import yunhu_stream, yunhu_stream.app, yunhu_stream.emulator, yunhu_stream.testing\n"
        "from yunhu_stream import Bot\n"
        "from yunhu_stream.errors import ConfigurationError\n"
        "b = Bot('t0ken'); assert b.shared is None\n"
        "loaded = [m for m, v in sys.modules.items()\n"
        "          if v is not None and m.split('.')[0] == 'redis']\n"
        "assert not loaded, loaded\n"
        "try:\n"
        "    Bot('t0ken', redis='redis://127.0.0.1:1/0')\n"
        "except ConfigurationError as e:\n"
        "    assert \"yunhu-stream[redis]\" in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
        "print('ok')\n"
    )
    env = child_env()
    env.pop("YUNHU_REDIS_URL", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bad_options_say_what_is_accepted() -> None:
    pytest.importorskip("redis")
    from yunhu_stream.redis import RedisStore

    with pytest.raises(ConfigurationError, match="redis://"):
        RedisStore("http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="redis"):
        Bot(TOKEN, redis=42)  # type: ignore[arg-type]
    store = RedisStore("redis://user:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in repr(store)
    with pytest.raises(ConfigurationError, match="chat_order_wait"):
        RedisStore("redis://127.0.0.1:1/0", chat_order_wait=-1)


async def test_four_workers_share_one_window(redis: RedisServer) -> None:
    """4 processes × 100 replies on one token, the emulator enforcing 10/s: no caller
    sees a 1007, the whole run takes about the 40 s the limit allows, and the workers
    finish together (FIFO between processes)."""
    async with Emulator(token=TOKEN, rate_limit=10) as emu:
        env = {"YUNHU_TOKEN": TOKEN, "YUNHU_REDIS_URL": redis.url}
        workers = [Worker("stream", emu.base_url, "100", f"70{i}", **env) for i in range(4)]
        try:
            for w in workers:
                assert await w.line() == "ready"
            start = time.time()
            for w in workers:
                w.send("go")
            results = [await w.json(timeout=90) for w in workers]
        finally:
            for w in workers:
                w.stop()
        took = [float(r["finished"]) - start for r in results]  # type: ignore[arg-type]
        total = max(took)
        print(f"\nfour workers: total {total:.1f} s, finished at "
              f"{', '.join(f'{t:.1f}' for t in took)} s, emulator 1007s: {emu.rate_limited}")
        assert [r["errors"] for r in results] == [[], [], [], []]
        assert len([s for s in emu.streams if s.code == 1]) == 400
        assert emu.rate_limited == 0  # the shared window never let an 11th request in
        assert 39.0 <= total <= 40 * 1.15
        assert max(took) <= 1.2 * min(took)
        # Only hashes of the token name keys; the token is nowhere in Redis.
        keys = redis.client.keys("*")
        assert keys and not [k for k in keys if TOKEN.encode() in k]


async def post(url: str, body: dict[str, object]) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, object] = await resp.json()
        return answer


async def app_workers(emu: Emulator, redis: RedisServer, n: int,
                      **env: str) -> tuple[list[Worker], list[str]]:
    workers = [Worker("app", emu.base_url, YUNHU_TOKEN=TOKEN, YUNHU_REDIS_URL=redis.url, **env)
               for _ in range(n)]
    urls = [str((await w.json())["url"]) for w in workers]
    return workers, urls


async def wait_for_streams(emu: Emulator, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len([s for s in emu.streams if s.completed]) < count:
        assert time.monotonic() < deadline, f"{len(emu.streams)} of {count} replies"
        await asyncio.sleep(0.05)


async def test_a_redelivery_to_another_worker_is_handled_once(redis: RedisServer) -> None:
    async with Emulator(token=TOKEN) as emu:
        workers, urls = await app_workers(emu, redis, 2)
        try:
            event = message_event("sleep 0 once", chat="user:8001", event_id="evt-dup-1")
            answers = [await post(urls[0], event), await post(urls[1], event)]
            other = message_event("sleep 0 twice", chat="user:8001", event_id="evt-dup-2")
            answers.append(await post(urls[1], other))
            await wait_for_streams(emu, 2)
            await asyncio.sleep(0.5)  # a second reply to the duplicate would be here by now
        finally:
            for w in workers:
                w.stop()
        assert [a["status"] for a in answers] == ["accepted", "duplicate", "accepted"]
        assert sorted(text_of(s) for s in emu.streams) == ["reply to once", "reply to twice"]


async def chat_run(emu: Emulator, urls: list[str]) -> list[str]:
    """e1 (slow to start) to worker 0, then e2 and e3 (fast) to workers 1 and 0."""
    now = int(time.time() * 1000)
    plan = [("sleep 0.8 e1", 0), ("sleep 0 e2", 1), ("sleep 0 e3", 0)]
    for i, (text, worker) in enumerate(plan):
        await post(urls[worker], message_event(text, chat="user:8002", time_ms=now + i))
        await asyncio.sleep(0.05)
    await wait_for_streams(emu, 3)
    return [text_of(s) for s in emu.streams]


async def test_chat_order_starts_replies_in_event_order(redis: RedisServer) -> None:
    async with Emulator(token=TOKEN) as emu:
        workers, urls = await app_workers(emu, redis, 2, YUNHU_TEST_CHAT_ORDER="1")
        try:
            ordered = await chat_run(emu, urls)
        finally:
            for w in workers:
                w.stop()
    assert ordered == ["reply to e1", "reply to e2", "reply to e3"]
    async with Emulator(token=TOKEN) as emu:  # the control: off by default
        workers, urls = await app_workers(emu, redis, 2)
        try:
            unordered = await chat_run(emu, urls)
        finally:
            for w in workers:
                w.stop()
    assert unordered[-1] == "reply to e1"


async def test_killing_redis_mid_run_loses_no_reply() -> None:
    """Two Bots (two stores, as two processes) share Redis; it dies mid-run: both fall
    back to their local limiter, log it once, and every reply arrives."""
    with redis_server() as server:
        async with Emulator(token=TOKEN, rate_limit=10) as emu:
            bots = [Bot(TOKEN, base_url=emu.base_url, redis=server.url) for _ in range(2)]

            async def reply(bot: Bot, i: int) -> None:
                async with bot.stream(f"user:90{i % 2}") as s:
                    await s.write(f"reply {i}")

            with capture_logs() as logs:
                run = asyncio.gather(*(reply(bots[i % 2], i) for i in range(30)))
                while len(emu.streams) < 10:
                    await asyncio.sleep(0.01)
                server.kill()
                await run
                for bot in bots:
                    await bot.aclose()
        done = sorted(text_of(s) for s in emu.streams if s.code == 1)
        assert done == sorted(f"reply {i}" for i in range(30))
        down = [e for e in logs if e["event"] == "redis_unavailable"]
        assert len(down) == 2  # once per store, not once per request
        assert all(TOKEN not in json.dumps(e, default=str) for e in logs)


async def test_redis_unreachable_from_the_start_uses_the_local_limiter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("redis")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with Emulator(token=TOKEN, rate_limit=10) as emu:
        with caplog.at_level(logging.INFO, logger="yunhu_stream"):
            async with Bot(TOKEN, base_url=emu.base_url, redis=closed) as bot:
                for i in range(12):
                    await bot.send("user:1", f"m{i}")
        assert len(emu.chat("user", "1")) == 12
        assert emu.rate_limited == 0
        assert [r.getMessage().split()[0] for r in caplog.records].count("redis_unavailable") == 1
