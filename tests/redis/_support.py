"""A real redis-server on a free loopback port, and worker processes that share it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._support import child_env, free_port

WORKER = Path(__file__).with_name("_worker.py")


def redis_server_path() -> str:
    """The redis-server binary, or skip the test saying how to get one."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; "
                    "`make test` installs it when run as root)")
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.skip("the redis extra is not installed: pip install 'yunhu-stream[redis]'")
    return path


class RedisServer:
    """One redis-server process of the test's own, on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="yunhu-redis-")
        self.proc = subprocess.Popen(
            [redis_server_path(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import redis
        client = redis.Redis(host="127.0.0.1", port=self.port)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        self.client = client

    def kill(self) -> None:
        """Take it down hard (SIGKILL), as a crash would."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


class Worker:
    """A worker process (tests/redis/_worker.py) driven over its stdin/stdout."""

    def __init__(self, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), *args], env=child_env(**env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    async def line(self, timeout: float = 120) -> str:
        assert self.proc.stdout is not None
        text = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not text:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"worker ended: {err[-3000:]}")
        return text.strip()

    async def json(self, timeout: float = 120) -> dict[str, object]:
        result: dict[str, object] = json.loads(await self.line(timeout))
        return result

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
