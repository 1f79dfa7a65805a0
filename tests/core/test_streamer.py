"""The Streamer's contract (issue 2, "Streamer semantics" 1-12), against the emulator."""

from __future__ import annotations

import asyncio
import gc
import linecache
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._support import http_chunks, no_client_tasks, serving
from yunhu_stream import (
    Bot,
    BotStatistics,
    MessageInfo,
    Recipient,
    Streamer,
    StreamState,
    errors,
)
from yunhu_stream._transport import Transport
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
        yield b


async def wait_failed(s: object) -> None:
    """Write until the stream reports its failure (bounded; no timing assumed)."""
    for _ in range(500):
        await s.write("x")  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    raise AssertionError("the stream never reported its failure")


@pytest.fixture
async def raw_server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A plain aiohttp server that records request headers and answers success or 307."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        await request.read()
        if request.path.endswith("/redirect/bot/send-stream"):
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.json_response({"code": 1, "msg": "success", "data": {"messageInfo": {
            "msgId": "m1", "recvId": request.query.get("recvId"),
            "recvType": request.query.get("recvType")}}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with serving(app) as base:
        yield base, seen


class TestArguments:
    async def test_to_accepts_recipients_and_strings(self, bot: Bot, emulator: Emulator) -> None:
        """Recipient objects and 'user:ID'/'group:ID' strings address the same chats."""
        for to in (Recipient.user("1"), "user:1", Recipient.group("2"), "group:2"):
            async with bot.stream(to=to) as s:
                await s.write("hi")
        assert [m.text for m in emulator.chat("user", "1")] == ["hi", "hi"]
        assert [m.text for m in emulator.chat("group", "2")] == ["hi", "hi"]

    @pytest.mark.parametrize("to", ["7058262", "channel:1", "user:", 7058262, None, ("user", "1")])
    async def test_bad_to_names_accepted_forms(self, bot: Bot, to: object) -> None:
        """Anything else raises ValueError at the call, naming the accepted forms."""
        with pytest.raises(ValueError, match=r"Recipient\.user\(id\).*'user:ID'"):
            bot.stream(to=to)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="accepted"):
            await bot.send(to, "hi")  # type: ignore[arg-type]

    @pytest.mark.parametrize("content_type", ["html", "image", "", None, "Markdown"])
    async def test_stream_content_type_is_text_or_markdown(
        self, bot: Bot, content_type: object
    ) -> None:
        """Streams take 'text' or 'markdown' only; the error lists both."""
        with pytest.raises(ValueError, match="'text', 'markdown'"):
            bot.stream(to="user:1", content_type=content_type)  # type: ignore[arg-type]

    async def test_send_takes_html_buttons_and_parent(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """bot.send also accepts html, buttons and a quoted parent id."""
        first = await bot.send(Recipient.group("123"), "hi", content_type="text")
        buttons = [[{"text": "Docs", "actionType": 1, "url": "https://example.com"}]]
        info = await bot.send("group:123", "<b>x</b>", content_type="html",
                              buttons=buttons, parent_id=first.msg_id)
        assert info.delivery == "send" and info.recv_id == "123"
        stored = emulator.chat("group", "123")[-1]
        assert (stored.content_type, stored.buttons, stored.parent_id) == (
            "html", buttons, first.msg_id)

    @pytest.mark.parametrize("buttons", [
        [[{"text": "x", "actionType": 4}]], [{"text": "x"}], [[{"actionType": 1, "url": "u"}]],
        [[{"text": "x", "actionType": 1}]], "button",
    ])
    async def test_bad_buttons_are_rejected(self, bot: Bot, buttons: object) -> None:
        """Malformed buttons fail at the call with the offending position named."""
        with pytest.raises(ValueError, match="button"):
            await bot.send("user:1", "hi", buttons=buttons)  # type: ignore[arg-type]

    def test_token_falls_back_to_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Bot() reads YUNHU_TOKEN and YUNHU_BASE_URL; without a token it says how to give one."""
        monkeypatch.setenv("YUNHU_TOKEN", "env-token")
        monkeypatch.setenv("YUNHU_BASE_URL", "http://127.0.0.1:9/open-apis/v1")
        assert Bot().base_url == "http://127.0.0.1:9/open-apis/v1"
        monkeypatch.delenv("YUNHU_TOKEN")
        monkeypatch.delenv("YUNHU_BASE_URL")
        with pytest.raises(errors.ConfigurationError, match="YUNHU_TOKEN"):
            Bot()
        assert Bot("t").base_url == "https://chat-go.jwzhd.com/open-apis/v1"

    @pytest.mark.parametrize(("option", "value"), [
        ("connect_timeout", 0), ("response_timeout", -1), ("max_buffer_bytes", 0),
        ("rate_limit", float("nan")), ("retry_attempts", 0), ("base_url", "ftp://x"),
    ])
    def test_bad_options_are_configuration_errors(self, option: str, value: object) -> None:
        """Out-of-range options raise ConfigurationError naming the option."""
        with pytest.raises(errors.ConfigurationError, match=option):
            Bot("t", **{option: value})  # type: ignore[arg-type]


class TestLiveDelivery:
    async def test_text_arrives_before_close(self, bot: Bot, emulator: Emulator) -> None:
        """(1) A write followed by a pause reaches the server while the stream is open."""
        async with bot.stream(to="user:7058262") as s:
            await s.write("Hello ")
            record = await emulator.wait_for_stream()
            await record.wait_for_bytes(6)
            assert record.body == b"Hello " and not record.done
            assert emulator.chat("user", "7058262")[-1].text == "Hello "
            await s.write("world")
            await record.wait_for_bytes(11)
            assert not record.done
        assert record.completed and len(http_chunks(record)) == 2
        assert emulator.chat("user", "7058262")[-1].text == "Hello world"

    async def test_request_is_chunked_plain_text_without_redirects(
        self, raw_server: tuple[str, list[web.Request]]
    ) -> None:
        """(1) The body is chunked text/plain UTF-8, and a redirect is not followed."""
        base, seen = raw_server
        async with Bot("secret-token", base_url=base, rate_limit=None) as b:
            async with b.stream(to="user:1") as s:
                await s.write("hi")
            assert s.message_info == MessageInfo("m1", "1", "user")
            request = seen[-1]
            assert request.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert request.headers["Transfer-Encoding"] == "chunked"
            assert request.query["contentType"] == "text"
            async with Bot("secret-token", base_url=base + "/redirect", rate_limit=None) as b2:
                s2 = b2.stream(to="user:1")
                await s2.write("hi")
                with pytest.raises(errors.HTTPStatusError) as info:
                    await s2.close()
            assert info.value.status == 307
            assert [r.path for r in seen].count("/elsewhere") == 0

    async def test_write_does_not_suspend_while_there_is_room(self, bot: Bot) -> None:
        """(2) write() completes without yielding to the event loop when the buffer has room."""
        async with bot.stream(to="user:1") as s:
            for piece in ("first", "second"):
                coro = s.write(piece)
                with pytest.raises(StopIteration):
                    coro.send(None)
        assert s.text == "firstsecond"

    async def test_fast_producer_sends_few_large_chunks(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(2) Everything queued while the network was busy goes out as one chunk."""
        async with bot.stream(to="user:1") as s:
            for i in range(5000):
                await s.write(f"{i},")
        record = emulator.streams[-1]
        assert record.text == "".join(f"{i}," for i in range(5000))
        assert s.stats.chunks_sent <= 3
        assert s.stats.writes == 5000

    async def test_chunks_are_capped_at_64_kib_on_utf8_boundaries(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(2) A large backlog is cut into chunks of at most 64 KiB, never inside a character."""
        text = "云湖😀" * 40_000  # 280,000 bytes, 3- and 4-byte sequences
        async with bot.stream(to="user:1", max_buffer_bytes=1 << 20) as s:
            s.write_nowait(text)
        assert emulator.streams[-1].text == text
        assert s.stats.chunks_sent >= 5
        for chunk in http_chunks(emulator.streams[-1]):
            assert len(chunk) <= 64 * 1024
            chunk.decode("utf-8")  # every chunk is whole characters


class TestBackpressure:
    async def test_buffer_is_bounded_when_server_stops_reading(
        self, emulator: Emulator
    ) -> None:
        """(3) With a stalled server, write_nowait refuses and write waits at the byte bound."""
        fault = emulator.faults.stall(after_bytes=1)
        async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                       max_buffer_bytes=64 * 1024) as b:
            s = b.stream(to="user:1")
            piece = "x" * 1024
            try:
                with pytest.raises(errors.WouldBlockError, match="buffer is full"):
                    for _ in range(100_000):  # far beyond socket buffers: must refuse
                        s.write_nowait(piece)
                        await asyncio.sleep(0)
                assert s.stats.buffered_bytes <= 64 * 1024
                written = s.stats.bytes_written
                blocked = asyncio.ensure_future(s.write(piece))
                await asyncio.sleep(0.05)
                assert not blocked.done()
                assert s.stats.bytes_written == written
            finally:
                fault.release()  # a failed check must fail the test, not hang it
            await blocked
            await s.close()
        assert emulator.streams[-1].text == s.text

    async def test_oversized_write_into_empty_buffer_is_accepted(
        self, emulator: Emulator
    ) -> None:
        """(3) One write bigger than the bound still goes through when nothing is queued."""
        async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                       max_buffer_bytes=16) as b, b.stream(to="user:1") as s:
            s.write_nowait("y" * 1000)
        assert emulator.chat("user", "1")[-1].text == "y" * 1000


class TestInputValidation:
    @pytest.mark.parametrize("value", [b"bytes", 42, None, ["a"]])
    async def test_write_takes_str_only(self, bot: Bot, value: object) -> None:
        """(4) Anything but str raises TypeError naming the type."""
        async with bot.stream(to="user:1") as s:
            named = f"write\\(\\) takes str, not {type(value).__name__}$"
            with pytest.raises(TypeError, match=named):
                await s.write(value)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="takes str"):
                s.write_nowait(value)  # type: ignore[arg-type]
            await s.write("still usable")
        assert s.text == "still usable"

    async def test_lone_surrogate_raises_and_stream_stays_usable(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(4) Text UTF-8 cannot carry raises ValueError from that call only."""
        async with bot.stream(to="user:1") as s:
            await s.write("a")
            with pytest.raises(ValueError, match="UTF-8"):
                await s.write("b\ud800c")
            await s.write("d")
        assert emulator.chat("user", "1")[-1].text == "ad"

    async def test_empty_string_sends_nothing(self, bot: Bot, emulator: Emulator) -> None:
        """(4, 6) Empty writes are accepted and, alone, make no request at all."""
        async with bot.stream(to="user:1") as s:
            await s.write("")
            s.write_nowait("")
        assert s.message_info is None and await s.close() is None
        assert s.state is StreamState.CLOSED
        assert emulator.streams == [] and emulator.requests == []
        with pytest.raises(errors.StreamClosedError):
            await s.write("after the end")


class TestFailFast:
    async def test_write_after_early_rejection_raises_typed_error(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(5) Once the server has answered early, the next write raises its error with text."""
        emulator.faults.reject_early(1003)
        s = bot.stream(to="user:1")
        await s.write("doomed ")
        with pytest.raises(errors.UnauthorizedError) as info:
            await wait_failed(s)
        assert info.value.code == 1003 and info.value.endpoint == "bot/send-stream"
        assert info.value.text is not None and info.value.text.startswith("doomed x")
        with pytest.raises(errors.UnauthorizedError):
            await s.close()

    async def test_network_failure_raises_transport_error_with_cause(self) -> None:
        """(5, 9) A refused connection surfaces as TransportError chained from the OS error."""
        async with Bot("tok", base_url="http://127.0.0.1:9/open-apis/v1",
                       recover=False, rate_limit=None) as b:
            s = b.stream(to="user:1")
            await s.write("hello")
            with pytest.raises(errors.TransportError) as info:
                await wait_failed(s)
        assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
        assert info.value.text is not None and info.value.text.startswith("hello")


class TestClosing:
    async def test_close_returns_message_info_and_is_idempotent(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(6) close() ends the body, returns MessageInfo, and returns it again later."""
        s = bot.stream(to="group:9", content_type="markdown")
        await s.write("**hi**")
        info = await s.close()
        assert info == s.message_info == await s.close()
        assert info is not None and info.recipient == Recipient.group("9")
        assert info.msg_id == emulator.streams[-1].msg_id
        assert s.state is StreamState.CLOSED and s.messages == [info]

    async def test_exception_in_block_aborts_and_reraises(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(7) An exception inside the block cuts the body off and propagates unchanged."""
        with pytest.raises(KeyError, match="boom"):
            async with bot.stream(to="user:1") as s:
                await s.write("partial")
                record = await emulator.wait_for_stream()
                await record.wait_for_bytes(7)
                raise KeyError("boom")
        await record.wait_done()
        assert record.aborted and not record.completed
        assert s.state is StreamState.ABORTED and s.message_info is None
        assert no_client_tasks()

    async def test_explicit_abort(self, bot: Bot, emulator: Emulator) -> None:
        """(7, 8) abort() cuts the request off; later writes raise StreamClosedError."""
        s = bot.stream(to="user:1")
        await s.write("partial")
        record = await emulator.wait_for_stream()
        await record.wait_for_bytes(7)
        await s.abort()
        await s.abort()
        await record.wait_done()
        assert record.aborted
        with pytest.raises(errors.StreamClosedError, match="aborted"):
            await s.write("more")
        assert no_client_tasks()

    async def test_cancellation_leaves_nothing_running(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(7) Cancelling the producing task propagates and closes the request and task."""
        started = asyncio.Event()

        async def producer() -> None:
            async with bot.stream(to="user:1") as s:
                await s.write("tick")
                started.set()
                await asyncio.Event().wait()

        task = asyncio.ensure_future(producer())
        await started.wait()
        record = await emulator.wait_for_stream()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await record.wait_done()
        assert record.aborted
        assert no_client_tasks()
        assert bot.stats == BotStatistics(calls_in_flight=0, streams_in_flight=0)

    async def test_cancel_while_closing_aborts(self, bot: Bot, emulator: Emulator) -> None:
        """(7) Cancelling close() while it waits for the answer aborts, never swallowing it."""
        emulator.faults.never_answer()
        s = bot.stream(to="user:1")
        await s.write("x")
        closing = asyncio.ensure_future(s.close())
        record = await emulator.wait_for_stream()
        await emulator.wait_until(lambda: record.completed)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert s.state is StreamState.ABORTED
        # The emulator's own never-answering handler still waits, so check the client side.
        assert no_client_tasks()
        assert bot.stats == BotStatistics(calls_in_flight=0, streams_in_flight=0)

    async def test_write_after_close_raises_closed(self, bot: Bot) -> None:
        """(8) write() and write_nowait() after close raise StreamClosedError."""
        async with bot.stream(to="user:1") as s:
            await s.write("done")
        with pytest.raises(errors.StreamClosedError, match="closed"):
            await s.write("late")
        with pytest.raises(errors.StreamClosedError):
            s.write_nowait("late")


class TestResponses:
    @pytest.mark.parametrize(("code", "cls"), [
        (1002, errors.InvalidParameterError), (1003, errors.UnauthorizedError),
        (1004, errors.BotBannedError), (1005, errors.ChatBannedError),
        (1007, errors.RateLimitedError), (-1, errors.APIError),
    ])
    async def test_api_codes_map_to_error_classes(
        self, emulator: Emulator, code: int, cls: type[errors.APIError]
    ) -> None:
        """(9) Each documented code raises its own APIError subclass with code, msg, endpoint."""
        emulator.faults.reject(code, "nope", when="after_body")
        async with Bot(emulator.token, base_url=emulator.base_url, recover=False,
                       rate_limit=None) as b:
            s = b.stream(to="user:1")
            await s.write("text")
            with pytest.raises(cls) as info:
                await s.close()
        assert type(info.value) is cls
        assert (info.value.code, info.value.msg, info.value.endpoint) == (
            code, "nope", "bot/send-stream")
        assert info.value.text == "text"

    async def test_wrong_token_is_unauthorized(self, emulator: Emulator) -> None:
        """(9) The emulator's real token check answers 1003, raised as UnauthorizedError."""
        async with Bot("wrong-token", base_url=emulator.base_url, rate_limit=None) as b:
            with pytest.raises(errors.UnauthorizedError):
                async with b.stream(to="user:1") as s:
                    await s.write("x")

    async def test_non_json_body_is_invalid_response(self, emulator: Emulator) -> None:
        """(9) A body that is not the JSON envelope raises with status and an excerpt."""
        emulator.faults.non_json(when="after_body")
        async with Bot(emulator.token, base_url=emulator.base_url, recover=False,
                       rate_limit=None) as b:
            s = b.stream(to="user:1")
            await s.write("x")
            with pytest.raises(errors.StreamBrokenError) as info:
                await s.close()
        cause = info.value.__cause__
        assert isinstance(cause, errors.InvalidResponseError)
        assert cause.status == 200 and "<" in cause.body

    async def test_http_error_status(self, emulator: Emulator) -> None:
        """(9) HTTP status >= 400 raises HTTPStatusError with the status and body excerpt."""
        emulator.faults.http_status(404, when="before_body")
        async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as b:
            s = b.stream(to="user:1")
            await s.write("x")
            with pytest.raises(errors.HTTPStatusError) as info:
                await s.close()
        assert info.value.status == 404 and info.value.body
        assert isinstance(info.value, errors.YunhuError)


class TestManyStreams:
    async def test_more_streams_than_aiohttp_default_pool_run_at_once(
        self, bot: Bot, emulator: Emulator
    ) -> None:
        """(12) 150 concurrent streams all reach the server before any of them closes."""
        gate = asyncio.Event()

        async def one(i: int) -> MessageInfo | None:
            async with bot.stream(to=f"user:{i}") as s:
                await s.write(f"start {i}")
                await gate.wait()
                await s.write(" end")
            return s.message_info

        tasks = [asyncio.ensure_future(one(i)) for i in range(150)]
        await emulator.wait_until(
            lambda: len(emulator.streams) == 150 and all(r.chunks for r in emulator.streams)
        )
        assert not any(r.done for r in emulator.streams)
        gate.set()
        infos = await asyncio.gather(*tasks)
        assert all(info is not None for info in infos)

    async def test_no_total_timeout_but_bounded_connect_and_response(self) -> None:
        """(12) The session has no total timeout; connect and response waits are bounded."""
        transport = Transport("t", "http://127.0.0.1:9", session=None,
                              connect_timeout=3, response_timeout=7)
        try:
            timeout = transport.session().timeout
            assert timeout.total is None and timeout.connect == 3
        finally:
            await transport.aclose()

    async def test_response_timeout_after_body(self, emulator: Emulator) -> None:
        """(12) A server that never answers after the body ends hits response_timeout."""
        emulator.faults.never_answer()
        async with Bot(emulator.token, base_url=emulator.base_url, recover=False,
                       response_timeout=0.2, rate_limit=None) as b:
            s = b.stream(to="user:1")
            await s.write("x")
            with pytest.raises(errors.StreamBrokenError) as info:
                await s.close()
        assert isinstance(info.value.__cause__, errors.ResponseTimeoutError)
        assert info.value.text == "x"


class TestTranscript:
    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
        ["云湖", "流式消息", "😀", "👨‍👩‍👧", "\n", "e\u0301", ""]), max_size=30))
    async def test_server_receives_exact_concatenation(self, pieces: list[str]) -> None:
        """The server receives exactly the concatenation of the writes, CJK and emoji included."""
        async with Emulator() as emu, Bot(emu.token, base_url=emu.base_url,
                                          rate_limit=None) as b:
            async with b.stream(to="user:1") as s:
                for i, piece in enumerate(pieces):
                    await s.write(piece)
                    if i % 3 == 0:
                        await asyncio.sleep(0)
            expected = "".join(pieces)
            assert s.text == expected
            if expected:
                assert emu.streams[-1].body == expected.encode()
                assert emu.chat("user", "1")[-1].text == expected
            else:
                assert emu.streams == []


def test_unclosed_stream_warns() -> None:
    """A stream left open is reported with a ResourceWarning when collected."""

    async def leave_open() -> None:
        async with Emulator() as emu, Bot(emu.token, base_url=emu.base_url) as b:
            s = b.stream(to="user:1")
            await s.write("x")
            await s.abort()
            s2 = b.stream(to="user:1")
            await s2.write("forgotten")
            task = next(t for t in asyncio.all_tasks() if t.get_name().startswith("yunhu-stream"))
            stream = repr(s2)
            with pytest.warns(ResourceWarning, match="never closed") as caught:
                del s2
                gc.collect()
            [warning] = caught.list
            assert str(warning.message) == f"{stream} was never closed"
            # It names the stream as its source (tracemalloc shows where it was made) and
            # points at the library's line that reports it.
            assert isinstance(warning.source, Streamer) and repr(warning.source) == stream
            assert "never closed" in linecache.getline(warning.filename, warning.lineno)
            assert task is not None
            task.cancel()
            await asyncio.wait({task})

    asyncio.run(leave_open())


def test_a_streamer_never_initialised_is_collected_quietly() -> None:
    """A Streamer whose ``__init__`` never ran (a subclass that failed first, a copy in
    the making) is collected without an error from ``__del__``."""
    seen: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, seen.append
    try:
        half = Streamer.__new__(Streamer)
        del half
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert seen == []
