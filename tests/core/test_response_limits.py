"""A hostile or broken server cannot make the client read an unbounded answer.

A YunHu answer is a few hundred bytes; the client reads at most 256 KiB of it (after
decompression) and raises InvalidResponseError. Each case runs the client in a fresh
child process against a server in another child process, and compares the client's
peak RSS before and after the call, so nothing else in the test run can blur it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests._support import child_env, free_port

SERVER = """
import asyncio, sys, zlib
from aiohttp import web

MIB = 1024 * 1024
kind, port = sys.argv[1], int(sys.argv[2])

def gzip_bomb(size):
    # 512 MiB of zeros compressed chunk by chunk: about 0.5 MB on the wire.
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MIB)
    parts = [c.compress(block) for _ in range(size // MIB)]
    return b"".join(parts) + c.flush()

async def handler(request):
    await request.read()
    if kind == "gzip":
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    block = b"x" * (64 * 1024)
    try:
        for _ in range(256 * 16):  # 256 MiB
            await resp.write(block)
    except ConnectionError:
        pass
    return resp

BOMB = gzip_bomb(512 * MIB) if kind == "gzip" else b""

async def main():
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

CLIENT = """
import asyncio, resource, sys
from yunhu_stream import Bot, errors

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main():
    base = f"http://127.0.0.1:{sys.argv[2]}/open-apis/v1"
    async with Bot("secret-token", base_url=base, retry_attempts=1, recover=False) as bot:
        before = peak_mib()
        try:
            if sys.argv[1] == "stream":
                async with bot.stream(to="user:1") as s:
                    await s.write("hello")
            else:
                await bot.send("user:1", "hello")
        except errors.YunhuError as exc:
            cause = exc if isinstance(exc, errors.InvalidResponseError) else exc.__cause__
            print("error", type(cause).__name__, getattr(cause, "body", ""))
        print("growth", peak_mib() - before)

asyncio.run(main())
"""


def run_case(kind: str, call: str) -> tuple[str, float]:
    port = free_port()
    with subprocess.Popen([sys.executable, "-c", SERVER, kind, str(port)],
                          stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            out = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(CLIENT), call, str(port)],
                capture_output=True, text=True, timeout=120, check=True, env=child_env(),
            ).stdout
        finally:
            server.kill()
    error = next(line for line in out.splitlines() if line.startswith("error"))
    growth = float(next(line for line in out.splitlines() if line.startswith("growth")).split()[1])
    return error, growth


@pytest.mark.parametrize("call", ["send", "stream"])
@pytest.mark.parametrize("kind", ["huge", "gzip"])
def test_an_oversized_answer_is_refused_in_bounded_memory(kind: str, call: str) -> None:
    """A 256 MiB answer, or 0.5 MB of gzip inflating to 512 MiB, raises
    InvalidResponseError and grows the client's peak memory by a few MiB at most."""
    error, growth_mib = run_case(kind, call)
    assert "InvalidResponseError" in error and "larger than 262144 bytes" in error
    assert growth_mib < 8, f"client peak RSS grew {growth_mib:.1f} MiB"
