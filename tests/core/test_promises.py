"""Promises of docs/streaming.md and docs/reliability.md that each have a test of their own.

Each test is named after what must hold and fails (rather than hangs: ``fail_after``)
when the code that keeps the promise is removed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._support import free_port, serving
from yunhu_stream import Bot, errors
from yunhu_stream._transport import translating
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

SUCCESS = {"code": 1, "msg": "success", "data": {"messageInfo": {
    "msgId": "m1", "recvId": "1", "recvType": "user"}}}


async def start_blocked_write(s: object, piece: str) -> asyncio.Task[None]:
    """Write ``piece`` until one write waits for room; return that waiting write."""
    for _ in range(2000):
        task = asyncio.ensure_future(s.write(piece))  # type: ignore[attr-defined]
        for _ in range(20):
            await asyncio.sleep(0)
        if not task.done():
            return task
        task.result()
    raise AssertionError("no write ever waited for room")


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Takes send-stream requests and never reads their bodies; ``cut.set()`` drops them."""
    cut = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await cut.wait()
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serving(app) as base:
        yield base, cut


class TestBackpressureReleases:
    async def test_a_write_waiting_for_room_raises_when_the_stream_is_aborted(
        self, silent_server: tuple[str, asyncio.Event]
    ) -> None:
        base, _ = silent_server
        async with Bot("t", base_url=base, max_buffer_bytes=64 * 1024) as bot:
            s = bot.stream(to="user:1")
            with anyio.fail_after(30):
                waiting = await start_blocked_write(s, "x" * 65536)
                await s.abort()
                with pytest.raises(errors.StreamClosedError):
                    await waiting

    async def test_a_write_waiting_for_room_raises_when_the_stream_fails(
        self, silent_server: tuple[str, asyncio.Event]
    ) -> None:
        base, cut = silent_server
        async with Bot("t", base_url=base, max_buffer_bytes=64 * 1024, recover=False) as bot:
            s = bot.stream(to="user:1")
            with anyio.fail_after(30):
                waiting = await start_blocked_write(s, "x" * 65536)
                cut.set()
                with pytest.raises(errors.StreamBrokenError) as info:
                    await waiting
        assert info.value.text.startswith("x" * 65536)


class TestWriteSemantics:
    async def test_write_nowait_with_quote_fallback_is_unbounded(
        self, emulator: Emulator
    ) -> None:
        """The fallback collects the whole text before one send: nothing to wait for."""
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream(to="user:1", reply_to="m0", quote="fallback", max_buffer_bytes=16) as s,
        ):
            for _ in range(10):
                s.write_nowait("more than sixteen bytes")
        assert emulator.chat("user", "1")[-1].text == "more than sixteen bytes" * 10

    async def test_stats_count_only_non_empty_writes(self, emulator: Emulator) -> None:
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream(to="user:1") as s,
        ):
            for piece in ("", "a", "", "b", ""):
                await s.write(piece)
            s.write_nowait("")
        assert s.stats.writes == 2 and s.text == "ab"

    async def test_a_stream_is_entered_only_once(self, emulator: Emulator) -> None:
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            s = bot.stream(to="user:1")
            async with s:
                await s.write("x")
            with pytest.raises(errors.StreamClosedError, match="only once"):
                async with s:
                    pass

    async def test_no_write_is_taken_while_closing(self, emulator: Emulator) -> None:
        emulator.faults.never_answer()
        async with Bot(emulator.token, base_url=emulator.base_url, response_timeout=0.3,
                       recover=False) as bot:
            s = bot.stream(to="user:1")
            await s.write("x")
            closing = asyncio.ensure_future(s.close())
            await asyncio.sleep(0)
            with pytest.raises(errors.StreamClosedError):
                await s.write("late")
            with pytest.raises(errors.YunhuError):
                await closing
            emulator.faults.clear()

    async def test_abort_is_idempotent_and_logged_once(self, emulator: Emulator) -> None:
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            s = bot.stream(to="user:1")
            await s.write("x")
            with capture_logs() as logs:
                await s.abort()
                await s.abort()
                await s.close()  # after abort: nothing, no error
        assert [e["event"] for e in logs].count("stream_aborted") == 1
        assert s.message_info is None

    async def test_a_backlog_written_with_yields_between_is_coalesced(
        self, emulator: Emulator
    ) -> None:
        """A producer that yields to the loop after every token still shares chunks."""
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream(to="user:1") as s,
        ):
            for i in range(5000):
                await s.write(f"{i % 10}")
                await asyncio.sleep(0)
        assert s.stats.chunks_sent <= 5000 // 4
        assert emulator.chat("user", "1")[-1].text == "".join(f"{i % 10}" for i in range(5000))


class TestLogEvents:
    async def test_idle_close_and_dropped_quote_are_logged(self, emulator: Emulator) -> None:
        async with Bot(emulator.token, base_url=emulator.base_url, idle_timeout=0.05) as bot:
            with capture_logs() as logs:
                s = bot.stream(to="user:1", reply_to="m0")  # quote="drop": logged
                await s.write("then silence")
                await emulator.wait_until(
                    lambda: bool(emulator.streams) and emulator.streams[-1].done,
                    what="the idle stream to end")
                await s.close()
        events = [e["event"] for e in logs]
        assert "quote_dropped" in events and "stream_idle_closed" in events


class TestRolloverPoints:
    async def test_the_split_is_a_sentence_end_in_the_last_quarter_not_an_earlier_line(
        self, emulator: Emulator
    ) -> None:
        text = "a" * 60 + "\n" + "b" * 20 + "。" + "c" * 40
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream(to="user:1", max_message_bytes=100) as s,
        ):
            s.write_nowait(text)
        first, second = (m.text for m in emulator.chat("user", "1"))
        assert first == "a" * 60 + "\n" + "b" * 20 + "。"  # 83 bytes: in [75, 100]
        assert second == "c" * 40

    async def test_a_line_end_is_preferred_to_a_sentence_end(self, emulator: Emulator) -> None:
        text = "a" * 78 + "\n" + "b" * 5 + ". " + "c" * 40
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream(to="user:1", max_message_bytes=100) as s,
        ):
            s.write_nowait(text)
        assert emulator.chat("user", "1")[0].text == "a" * 78 + "\n"


def raw_server(answer: Callable[[int], web.StreamResponse]) -> tuple[web.Application, list[int]]:
    seen: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(1)
        return answer(len(seen))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app, seen


class TestRetryRules:
    async def test_http_429_is_retried(self) -> None:
        app, seen = raw_server(lambda n: web.Response(status=429) if n == 1
                               else web.json_response(SUCCESS))
        async with serving(app) as base, Bot("t", base_url=base) as bot:
            info = await bot.send("user:1", "hi")
        assert info.msg_id == "m1" and len(seen) == 2

    @pytest.mark.parametrize("status", [307, 400, 404])
    async def test_redirects_and_client_errors_are_not_retried(self, status: int) -> None:
        def answer(n: int) -> web.StreamResponse:
            if status == 307:
                return web.Response(status=307, headers={"Location": "/elsewhere"})
            return web.Response(status=status, text="no")

        app, seen = raw_server(answer)
        async with serving(app) as base, Bot("t", base_url=base) as bot:
            with pytest.raises(errors.HTTPStatusError) as info:
                await bot.send("user:1", "hi")
        assert info.value.status == status and len(seen) == 1

    async def test_retry_max_wait_bounds_the_retries(self) -> None:
        app, seen = raw_server(lambda n: web.Response(status=502))
        async with serving(app) as base, Bot("t", base_url=base, retry_attempts=50,
                                             retry_max_wait=0.001) as bot:
            with pytest.raises(errors.HTTPStatusError):
                await bot.edit("m1", "user:1", "hi")  # idempotent: 5xx is retried
        assert 1 <= len(seen) <= 3  # 50 attempts allowed, but the waits are spent at once


class TestTimeoutClasses:
    async def test_nothing_listening_is_a_connect_error(self) -> None:
        async with Bot("t", base_url=f"http://127.0.0.1:{free_port()}/x",
                       retry_attempts=1) as bot:
            with pytest.raises(errors.ConnectError) as info:
                await bot.send("user:1", "hi")
        assert not isinstance(info.value, errors.ResponseTimeoutError)

    async def test_no_answer_is_a_response_timeout(self) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            await asyncio.sleep(30)
            return web.Response()

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with serving(app, shutdown_timeout=0.1) as base, Bot(
                "t", base_url=base, response_timeout=0.3,
                                             retry_attempts=1) as bot:
            with pytest.raises(errors.ResponseTimeoutError) as info:
                await bot.send("user:1", "hi")
        assert not isinstance(info.value, errors.ConnectError)

    async def test_success_before_the_body_ended_is_not_taken_for_success(self) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.json_response(SUCCESS)  # answers without reading the body

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with serving(app) as base, Bot("t", base_url=base, recover=False) as bot:
            s = bot.stream(to="user:1")
            await s.write("first")
            await asyncio.sleep(0.2)
            with pytest.raises(errors.YunhuError) as info:
                await s.write("second")
                await s.close()
        assert not isinstance(info.value, errors.StreamClosedError)


class TestTokenSafety:
    async def test_a_token_echoed_by_the_server_is_redacted_everywhere(self) -> None:
        token = "tok-" + "9" * 24

        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            return web.Response(status=403, text=f"bad token {token} for {request.url}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with serving(app) as base, Bot(token, base_url=base) as bot:
            with pytest.raises(errors.HTTPStatusError) as info:
                await bot.send("user:1", "hi")
        exc = info.value
        shown = [str(exc), repr(exc), exc.body, exc.text]
        assert all(token not in item for item in shown), shown

    def test_an_original_error_holding_a_secret_is_not_chained(self) -> None:
        secret = "s3cr3t-value"
        with pytest.raises(errors.TransportError) as info, translating("x", [secret]):
            raise aiohttp.ClientError(f"failed for {secret}")
        assert secret not in str(info.value) and info.value.__cause__ is None
        with pytest.raises(errors.TransportError) as clean, translating("x", [secret]):
            raise aiohttp.ClientError("failed for another reason")
        assert isinstance(clean.value.__cause__, aiohttp.ClientError)
