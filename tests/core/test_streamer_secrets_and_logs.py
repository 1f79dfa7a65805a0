"""The Streamer's contract, items 10 and 11: the token stays secret, and what is logged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from tests._support import child_env
from yunhu_stream import Bot, FirstChunk, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


class TestSecrets:
    async def test_token_never_in_logs_errors_or_reprs(self, emulator: Emulator) -> None:
        """(10) The token appears in no log event, error message or repr; URLs show token=***."""
        token = emulator.token
        seen: list[str] = []
        with capture_logs() as logs:
            async with Bot(token, base_url=emulator.base_url, recover=False,
                           rate_limit=None) as b:
                seen.append(repr(b))
                for fault in ("reject", "non_json", "http"):
                    if fault == "reject":
                        emulator.faults.reject_early(1003)
                    elif fault == "non_json":
                        emulator.faults.non_json(when="after_body")
                    else:
                        emulator.faults.http_status(502, when="after_body")
                    s = b.stream(to="user:1")
                    seen.append(repr(s))
                    await s.write("x")
                    with pytest.raises(errors.YunhuError) as info:
                        await s.close()
                    exc: BaseException | None = info.value
                    while exc is not None:
                        seen += [str(exc), repr(exc)]
                        exc = exc.__cause__ or exc.__context__
            async with Bot(token, base_url="http://127.0.0.1:9/x", recover=False) as b:
                s = b.stream(to="user:1")
                await s.write("x")
                with pytest.raises(errors.TransportError) as tinfo:
                    await s.close()
                seen += [str(tinfo.value), repr(tinfo.value.__cause__)]
        seen += [repr(event) for event in logs]
        assert logs and all(token not in item for item in seen)

    def test_redaction_of_urls(self) -> None:
        """(10) redact() hides any token= value."""
        from yunhu_stream._transport import redact

        assert redact("http://h/x?token=abc&recvId=1") == "http://h/x?token=***&recvId=1"


class TestLogging:
    async def test_open_close_and_failure_events(self, bot: Bot, emulator: Emulator) -> None:
        """(11) stream_opened/closed carry counts and timings, bound with the recipient."""
        with capture_logs() as logs:
            async with bot.stream(to="group:5") as s:
                await s.write("abc")
            emulator.faults.reject_early(1004)
            with pytest.raises(errors.BotBannedError):
                async with bot.stream(to="user:6") as s2:
                    await s2.write("x")
        by_name: dict[str, dict[str, object]] = {}
        for event in logs:
            by_name.setdefault(str(event["event"]), event)
        opened, closed = by_name["stream_opened"], by_name["stream_closed"]
        assert (opened["recv_id"], opened["recv_type"]) == ("5", "group")
        assert opened["content_type"] == "text"
        assert closed["bytes"] == 3 and closed["chunks"] == 1
        assert closed["msg_id"] == s.message_info.msg_id  # type: ignore[union-attr]
        assert closed["ttfb_ms"] >= 0 and closed["duration_ms"] >= closed["ttfb_ms"]
        failed = by_name["stream_failed"]
        assert (failed["recv_id"], failed["error"]) == ("6", "BotBannedError")

    async def test_stream_closed_counts_the_whole_stream_and_times_it_in_ms(
        self, bot: Bot
    ) -> None:
        """(11) stream_closed: the messages and attempts of the whole stream (one attempt
        per message here); ttfb_ms and duration_ms in milliseconds, rounded to 3 places,
        within the wall time the caller saw (the first chunk is held 0.1 s)."""
        with capture_logs() as logs:
            began = time.monotonic()
            async with bot.stream(to="group:5", max_message_bytes=64,
                                  first_chunk=FirstChunk(min_chars=10)) as s:
                await s.write("a")
                await asyncio.sleep(0.1)
                await s.write("line of text number one.\n" * 4)
                await asyncio.sleep(0.1)
            elapsed_ms = (time.monotonic() - began) * 1000
        (closed,) = [e for e in logs if e["event"] == "stream_closed"]
        assert closed["messages"] == len(s.messages) >= 2
        assert closed["attempts"] == len(s.messages)
        ttfb, duration = closed["ttfb_ms"], closed["duration_ms"]
        assert isinstance(ttfb, float) and isinstance(duration, float)
        assert round(ttfb, 3) == ttfb and round(duration, 3) == duration
        assert ttfb >= 100 and ttfb + 50 <= duration
        assert duration <= elapsed_ms

    async def test_a_bug_inside_the_delivery_fails_the_stream_and_keeps_the_text(
        self, bot: Bot, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unexpected exception in the delivery (a bug) is not lost and loses nothing:
        the stream raises StreamBrokenError naming it, caused by it, holding the text."""
        from yunhu_stream._delivery import Delivery

        bug = RuntimeError("a bug")

        async def broken(self: Delivery) -> None:
            raise bug

        monkeypatch.setattr(Delivery, "_post_stream", broken)
        with capture_logs() as logs, pytest.raises(errors.StreamBrokenError) as caught:
            async with bot.stream(to="group:5") as s:
                await s.write("kept")
        assert str(caught.value).startswith("stream failed unexpectedly: RuntimeError('a bug')")
        assert caught.value.__cause__ is bug
        assert caught.value.text == "kept"
        (failed,) = [e for e in logs if e["event"] == "stream_failed"]
        assert failed["error"] == "StreamBrokenError"

    def test_library_does_not_configure_structlog(self) -> None:
        """(11) Using the library (and its emulator) leaves structlog's configuration alone."""
        script = (
            "import asyncio, structlog\n"
            "from yunhu_stream import Bot\n"
            "from yunhu_stream.emulator import Emulator\n"
            "async def main():\n"
            "    async with Emulator() as emu, Bot(emu.token, base_url=emu.base_url) as b:\n"
            "        async with b.stream(to='user:1') as s:\n"
            "            await s.write('x')\n"
            "asyncio.run(main())\n"
            "print(structlog.is_configured())\n"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, timeout=60, env=child_env())
        assert out.stdout.strip().splitlines()[-1] == "False"
