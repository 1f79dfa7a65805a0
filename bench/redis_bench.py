"""Benchmark the shared (Redis) rate limiter against the in-process one, in one run.

Usage (from the repository root; needs redis-server and the ``redis`` extra)::

    .venv/bin/python bench/redis_bench.py              # ~1 minute
    .venv/bin/python bench/redis_bench.py --replies 1000 --rate 100 --acquires 5000

Two rows:

* one acquire: the time per ``Limits.acquire()`` with room in the window (nothing
  waits), in-process vs shared through a redis-server on loopback (one Lua script
  call per acquire), and their ratio;
* N replies through 4 worker processes vs 1, on one token, the emulator enforcing
  ``--rate``/s and every Bot limited to the same: wall time (first ``go`` to the last
  worker's end), ratio 4 workers / 1 worker, and the 1007 answers the emulator gave.
  The limit is the bottleneck by design: 4 workers must take about as long as 1,
  not 4 times less (they share the one window) and not longer (the sharing costs
  little), with no 1007.

Everything runs on 127.0.0.1: a redis-server of its own on a free port, the emulator
in this process, the workers as child processes. Prints a markdown table and writes
the figures to bench/results/redis.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "bench-redis-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port, tmp = free_port(), tempfile.mkdtemp(prefix="yunhu-bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0", tmp


async def acquire_cost(url: str, count: int) -> dict[str, float]:
    """Seconds per acquire with room in the window: local vs shared."""
    from yunhu_stream._ratelimit import Limits
    from yunhu_stream.redis import RedisStore

    rate = float(count * 10)  # room for every acquire: nothing waits
    local = Limits(rate)
    store = RedisStore(url)
    shared = Limits(rate, store.for_token(TOKEN))
    out: dict[str, float] = {}
    for name, limits in (("local", local), ("shared", shared)):
        await limits.acquire("warm-up")
        started = time.perf_counter()
        for _ in range(count):
            await limits.acquire(f"bot/{name}")
        out[name] = (time.perf_counter() - started) / count
    await store.aclose()
    return out


async def worker(base_url: str, count: int, rate: float) -> None:
    from yunhu_stream import Bot

    async with Bot(TOKEN, base_url=base_url, rate_limit=rate) as bot:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            try:
                async with bot.stream(f"user:{os.getpid()}") as s:
                    await s.write(f"reply {i}")
            except Exception:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        print(json.dumps({"errors": errors, "finished": time.time()}), flush=True)


async def replies(url: str, total: int, workers: int, rate: int) -> dict[str, float]:
    from yunhu_stream.emulator import Emulator

    env = dict(os.environ, YUNHU_REDIS_URL=url,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    async with Emulator(token=TOKEN, rate_limit=rate) as emu:
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", emu.base_url, str(total // workers),
                 str(rate)],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(workers)
        ]
        for p in procs:
            assert p.stdout is not None
            assert (await asyncio.to_thread(p.stdout.readline)).strip() == "ready"
        started = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            assert p.stdout is not None
            results.append(json.loads(await asyncio.to_thread(p.stdout.readline)))
            p.wait()
        return {
            "wall": max(r["finished"] for r in results) - started,
            "errors": sum(r["errors"] for r in results),
            "rate_limited": emu.rate_limited,
        }


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 0.01 else f"{seconds:.2f} s"


async def main(args: argparse.Namespace) -> int:
    proc, url, tmp = start_redis()
    try:
        cost = await acquire_cost(url, args.acquires)
        one = await replies(url, args.replies, 1, args.rate)
        four = await replies(url, args.replies, 4, args.rate)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    ideal = (args.replies / args.rate)
    print("| row | in-process / 1 worker | shared / 4 workers | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| one acquire, room in the window ({args.acquires:,}) | {fmt(cost['local'])} "
          f"| {fmt(cost['shared'])} | {cost['shared'] / cost['local']:.1f}× |")
    print(f"| {args.replies:,} replies at {args.rate}/s (ideal {ideal:.0f} s) — wall "
          f"| {fmt(one['wall'])} | {fmt(four['wall'])} | {four['wall'] / one['wall']:.2f}× |")
    print(f"| — 1007 answers / errors at the caller | {one['rate_limited']:.0f} / "
          f"{one['errors']:.0f} | {four['rate_limited']:.0f} / {four['errors']:.0f} | |")
    out = HERE / "results" / "redis.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "acquire": cost, "one_worker": one,
                               "four_workers": four}, indent=2) + "\n")
    return 0 if one["errors"] == four["errors"] == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(worker(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--acquires", type=int, default=5000)
    sys.exit(asyncio.run(main(parser.parse_args())))
