"""Quiet by default, structured when asked: what a program that uses the library sees.

Each case runs a real program in a child process (a fresh interpreter: logging and
structlog start unconfigured there, as in a user's program) that streams one message
into an embedded emulator and serves one webhook event through a BotApp.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from structlog.testing import capture_logs

from tests._support import child_env
from yunhu_stream import Bot
from yunhu_stream._log import get_logger, safe
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PROGRAM = """
import asyncio, json, sys, urllib.request
{setup}
from yunhu_stream import Bot
from yunhu_stream.app import BotApp
from yunhu_stream.emulator import Emulator
from yunhu_stream.testing import message_event

async def main():
    async with Emulator() as emu:
        async with Bot(emu.token, base_url=emu.base_url) as bot:
            async with bot.stream(to="group:1") as s:
                await s.write("hello")
        app = BotApp(emu.token, base_url=emu.base_url)

        @app.on_message()
        async def echo(event, bot):
            async with bot.stream(to=event) as s:
                await s.write("echo")

        async with app:
            body = json.dumps(message_event("hi", chat="group:2")).encode()
            request = urllib.request.Request(app.url, data=body, method="POST",
                                             headers={{"Content-Type": "application/json"}})
            await asyncio.to_thread(urllib.request.urlopen, request)
            await emu.wait_for_message("group:2", predicate=lambda m: m.text == "echo")
        {after}

asyncio.run(main())
"""


def run_program(setup: str = "", after: str = "") -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(PROGRAM).format(setup=setup, after=after)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True, env=child_env())


class TestDefaultIsQuiet:
    def test_nothing_on_stdout_or_stderr_without_configuration(self) -> None:
        """A program that streams and serves a webhook, configuring nothing, prints nothing."""
        result = run_program()
        assert result.stdout == ""
        assert result.stderr == ""

    def test_warnings_reach_stderr_through_the_last_resort_handler(self) -> None:
        """A failure (a stream to a closed port) is said on stderr, even unconfigured."""
        result = run_program(after=textwrap.dedent("""
            from yunhu_stream import errors
            async with Bot("t", base_url="http://127.0.0.1:9/x", recover=False) as dead:
                s = dead.stream(to="user:1")
                await s.write("x")
                try:
                    await s.close()
                except errors.TransportError:
                    pass
        """).replace("\n", "\n        "))
        assert result.stdout == ""
        assert "stream_failed" in result.stderr
        assert "error=ConnectError" in result.stderr

    def test_configured_logging_shows_the_events_with_their_values(self) -> None:
        """With logging.basicConfig(level=DEBUG) the events appear as `event key=value`."""
        result = run_program(setup="import logging; logging.basicConfig(level=logging.DEBUG)")
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        opened = [ln for ln in lines if "yunhu_stream.client" in ln and "stream_opened" in ln]
        assert opened and "recv_id=1" in opened[0] and "content_type=text" in opened[0]
        closed = [ln for ln in lines if "stream_closed" in ln]
        assert closed and "chunks=" in closed[0] and "delivery=stream" in closed[0]
        assert any("yunhu_stream.app" in ln and "webhook_ready" in ln for ln in lines)
        assert any("yunhu_stream.emulator" in ln and "emulator_started" in ln for ln in lines)

    def test_an_application_structlog_configuration_applies(self) -> None:
        """An application that configures structlog gets the events through its processors."""
        setup = textwrap.dedent("""
            import structlog
            structlog.configure(processors=[structlog.processors.JSONRenderer()],
                                logger_factory=structlog.PrintLoggerFactory(sys.stdout))
        """)
        result = run_program(setup=setup)
        events = [json.loads(line) for line in result.stdout.splitlines()]
        names = {e["event"] for e in events}
        assert {"stream_opened", "stream_closed", "webhook_ready"} <= names
        assert result.stderr == ""


class TestCapture:
    async def test_capture_logs_still_captures(self, emulator: Emulator) -> None:
        """structlog.testing.capture_logs sees the library's events, with their levels."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            with capture_logs() as logs:
                async with bot.stream(to="user:1") as s:
                    await s.write("x")
        by_event = {e["event"]: e for e in logs}
        assert by_event["stream_opened"]["log_level"] == "debug"
        assert by_event["stream_closed"]["recv_id"] == "1"


class TestHostileValues:
    def test_values_that_cannot_be_printed_are_escaped(self) -> None:
        """Lone surrogates, NUL, bidi overrides and newlines come out as escapes."""
        assert safe("a\ud800b\x00c\u202ed\n") == "a\\ud800b\\u0000c\\u202ed\\u000a"
        assert safe(42) == 42

    def test_a_log_call_never_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        """A value whose repr raises costs the log line, not the work it describes."""

        class Hostile:
            def __repr__(self) -> str:
                raise RuntimeError("repr exploded")

        caplog.set_level("DEBUG", logger="yunhu_stream")
        get_logger("client").warning("something", value=Hostile())  # must not raise
