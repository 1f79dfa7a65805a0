"""Run one benchmark scenario with one implementation, in this process, and print JSON.

The harness (``bench/run.py``) starts a fresh process per (scenario, implementation, repeat) so
that memory figures and warm state never leak from one implementation into another.

Usage: ``python bench/client.py IMPL SCENARIO BASE_URL PARAMS_JSON [--uvloop]``

Every scenario starts with one small warm-up stream (``recvId=warm``), so that imports, the first
connection and first-call code paths are not measured.  It prints one JSON object: client-side
timestamps (``time.monotonic``, comparable with the server's) and, per measured stream, the
``bytes`` and ``crc`` the server must have received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from time import monotonic, process_time
from typing import Any

from impls import IMPLS, TOKEN, Impl

Result = dict[str, Any]


def text_for(i: int) -> str:
    """A distinct 20-byte ASCII write (a fresh object each call, as a producer would make)."""
    return f"w{i:07d} token text "


def proc_status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` style field of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` value 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def expect(recv_id: str, texts: list[str]) -> dict[str, Any]:
    body = "".join(texts).encode()
    return {"recv_id": recv_id, "bytes": len(body), "crc": zlib.crc32(body)}


async def warm_up(impl: Impl) -> None:
    """One small unmeasured stream; then a full collection, so that every implementation
    starts the measured part with the cyclic GC's counters at zero. Without it, where the
    next full collection falls depends on how many objects each one's imports happened
    to allocate: in the *many* scenario one 30-60 ms collection landed inside one
    client's start burst and just after another's, by that accident alone."""
    stream = impl.stream("warm")
    for i in range(3):
        await stream.write(text_for(i))
    await stream.close()
    gc.collect()


async def backlog(impl: Impl, p: dict[str, Any], *, pace: bool = False) -> Result:
    """``writes`` writes of 20 bytes, as fast as the producer can go (or yielding after each)."""
    texts = [text_for(i) for i in range(p["writes"])]
    recv_id = "pace" if pace else "backlog"
    stream = impl.stream(recv_id)
    sleep = asyncio.sleep
    cpu0 = process_time()
    t0 = monotonic()
    if pace:
        for text in texts:
            await stream.write(text)
            await sleep(0)
    else:
        for text in texts:
            await stream.write(text)
    t_written = monotonic()
    await stream.close()
    t_closed = monotonic()
    cpu = process_time() - cpu0
    return {
        "t0": t0,
        "t_written": t_written,
        "t_closed": t_closed,
        "cpu": cpu,
        "expected": [expect(recv_id, texts)],
    }


async def pace(impl: Impl, p: dict[str, Any]) -> Result:
    return await backlog(impl, p, pace=True)


async def latency(impl: Impl, p: dict[str, Any]) -> Result:
    """``writes`` writes ``interval`` seconds apart; records the time just before each write()."""
    n, interval = p["writes"], p["interval"]
    texts = [text_for(i) for i in range(n)]
    stream = impl.stream("latency")
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    start = loop.time()
    for i, text in enumerate(texts):
        stamps.append(monotonic())
        await stream.write(text)
        await asyncio.sleep(max(0.0, start + (i + 1) * interval - loop.time()))
    await stream.close()
    ends = [len(text.encode()) for text in texts]
    offsets = []
    total = 0
    for size in ends:
        total += size
        offsets.append(total)
    return {"stamps": stamps, "offsets": offsets, "expected": [expect("latency", texts)]}


async def many(impl: Impl, p: dict[str, Any]) -> Result:
    """``streams`` concurrent streams of ``writes`` writes, ``interval`` seconds apart."""
    n_streams, n_writes, interval = p["streams"], p["writes"], p["interval"]
    starts: dict[str, float] = {}
    errors: list[str] = []

    async def one(i: int) -> None:
        recv_id = f"m{i}"
        try:
            stream = impl.stream(recv_id)
            starts[recv_id] = monotonic()
            for k in range(n_writes):
                await stream.write(text_for(i * n_writes + k))
                if k + 1 < n_writes:
                    await asyncio.sleep(interval)
            await stream.close()
        except Exception as exc:
            errors.append(f"{recv_id}: {exc!r}"[:300])

    rss_before = proc_status_kib("VmRSS")
    reset_peak_rss()
    cpu0 = process_time()
    t0 = monotonic()
    await asyncio.gather(*(one(i) for i in range(n_streams)))
    wall = monotonic() - t0
    cpu = process_time() - cpu0
    peak = proc_status_kib("VmHWM")
    expected = [
        expect(f"m{i}", [text_for(i * n_writes + k) for k in range(n_writes)])
        for i in range(n_streams)
    ]
    return {
        "t0": t0,
        "wall": wall,
        "cpu": cpu,
        "starts": starts,
        "errors": errors,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak,
        "expected": expected,
    }


async def setup(impl: Impl, p: dict[str, Any]) -> Result:
    """``streams`` sequential open-write-close streams of one 20-byte write each."""
    n = p["streams"]
    durations: list[float] = []
    cpu0 = process_time()
    t0 = monotonic()
    for i in range(n):
        ts = monotonic()
        stream = impl.stream(f"s{i}")
        await stream.write(text_for(i))
        await stream.close()
        durations.append(monotonic() - ts)
    total = monotonic() - t0
    cpu = process_time() - cpu0
    return {
        "total": total,
        "cpu": cpu,
        "durations": durations,
        "expected": [expect(f"s{i}", [text_for(i)]) for i in range(n)],
    }


async def stall(impl: Impl, p: dict[str, Any]) -> Result:
    """Push ``mib`` MiB in ``write_size``-byte writes while the server stops reading."""
    size, total = p["write_size"], p["mib"] * 1024 * 1024
    recv_id = f"stall{p['stall_ms']}-x"
    base = "x" * (size - 8)
    count = total // size
    rss_before = proc_status_kib("VmRSS")
    reset_peak_rss()
    stream = impl.stream(recv_id)
    crc = 0
    cpu0 = process_time()
    t0 = monotonic()
    for i in range(count):
        text = base + f"{i:08d}"  # a fresh 1 KiB object per write, as a producer would make
        crc = zlib.crc32(text.encode(), crc)
        await stream.write(text)
    t_written = monotonic()
    await stream.close()
    t_closed = monotonic()
    cpu = process_time() - cpu0
    peak = proc_status_kib("VmHWM")
    # Ours keeps the whole transcript (Streamer.text) by design; the others keep nothing.
    stats = getattr(stream, "stats", None)
    kept = stats.bytes_written if stats is not None else 0
    return {
        "t0": t0,
        "t_written": t_written,
        "t_closed": t_closed,
        "cpu": cpu,
        "rss_before_kib": rss_before,
        "peak_rss_kib": peak,
        "transcript_bytes": kept,
        "expected": [{"recv_id": recv_id, "bytes": count * size, "crc": crc}],
    }


REPLY = ("Hello", ", ", "world!")  # the three tokens each webhook reply streams


@contextlib.asynccontextmanager
async def webhook_server(impl: Impl) -> AsyncIterator[str]:
    """Serve a webhook that answers every message event with a 3-token streamed reply.

    ours: a ``BotApp`` (its own Bot, with the impl's Bot options). naive: what a user
    writes by hand, an aiohttp.web route that parses the event, starts a task and answers
    200, the task streaming through the naive queue-fed aiohttp streamer.
    """
    from aiohttp import web
    from impls import OursImpl

    async def reply(stream: Any) -> None:
        for token in REPLY:
            await stream.write(token)
        await stream.close()

    if isinstance(impl, OursImpl):
        from yunhu_stream.app import BotApp

        app = BotApp(TOKEN, base_url=impl.base_url, bot_options=impl.bot_options)

        @app.on_message()
        async def answer(event: Any, bot: Any) -> None:
            await reply(bot.stream(to=event))

        async with app:
            assert app.url is not None
            yield app.url
        return

    tasks: set[asyncio.Task[None]] = set()

    async def handle(request: web.Request) -> web.Response:
        event = await request.json()
        sender = event["event"]["sender"]["senderId"]
        task = asyncio.create_task(reply(impl.stream(sender)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.json_response({"code": 0})

    web_app = web.Application()
    web_app.router.add_post("/yunhu", handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/yunhu"
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()


async def webhook(impl: Impl, p: dict[str, Any]) -> Result:
    """``events`` message events posted at ``rate``/s (by bench/loadgen.py, in its own
    process) to a webhook whose handler streams a 3-token reply per event."""
    n, rate = p["events"], p["rate"]
    async with webhook_server(impl) as url:
        cpu0 = process_time()
        t0 = monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("loadgen.py")), url, str(rate), str(n),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        loadgen = json.loads(out)
        # The replies may still be streaming: leaving the server waits for them.
    wall = monotonic() - t0
    cpu = process_time() - cpu0
    body = "".join(REPLY)
    return {
        "t0": t0, "wall": wall, "cpu": cpu, "sent": loadgen["sent"],
        "errors": [f"{loadgen['failed']} webhook posts failed"] if loadgen["failed"] else [],
        "expected": [expect(f"wh{i}", [body]) for i in range(n)],
    }


SCENARIOS: dict[str, Callable[[Impl, dict[str, Any]], Awaitable[Result]]] = {
    "backlog": backlog,
    "pace": pace,
    "latency": latency,
    "many": many,
    "setup": setup,
    "stall": stall,
    "webhook": webhook,
}


async def run(
    impl_name: str,
    scenario: str,
    base_url: str,
    params: dict[str, Any],
    profile: str | None = None,
) -> Result:
    impl_cls: Any = IMPLS[impl_name]
    impl: Impl = impl_cls(base_url, **params.get("impl_options", {}).get(impl_name, {}))
    async with impl:
        await warm_up(impl)
        if profile is None:
            result = await SCENARIOS[scenario](impl, params)
        else:
            from pyinstrument import Profiler

            # async_mode="disabled": sample the thread, so every task's work shows (the
            # producer's and the body task's), not only the awaiting coroutine's.
            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            result = await SCENARIOS[scenario](impl, params)
            profiler.stop()
            with open(profile, "w") as f:
                f.write(profiler.output_text(unicode=True, color=False, show_all=False))
    result["rss_end_kib"] = proc_status_kib("VmRSS")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("base_url")
    parser.add_argument("params", help="JSON object of scenario parameters")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--profile", metavar="PATH", help="write a pyinstrument text profile")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    coro = run(args.impl, args.scenario, args.base_url, json.loads(args.params), args.profile)
    if args.uvloop:
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
