"""sse_response relays text deltas to HTTP clients as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._support import serve_app
from yunhu_stream.fake_llm import DEFAULT_ANSWER, FakeLLM
from yunhu_stream.llm import LLMProviderError, openai_chat_deltas
from yunhu_stream.sse import SSEEvent, SSEParser, format_event, sse_response, tee

pytestmark = pytest.mark.anyio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Outcome:
    """What the server-side handler saw: the exception sse_response raised, if any."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.returned = asyncio.Event()


def relay(make_source: Callable[[], Any], **kwargs: Any) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, make_source(), **kwargs)

    return handler


class Client:
    """A real aiohttp server on loopback running one handler, and a session to call it."""

    def __init__(self, runner: web.AppRunner, base: str, session: aiohttp.ClientSession) -> None:
        self.runner, self.session = runner, session
        self.url = f"{base}/sse"

    def get(self, path: str = "/sse") -> Any:
        return self.session.get(self.url)

    async def close(self) -> None:
        await self.session.close()
        await self.runner.cleanup()


async def client_for(
    handler: Handler, outcome: Outcome | None = None, *, handler_cancellation: bool = False
) -> Client:
    """Serve ``handler`` like web.run_app does (handler_cancellation off by default)."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            if outcome is not None:
                outcome.error = exc
            raise
        finally:
            if outcome is not None:
                outcome.returned.set()

    app = web.Application(middlewares=[record])
    app.router.add_get("/sse", handler)
    runner, base = await serve_app(
        app, handler_cancellation=handler_cancellation, shutdown_timeout=1
    )
    return Client(runner, base, aiohttp.ClientSession())


async def read_events(resp: aiohttp.ClientResponse) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    async for chunk in resp.content.iter_any():
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


async def pieces(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


class TestStreaming:
    async def test_headers_events_and_done(self) -> None:
        """The response is an uncached event stream: one delta event per piece, then done."""
        client = await client_for(relay(lambda: pieces("你好", "", " world", "!\n")))
        try:
            async with client.get("/sse") as resp:
                assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
                assert resp.headers["Cache-Control"] == "no-cache"
                assert resp.headers["X-Accel-Buffering"] == "no"
                events = await read_events(resp)
        finally:
            await client.close()
        assert [(e.event, json.loads(e.data)) for e in events] == [
            ("delta", "你好"),
            ("delta", " world"),
            ("delta", "!\n"),
            ("done", {"deltas": 3, "chars": 10}),
        ]

    async def test_one_flush_per_event(self) -> None:
        """Each event reaches the client before the source is asked for the next piece."""
        release = [asyncio.Event() for _ in range(3)]

        async def gated() -> AsyncIterator[str]:
            for i, gate in enumerate(release):
                yield f"piece{i}"
                await gate.wait()  # only the client, having seen piece i, opens this

        client = await client_for(relay(gated))
        try:
            async with client.get("/sse") as resp:
                parser, seen = SSEParser(), []
                async for chunk in resp.content.iter_any():
                    for event in parser.feed(chunk):
                        seen.append(event)
                        if event.event == "delta":
                            release[len(seen) - 1].set()
        finally:
            await client.close()
        assert [e.data for e in seen] == ['"piece0"', '"piece1"', '"piece2"', seen[-1].data]
        assert seen[-1].event == "done"

    async def test_text_mode_multiline(self) -> None:
        """data='text' sends pieces as data lines; every line end comes back as LF."""
        source = lambda: pieces("a\nb", "c\r\nd", "e\r", "\n")  # noqa: E731
        client = await client_for(relay(source, data="text", event=None))
        try:
            async with client.get("/sse") as resp:
                events = await read_events(resp)
        finally:
            await client.close()
        assert [(e.event, e.data) for e in events[:-1]] == [
            ("message", "a\nb"),
            ("message", "c\nd"),
            ("message", "e\n"),
            ("message", "\n"),
        ]
        assert events[-1].event == "done"

    async def test_relays_llm_deltas(self) -> None:
        """Deltas from the fake model arrive in order and join to the whole answer."""
        async with FakeLLM(delay=0.001) as llm:
            source = lambda: openai_chat_deltas(  # noqa: E731
                base_url=llm.base_url,
                api_key=None,
                model="m",
                messages=[{"role": "user", "content": "hi"}],
            )
            client = await client_for(relay(source))
            try:
                async with client.get("/sse") as resp:
                    events = await read_events(resp)
            finally:
                await client.close()
        assert "".join(json.loads(e.data) for e in events if e.event == "delta") == DEFAULT_ANSWER

    async def test_keepalive_comment_while_source_is_silent(self) -> None:
        """A silent source gets ': keep-alive' comments on the wire until it speaks."""
        seen_comment = asyncio.Event()

        async def silent_then_speaks() -> AsyncIterator[str]:
            await seen_comment.wait()
            yield "late"

        client = await client_for(relay(silent_then_speaks, keepalive=0.01))
        try:
            async with client.get("/sse") as resp:
                raw = b""
                async for chunk in resp.content.iter_any():
                    raw += chunk
                    if b": keep-alive\n\n" in raw:
                        seen_comment.set()
        finally:
            await client.close()
        assert raw.startswith(b": keep-alive\n\n")
        assert raw.endswith(
            b'event: delta\ndata: "late"\n\nevent: done\ndata: {"deltas": 1, "chars": 4}\n\n'
        )


class TestEnding:
    async def test_source_error_sends_error_event_and_reraises(self) -> None:
        """A failing source gives the client an error event, and sse_response re-raises it."""
        outcome = Outcome()

        async def failing() -> AsyncIterator[str]:
            yield "partial"
            raise LLMProviderError({"message": "secret internals"}, url="http://x")

        client = await client_for(relay(failing), outcome)
        try:
            async with client.get("/sse") as resp:
                events = await read_events(resp)
        finally:
            await client.close()
        assert [(e.event, e.data) for e in events] == [
            ("delta", '"partial"'),
            ("error", '{"error": "LLMProviderError"}'),
        ]
        assert isinstance(outcome.error, LLMProviderError)

    async def test_raise_errors_false_logs_instead(self) -> None:
        """With raise_errors=False the handler returns normally and the failure is logged."""
        outcome = Outcome()

        async def failing() -> AsyncIterator[str]:
            yield "partial"
            raise RuntimeError("boom")

        client = await client_for(relay(failing, raise_errors=False), outcome)
        try:
            with capture_logs() as logs:
                async with client.get("/sse") as resp:
                    events = await read_events(resp)
                with anyio.fail_after(10):
                    await outcome.returned.wait()
        finally:
            await client.close()
        assert events[-1] == SSEEvent(data='{"error": "RuntimeError"}', event="error")
        assert outcome.error is None
        failed = [e for e in logs if e["event"] == "sse_relay_failed"]
        assert failed[0]["error"] == "RuntimeError"

    async def test_non_str_piece_is_a_type_error(self) -> None:
        """A source yielding something other than str ends with an error event and TypeError."""
        outcome = Outcome()
        client = await client_for(relay(lambda: pieces("ok", 5)), outcome)  # type: ignore[arg-type]
        try:
            async with client.get("/sse") as resp:
                events = await read_events(resp)
        finally:
            await client.close()
        assert events[-1] == SSEEvent(data='{"error": "TypeError"}', event="error")
        assert isinstance(outcome.error, TypeError)
        assert "yielded int" in str(outcome.error)

    @pytest.mark.parametrize("handler_cancellation", [False, True])
    async def test_client_disconnect_stops_and_closes_source(
        self, handler_cancellation: bool
    ) -> None:
        """When the client leaves, the pending read is stopped and the source closed.

        Both with aiohttp's default (the relay notices by itself) and with
        handler_cancellation=True (aiohttp cancels the handler).
        """
        outcome = Outcome()
        source_closed = asyncio.Event()

        async def endless() -> AsyncIterator[str]:
            try:
                yield "first"
                await asyncio.Event().wait()  # a model that never sends another token
                yield "never"
            finally:
                source_closed.set()

        client = await client_for(
            relay(endless), outcome, handler_cancellation=handler_cancellation
        )
        try:
            with capture_logs() as logs:
                resp = await client.get("/sse")
                parser = SSEParser()
                while not parser.feed(await resp.content.readany()):
                    pass
                resp.close()  # the browser tab goes away
                with anyio.fail_after(10):
                    await source_closed.wait()
                    await outcome.returned.wait()
        finally:
            await client.close()
        assert outcome.error is None
        finished = [e for e in logs if e["event"] == "sse_relay_finished"]
        assert finished[0]["outcome"] == "disconnected"
        assert finished[0]["deltas"] == 1

    async def test_disconnect_closes_the_llm_request(self) -> None:
        """A departed client makes the relay hang up on the model too."""
        async with FakeLLM(["x"] * 10_000, delay=0.001) as llm:
            source = lambda: openai_chat_deltas(  # noqa: E731
                base_url=llm.base_url,
                api_key=None,
                model="m",
                messages=[{"role": "user", "content": "hi"}],
            )
            client = await client_for(relay(source))
            try:
                resp = await client.get("/sse")
                await resp.content.readany()
                resp.close()
                with anyio.fail_after(10):
                    assert await llm.wait_outcomes(1) == ["disconnected"]
            finally:
                await client.close()

    async def test_disconnect_detaches_only_that_tee_consumer(self) -> None:
        """With tee, the page leaving does not stop the other consumer."""
        gate = asyncio.Event()

        async def source() -> AsyncIterator[str]:
            yield "a"
            await gate.wait()
            for piece in ("b", "c"):
                yield piece

        to_chat, to_page = tee(source(), 2)
        outcome = Outcome()
        client = await client_for(relay(lambda: to_page), outcome)
        try:
            resp = await client.get("/sse")
            await resp.content.readany()
            resp.close()
            with anyio.fail_after(10):
                await outcome.returned.wait()
            gate.set()
            assert [p async for p in to_chat] == ["a", "b", "c"]
        finally:
            await client.close()
        assert outcome.error is None


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"event": "a\nb"}, "event must be a non-empty string without line breaks"),
            ({"done_event": ""}, "done_event must be"),
            ({"data": "xml"}, "data must be one of 'json', 'text'"),
            ({"keepalive": 0}, "keepalive must be a number of seconds > 0, or None"),
        ],
    )
    async def test_bad_arguments_fail_before_sending(
        self, kwargs: dict[str, Any], match: str
    ) -> None:
        """Invalid options raise ValueError before any header is sent."""
        caught: list[BaseException] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await sse_response(request, pieces("x"), **kwargs)
            except ValueError as exc:
                caught.append(exc)
                return web.Response(status=400, text=str(exc))

        client = await client_for(handler)
        try:
            async with client.get("/sse") as resp:
                assert resp.status == 400
        finally:
            await client.close()
        assert len(caught) == 1
        assert match in str(caught[0])

    def test_format_event(self) -> None:
        """format_event writes event and id fields, one data line per line, a blank line."""
        assert format_event("a\r\nb", event="x", id="7") == b"event: x\nid: 7\ndata: a\ndata: b\n\n"
        assert format_event("") == b"data: \n\n"
        with pytest.raises(ValueError, match="NUL"):
            format_event("x", id="a\0b")
        with pytest.raises(ValueError, match="id must be"):
            format_event("x", id="a\nb")
