"""``yunhu-stream send`` with the inputs of cron, nohup, CI and docker (issue 12, finding 10).

Each test runs the real command in a subprocess against the emulator in this process.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

from tests._paths import ROOT
from yunhu_stream.cli._common import ExitCode, Interrupted, Signals
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

WAIT = 60.0  # a hang guard: the bug was waiting for ever


def env_for(emu: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHU_")}
    env.update(PYTHONIOENCODING="utf-8", YUNHU_TOKEN=emu.token, YUNHU_BASE_URL=emu.base_url,
               PYTHONPATH=str(ROOT / "src"), PYTHONWARNINGS="default")
    return env


async def run_send(emu: Emulator, *args: str, stdin: int | None = None,
                   stdin_path: str | None = None) -> tuple[int, str, str]:
    handle = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115 - closed below
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yunhu_stream", "send", *args,
            stdin=handle if handle is not None else stdin,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env_for(emu),
        )
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    finally:
        if handle is not None:
            handle.close()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class TestNonPollableInput:
    async def test_stdin_from_dev_null_ends_with_the_empty_input_code(
        self, emulator: Emulator
    ) -> None:
        rc, out, err = await run_send(emulator, "--to", "group:1", stdin_path="/dev/null")
        assert rc == ExitCode.INPUT == 6
        assert out == ""
        assert err.splitlines() == ["yunhu-stream: error: the input was empty; no message was sent"]
        assert emulator.chats() == []

    async def test_dev_null_as_the_file_argument(self, emulator: Emulator) -> None:
        rc, _, err = await run_send(emulator, "--to", "group:1", "/dev/null",
                                    stdin=asyncio.subprocess.DEVNULL)
        assert rc == ExitCode.INPUT
        assert "Traceback" not in err and len(err.splitlines()) == 1

    async def test_a_regular_file_as_stdin_is_sent(self, emulator: Emulator,
                                                    tmp_path: Path) -> None:
        path = tmp_path / "report.txt"
        path.write_text("第一行\nsecond line\n", encoding="utf-8")
        rc, out, err = await run_send(emulator, "--to", "group:7", stdin_path=str(path))
        assert rc == ExitCode.OK, err
        assert '"recvId": "7"' in out
        [message] = emulator.chat("group:7")
        assert message.text == "第一行\nsecond line\n"


class TestFailuresPrintedOnce:
    async def test_an_unreachable_server_is_reported_in_one_line(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        path = tmp_path / "in.txt"
        path.write_text("hello\n")
        closed = f"http://127.0.0.1:{_closed_port()}/open-apis/v1"
        rc, _, err = await run_send(emulator, "--to", "group:1", "--base-url", closed,
                                    "--retries", "0", stdin_path=str(path))
        assert rc == ExitCode.NETWORK
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("yunhu-stream: error:")

    async def test_verbose_still_shows_the_library_events(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        path = tmp_path / "in.txt"
        path.write_text("hello\n")
        closed = f"http://127.0.0.1:{_closed_port()}/open-apis/v1"
        _, _, err = await run_send(emulator, "-v", "--to", "group:1", "--base-url", closed,
                                   "--retries", "0", stdin_path=str(path))
        assert "stream_failed" in err


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestSignals:
    async def test_a_signal_before_close_leaves_no_unawaited_coroutine(self) -> None:
        """The race the issue saw: a signal already in when close() is to be awaited."""
        signals = Signals()
        signals.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(signals.wait(), WAIT) == signal.SIGTERM

            async def close() -> None:
                raise AssertionError("must not run after the signal")

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with pytest.raises(Interrupted):
                    await signals.race(close())
                gc.collect()
        finally:
            signals.uninstall()
        assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []

    async def test_sigterm_with_end_of_input_prints_no_warning(self, emulator: Emulator) -> None:
        for _ in range(5):  # the race is timing-dependent: try it several times
            before = len(emulator.streams)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "yunhu_stream", "send", "--to", "group:1",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env_for(emulator),
            )
            assert proc.stdin is not None
            proc.stdin.write(b"last words\n")
            await proc.stdin.drain()
            await emulator.wait_until(lambda: len(emulator.streams) > before,
                                      what="the stream to start")
            proc.stdin.close()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), WAIT)
            assert proc.returncode in (ExitCode.OK, ExitCode.TERMINATED)
            text = err.decode()
            assert "RuntimeWarning" not in text and "never awaited" not in text, text
            assert len(text.splitlines()) <= 1


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
class TestConstantMemory:
    async def test_50_mb_through_send_stays_within_a_fixed_rss_bound(
        self, emulator: Emulator
    ) -> None:
        """`tail -f log | yunhu-stream send --max-message-bytes …` grew ~0.94 MB of RSS
        per MB streamed. Now the growth after the first 10 MB is bounded by a constant,
        whatever the total (here 50 MB)."""
        mib = 1024 * 1024
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "yunhu_stream", "send", "--to", "group:long",
            "--max-message-bytes", str(mib),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env_for(emulator),
        )
        assert proc.stdin is not None
        line = ("x" * 1023 + "\n").encode()
        block = line * 1024  # 1 MiB of whole lines
        samples: dict[int, int] = {}
        try:
            for n in range(1, 51):
                proc.stdin.write(block)
                await asyncio.wait_for(proc.stdin.drain(), WAIT)
                if n % 5 == 0:
                    samples[n] = _rss_bytes(proc.pid)
            proc.stdin.close()
            out, err = await asyncio.wait_for(proc.communicate(), WAIT * 3)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == ExitCode.OK, err.decode()
        assert len(out.decode().splitlines()) == len(emulator.chat("group:long")) >= 50
        assert sum(len(m.text) for m in emulator.chat("group:long")) == 50 * mib
        growth = max(samples.values()) - samples[10]
        assert growth < 20 * mib, {n: s // mib for n, s in samples.items()}
