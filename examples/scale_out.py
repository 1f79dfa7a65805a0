"""Several worker processes, one bot: rate limit, dedup and chat order shared through Redis.

Under gunicorn (what docs/deploy.md describes; ``web_app`` is the aiohttp application)::

    YUNHU_TOKEN=... YUNHU_REDIS_URL=redis://127.0.0.1:6379/0 \\
        gunicorn examples.scale_out:web_app --worker-class aiohttp.GunicornWebWorker \\
        --workers 4 --bind 0.0.0.0:8080

Offline on one machine: ``--demo`` starts a redis-server of its own (Debian's
``redis-server`` must be installed) and the emulator enforcing YunHu's 10 requests/s,
runs ``--workers`` BotApp processes sharing Redis, posts ``--events`` messages to them
round-robin (each one twice, to two workers, as a redelivery would), and prints what
the emulator received::

    python examples/scale_out.py --demo --workers 4 --events 40

Needs ``pip install 'yunhu-stream[redis]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import aiohttp

from yunhu_stream import Bot
from yunhu_stream.app import BotApp
from yunhu_stream.events import MessageEvent
from yunhu_stream.testing import message_event


def build_app() -> BotApp:
    """The bot every worker runs; the token and Redis come from the environment."""
    app = BotApp(bot_options={"redis": os.environ.get("YUNHU_REDIS_URL")})

    @app.on_message()
    async def reply(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(event) as s:
            await s.write(f"worker {os.getpid()} got: {event.text}")

    return app


web_app = build_app().make_app() if "gunicorn" in sys.modules else None
"""The application gunicorn serves (built only under gunicorn)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve_one() -> None:
    """One demo worker: serve on a free loopback port, print the URL, stop at EOF."""
    async with build_app() as app:
        print(app.url, flush=True)
        await asyncio.to_thread(sys.stdin.readline)


def _start(argv: list[str], env: dict[str, str] | None) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


async def demo(workers: int, events: int) -> None:
    from yunhu_stream.emulator import Emulator

    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("the demo needs redis-server (Debian: apt-get install redis-server)")
    port, data = _free_port(), tempfile.mkdtemp(prefix="yunhu-demo-redis-")
    redis = _start([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--dir", data], None)
    procs: list[subprocess.Popen[str]] = []
    try:
        async with Emulator(rate_limit=10) as emu:
            env = dict(os.environ, YUNHU_TOKEN=emu.token, YUNHU_BASE_URL=emu.base_url,
                       YUNHU_REDIS_URL=f"redis://127.0.0.1:{port}/0")
            procs = [_start([sys.executable, __file__, "--serve-one"], env)
                     for _ in range(workers)]
            urls = [await asyncio.to_thread(p.stdout.readline) for p in procs if p.stdout]
            started = time.monotonic()
            async with aiohttp.ClientSession() as session:
                for i in range(events):
                    body = message_event(f"question {i}", chat=f"user:{1000 + i % 7}",
                                         event_id=f"demo-{i}")
                    for url in (urls[i % workers], urls[(i + 1) % workers]):  # redelivered
                        async with session.post(url.strip(), json=body) as resp:
                            resp.raise_for_status()
            await emu.wait_until(lambda: sum(s.completed for s in emu.streams) >= events,
                                 timeout=120)
            took = time.monotonic() - started
            print(f"{workers} workers, {events} events each delivered twice: "
                  f"{len(emu.streams)} replies in {took:.1f} s, "
                  f"{emu.rate_limited} answered 1007 (over 10/s)")
    finally:
        for p in procs:
            p.communicate("\n", timeout=10)
        redis.terminate()
        redis.communicate(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-one"]:
        asyncio.run(_serve_one())
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", required=True,
                        help="run everything offline on this machine")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--events", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(demo(args.workers, args.events))
