"""``yunhu-stream send`` where it runs unattended: /dev/null, signals, long runs, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import WAIT, cli_env, closed_port, finish, spawn, write
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestInputsTheLoopCannotWatch:
    async def test_stdin_from_dev_null_ends_as_empty_input(self, emulator: Emulator) -> None:
        """Under cron, nohup, CI or `docker run` without -i, stdin is /dev/null."""
        with open(os.devnull, "rb") as devnull:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "yunhu_stream", "send", "--to", "group:1",
                "--base-url", emulator.base_url, stdin=devnull,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=cli_env(emulator.token))
            out, err = await asyncio.wait_for(proc.communicate(), WAIT)
        assert proc.returncode == 6, err
        assert b"input was empty" in err
        assert out == b""

    async def test_dev_null_as_the_file_argument_ends_too(self, emulator: Emulator) -> None:
        result = await finish(await spawn(
            "send", "--to", "group:1", "--base-url", emulator.base_url, os.devnull,
            env=cli_env(emulator.token)))
        assert result.rc == 6 and "input was empty" in result.stderr

    async def test_a_regular_file_is_sent_whole(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        path = tmp_path / "notes.txt"
        path.write_text("第一行\nsecond\n", encoding="utf-8")
        result = await finish(await spawn(
            "send", "--to", "group:1", "--base-url", emulator.base_url, str(path),
            env=cli_env(emulator.token)))
        assert result.rc == 0, result.stderr
        assert emulator.chat("group", "1")[-1].text == "第一行\nsecond\n"


class TestOneReportPerFailure:
    async def test_a_failure_is_printed_once(self, emulator: Emulator) -> None:
        base = f"http://127.0.0.1:{closed_port()}/open-apis/v1"
        result = await finish(await spawn(
            "send", "--to", "group:1", "--base-url", base, "--retries", "0",
            env=cli_env(emulator.token)), b"hello\n")
        assert result.rc == 5
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("yunhu-stream: error:"), lines

    async def test_a_signal_with_the_end_of_input_leaves_no_warning(
        self, emulator: Emulator
    ) -> None:
        """SIGTERM at the moment input ends: aborted cleanly, no 'never awaited' warning."""
        emulator.faults.never_answer()  # the answer never comes: close() is waiting
        proc = await spawn("send", "--to", "group:1", "--base-url", emulator.base_url,
                           env=cli_env(emulator.token))
        await write(proc, b"hello\n")
        await emulator.wait_for_stream(1, timeout=WAIT)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
        assert proc.returncode == 143
        assert b"RuntimeWarning" not in err and b"never awaited" not in err
        assert out == b""


class TestLongRuns:
    async def test_fifty_megabytes_with_rollover_keep_memory_bounded(
        self, emulator: Emulator
    ) -> None:
        """RSS after 50 MB is within a fixed bound of RSS after 5 MB: what rolled over is
        released, whatever the total."""
        proc = await spawn(
            "send", "--to", "group:1", "--base-url", emulator.base_url,
            "--max-message-bytes", str(1024 * 1024), "--flush-delay", "0",
            env=cli_env(emulator.token))
        line = ("日志 " * 40 + "\n").encode()  # ~ 281 bytes
        block = line * (1024 * 1024 // len(line))

        def rss_kib() -> int:
            with open(f"/proc/{proc.pid}/status", encoding="ascii") as status:
                for row in status:
                    if row.startswith("VmRSS:"):
                        return int(row.split()[1])
            raise AssertionError("no VmRSS")

        early = 0
        for mib in range(50):
            await write(proc, block)
            if mib == 4:
                early = rss_kib()
        late = rss_kib()
        result = await finish(proc)
        assert result.rc == 0, result.stderr[-500:]
        assert len(result.stdout.splitlines()) >= 45  # one JSON line per message
        assert late - early < 30 * 1024, (early, late)
