"""Promises of docs/reliability.md and docs/streaming.md that no other test pinned
(issue 17): retries, timeouts, token safety, rollover points, recovery's lookup rules.

Real servers on loopback (the emulator, or a plain aiohttp app where the emulator cannot
misbehave that way); the pure rules (backoff, split points) are checked on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import aiohttp
import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._support import serving
from yunhu_stream import Bot, errors
from yunhu_stream._buffer import TranscriptBuffer
from yunhu_stream._log import get_logger
from yunhu_stream._retry import RetryPolicy, backoff_delay
from yunhu_stream._transport import translating
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

HANG = 30  # seconds: turns a hang into a failure; measures nothing
TOKEN = "tok-SECRET-4f1d2c"


def make_bot(emu: Emulator, **kw: object) -> Bot:
    options: dict[str, object] = {
        "base_url": emu.base_url, "response_timeout": 0.5, "edit_interval": 0.02,
        "retry_max_wait": 5.0, "rate_limit": None,
    }
    options.update(kw)
    return Bot(emu.token, **options)  # type: ignore[arg-type]


# -- retry rules ---------------------------------------------------------------------


def rate_limited(retry_after: float | None) -> errors.RateLimitedError:
    return errors.RateLimitedError(code=1007, msg="limited", endpoint="bot/send",
                                   retry_after=retry_after)


class TestRetryRules:
    def test_backoff_bound_doubles_each_retry_up_to_the_cap(self) -> None:
        random.seed(17)
        for attempt, bound in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.6), (10, 5.0)]:
            delays = [backoff_delay(attempt, 0.2, 5.0) for _ in range(400)]
            assert max(delays) <= bound
            assert max(delays) > bound * 0.9  # the bound is reached, not a smaller one
            assert min(delays) < bound * 0.1  # full jitter: from zero

    async def test_retry_after_longer_than_max_wait_gives_up_at_once(self) -> None:
        budget = RetryPolicy(attempts=5, max_wait=0.5).budget()
        with anyio.fail_after(HANG):
            assert not await budget.backoff(rate_limited(60.0), get_logger("client"), "e")
        assert budget.attempt == 0 and budget.waited == 0

    async def test_retry_after_is_waited_at_least(self) -> None:
        budget = RetryPolicy(attempts=5, max_wait=10.0, base=0.001, cap=0.001).budget()
        assert await budget.backoff(rate_limited(0.05), get_logger("client"), "e")
        assert budget.waited == 0.05 and budget.attempt == 1

    async def test_max_wait_bounds_the_total_backoff(self) -> None:
        budget = RetryPolicy(attempts=100, max_wait=0.25, base=0.1, cap=0.1).budget()
        exc = rate_limited(0.1)  # every backoff waits 0.1 s: two fit in 0.25 s
        log = get_logger("client")
        assert [await budget.backoff(exc, log, "e") for _ in range(4)] == [
            True, True, False, False]
        assert budget.attempt == 2

    async def test_attempts_count_the_first_try(self) -> None:
        budget = RetryPolicy(attempts=3, max_wait=10.0, base=0.0, cap=0.0).budget()
        log = get_logger("client")
        assert [await budget.backoff(rate_limited(None), log, "e") for _ in range(3)] == [
            True, True, False]

    async def test_http_429_is_retried(self, emulator: Emulator) -> None:
        fault = emulator.faults.http_status(429, when="before_body")
        async with make_bot(emulator) as bot, bot.stream("user:1") as s:
            await s.write("after ")
            with anyio.fail_after(HANG):
                await fault.wait_hit()  # answered while the body is still open
            await s.write("a 429")
        assert s.stats.attempts == 2
        assert s.message_info is not None and s.message_info.delivery == "stream"
        assert [m.text for m in emulator.chat("user", "1")] == ["after a 429"]
        emulator.faults.http_status(429, endpoint="send")
        async with make_bot(emulator) as bot:
            await bot.send("user:1", "sent after a 429")
        assert emulator.chat("user", "1")[-1].text == "sent after a 429"

    @pytest.mark.parametrize("status", [400, 403, 404])
    async def test_http_4xx_is_not_retried(
        self, emulator: Emulator, status: int
    ) -> None:
        emulator.faults.http_status(status, when="before_body", times=None,
                                    endpoint=("send-stream", "send"))
        async with make_bot(emulator) as bot:
            s = bot.stream("user:1")
            with pytest.raises(errors.HTTPStatusError) as info:
                await s.write("refused")
                with anyio.fail_after(HANG):
                    await s.close()
            assert info.value.status == status and info.value.text == "refused"
            assert s.stats.attempts == 1
            with pytest.raises(errors.HTTPStatusError):
                await bot.send("user:1", "refused too")
        assert [r.endpoint for r in emulator.requests] == ["send-stream", "send"]


    async def test_a_redirect_is_neither_followed_nor_retried(self) -> None:
        """A 3xx answer to a JSON call is an HTTPStatusError after exactly one request."""
        seen: list[str] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            seen.append(request.path)
            return web.Response(status=307, headers={"Location": "/elsewhere"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with serving(app) as base, Bot("t", base_url=base) as bot:
            with pytest.raises(errors.HTTPStatusError) as info:
                await bot.send("user:1", "hi")
        assert info.value.status == 307 and seen == ["/bot/send"]


# -- timeouts ------------------------------------------------------------------------


class TestTimeouts:
    async def test_stream_without_answer_is_a_response_timeout(self, emulator: Emulator) -> None:
        fault = emulator.faults.never_answer()
        try:
            async with make_bot(emulator, recover=False, response_timeout=0.5) as bot:
                s = bot.stream("user:1")
                await s.write("complete")
                # 0.5 s is the promise; far less than 10× it must do (margin 7×).
                with anyio.fail_after(3.5), pytest.raises(errors.StreamBrokenError) as info:
                    await s.close()
            cause = info.value.__cause__
            assert isinstance(cause, errors.ResponseTimeoutError)
            assert "no response within 0.5 s after the body ended" in str(cause)
            assert cause.endpoint == "bot/send-stream"
        finally:
            fault.release()

    async def test_call_without_answer_is_a_response_timeout(self, emulator: Emulator) -> None:
        fault = emulator.faults.never_answer(endpoint="messages")
        try:
            async with make_bot(emulator, response_timeout=0.5, retry_attempts=1) as bot:
                with anyio.fail_after(3.5), pytest.raises(errors.ResponseTimeoutError):
                    await bot.messages("user:1")
        finally:
            fault.release()

    @pytest.mark.parametrize(
        ("raised", "expected", "message"),
        [
            (aiohttp.ConnectionTimeoutError("connect"), errors.ConnectTimeoutError,
             "bot/send: timed out (ConnectionTimeoutError: connect)"),
            (asyncio.TimeoutError(), errors.ConnectTimeoutError,
             "bot/send: timed out (TimeoutError: )"),
            (aiohttp.SocketTimeoutError("read"), errors.ResponseTimeoutError,
             "bot/send: timed out (SocketTimeoutError: read)"),
            (ConnectionRefusedError(111, "refused"), errors.ConnectError,
             "bot/send: ConnectionRefusedError: [Errno 111] refused"),
            (aiohttp.ClientPayloadError("cut"), errors.TransportError,
             "bot/send: ClientPayloadError: cut"),
        ],
    )
    def test_timeout_classes(self, raised: BaseException, expected: type, message: str) -> None:
        with pytest.raises(errors.TransportError) as info, translating("bot/send"):
            raise raised
        assert type(info.value) is expected
        assert str(info.value) == message and info.value.endpoint == "bot/send"
        assert info.value.__cause__ is raised
        others = {errors.ConnectTimeoutError, errors.ResponseTimeoutError} - {expected}
        assert not any(isinstance(info.value, o) for o in others)

    async def test_refused_connection_is_a_connect_error(self) -> None:
        from tests._support import free_port

        port = free_port()  # closed: nothing listens there
        async with Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/v1", retry_attempts=1,
                       rate_limit=None) as bot:
            with pytest.raises(errors.ConnectError) as info:
                await bot.send("user:1", "hello")
        assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


# -- token safety --------------------------------------------------------------------


class TestTokenSafety:
    def test_error_text_holding_the_token_is_redacted_and_not_chained(self) -> None:
        with pytest.raises(errors.TransportError) as info, translating(
            "bot/send", (TOKEN,)
        ):
            raise OSError(f"cannot reach host with {TOKEN} in it")
        assert str(info.value) == "bot/send: OSError: cannot reach host with *** in it"
        assert info.value.__cause__ is None  # the original would print the token
        assert info.value.__suppress_context__

    def test_token_in_a_url_is_redacted_and_not_chained(self) -> None:
        with pytest.raises(errors.TransportError) as info, translating("bot/send"):
            raise OSError("GET /v1/bot/send?token=abc123&x=1 failed")
        assert "abc123" not in str(info.value) and "token=***" in str(info.value)
        assert info.value.__cause__ is None

    def test_error_without_a_secret_keeps_its_cause(self) -> None:
        original = OSError("plain failure")
        with pytest.raises(errors.TransportError) as info, translating("bot/send", (TOKEN,)):
            raise original
        assert info.value.__cause__ is original

    async def test_error_page_echoing_the_token_is_redacted(self) -> None:
        async def echo(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(status=500, text=f"error for {request.query_string} "
                                f"and {request.query.get('token')}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/v1", retry_attempts=1,
                           rate_limit=None, recover=False) as bot:
                with capture_logs() as logs:
                    with pytest.raises(errors.HTTPStatusError) as sent:
                        await bot.send("user:1", "x")
                    s = bot.stream("user:1")
                    with pytest.raises(errors.YunhuError) as streamed:
                        await s.write("y")
                        await s.close()
        finally:
            await runner.cleanup()
        for exc in (sent.value, streamed.value):
            assert TOKEN not in str(exc) and TOKEN not in repr(exc)
            assert "***" in str(exc)
        assert TOKEN not in repr(logs)


# -- the success-before-the-body-ended guard ------------------------------------------


async def test_success_answered_before_the_body_ended_is_an_error() -> None:
    """A 200 success while the body is still being sent is not a delivered message."""
    answered = asyncio.Event()

    async def early(request: web.Request) -> web.Response:
        answered.set()
        return web.json_response({"code": 1, "msg": "success", "data": {"messageInfo": {
            "msgId": "m1", "recvId": "1", "recvType": "user"}}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", early)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/v1", rate_limit=None,
                       recover=False) as bot:
            s = bot.stream("user:1")
            await s.write("first")
            with anyio.fail_after(HANG):
                await answered.wait()
            with pytest.raises(errors.InvalidResponseError,
                               match="success answered before the body ended") as info:
                for _ in range(500):  # until the stream reports it (no timing assumed)
                    await s.write("more")
                    await asyncio.sleep(0.01)
            assert (info.value.status, info.value.endpoint) == (200, "bot/send-stream")
            assert s.message_info is None
    finally:
        await runner.cleanup()


# -- rollover points (docs/streaming.md, "max_message_bytes") --------------------------


def split_of(text: str, max_message: int = 100) -> int:
    """Where a message of ``max_message`` bytes holding ``text`` ends (one take)."""
    buf = TranscriptBuffer(10**6, max_message)
    buf.append(text.encode())
    chunk = buf.take()
    assert chunk is not None
    return len(chunk)


class TestRolloverPoints:
    def test_a_line_end_before_the_last_quarter_is_not_used(self) -> None:
        assert split_of("a" * 49 + "\n" + "b" * 70) == 100  # the allowance itself

    def test_a_line_end_in_the_last_quarter_is_used(self) -> None:
        assert split_of("a" * 79 + "\n" + "b" * 40) == 80
        assert split_of("a" * 76 + "\n" + "b" * 40) == 77  # just inside the last quarter

    def test_paragraph_beats_line_beats_sentence(self) -> None:
        assert split_of("a" * 78 + "\n\n" + "b" * 8 + "\n" + "c" * 30) == 80
        assert split_of("a" * 79 + "\n" + "b" * 8 + ". " + "c" * 30) == 80
        assert split_of("a" * 80 + "\n" + "b" * 8 + "\n" + "c" * 30) == 90  # the latest line

    def test_a_sentence_end_is_used_when_there_is_no_line_end(self) -> None:
        assert split_of("a" * 80 + ". " + "b" * 40) == 82
        assert split_of("a" * 80 + "。" + "b" * 40) == 83

    def test_no_split_before_the_last_quarter_is_reached(self) -> None:
        buf = TranscriptBuffer(10**6, 100)
        buf.append(b"a" * 60 + b"\n" + b"b" * 10)
        assert buf.take() is not None and buf.split is None
        buf.append(b"c" * 40 + b"\n" + b"d" * 40)
        while buf.take() is not None:
            pass
        assert buf.split is not None and buf.split <= 100

    async def test_rolled_over_messages_break_at_line_ends(self, emulator: Emulator) -> None:
        lines = [f"line {i:03d} " + "x" * 20 + "\n" for i in range(40)]
        async with make_bot(emulator) as bot, bot.stream(
            "user:1", max_message_bytes=200) as s:
            for line in lines:
                await s.write(line)
        chat = emulator.chat("user", "1")
        assert "".join(m.text for m in chat) == "".join(lines)
        assert len(chat) > 1
        for message in chat:
            assert len(message.text.encode()) <= 200 and message.text.endswith("\n")


class TestRetryBoundaries:
    async def test_a_backoff_that_exactly_spends_max_wait_is_allowed(self) -> None:
        budget = RetryPolicy(attempts=100, max_wait=0.2, base=0.0, cap=0.0).budget()
        exc, log = rate_limited(0.1), get_logger("client")
        assert [await budget.backoff(exc, log, "e") for _ in range(3)] == [True, True, False]

    async def test_each_retry_is_logged_with_attempt_delay_and_error(self) -> None:
        budget = RetryPolicy(attempts=5, max_wait=10.0, base=0.0, cap=0.0).budget()
        with capture_logs() as logs:
            assert await budget.backoff(rate_limited(0.01234), get_logger("client"), "e_retry")
        [event] = [e for e in logs if e["event"] == "e_retry"]
        assert event["attempt"] == 1
        assert event["delay_s"] == 0.012
        assert event["error"] == "RateLimitedError"


class TestRateLimiterWindow:
    @pytest.mark.parametrize("rate", [0.5, 1.5])
    async def test_one_request_per_window_below_two_per_second(self, rate: float) -> None:
        """Below 2/s the window holds one request: the second waits for the first's slot."""
        from yunhu_stream._ratelimit import RateLimiter

        limiter = RateLimiter(rate)
        await limiter.acquire()
        second = asyncio.ensure_future(limiter.acquire())
        try:
            for _ in range(20):
                await asyncio.sleep(0)
            assert not second.done()  # the window (>= 0.76 s) has not passed
        finally:
            second.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second
