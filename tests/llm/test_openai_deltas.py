"""openai_chat_deltas and deltas_from: text deltas out of OpenAI-compatible streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests._support import serve_app
from yunhu_stream.errors import ConfigurationError, YunhuError
from yunhu_stream.fake_llm import DEFAULT_ANSWER, FakeLLM, tokenize
from yunhu_stream.llm import (
    LLMConnectionError,
    LLMError,
    LLMHTTPStatusError,
    LLMIncompleteError,
    LLMProviderError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    deltas_from,
    openai_chat_deltas,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test-5ecret-K3y-never-shown"
MESSAGES = [{"role": "user", "content": "你好"}]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM(api_key=KEY) as server:
        yield server


def deltas(server: FakeLLM, **kwargs: Any) -> AsyncIterator[str]:
    params: dict[str, Any] = {
        "base_url": server.base_url,
        "api_key": KEY,
        "model": "fake-gpt",
        "messages": MESSAGES,
    }
    params.update(kwargs)
    return openai_chat_deltas(**params)


async def collect(source: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in source]


async def failure(source: AsyncIterator[str]) -> LLMError:
    with pytest.raises(LLMError) as info:
        await collect(source)
    return info.value


class TestStreaming:
    async def test_yields_every_token_in_order(self, llm: FakeLLM) -> None:
        """The deltas are exactly the server's tokens, role-only and finish chunks skipped."""
        assert await collect(deltas(llm)) == tokenize(DEFAULT_ANSWER)
        assert llm.outcomes == ["done"]

    async def test_request_body(self, llm: FakeLLM) -> None:
        """The body carries model, messages, stream: true and the extra parameters."""
        await collect(deltas(llm, temperature=0.2, max_tokens=64))
        assert llm.requests == [
            {
                "model": "fake-gpt",
                "messages": MESSAGES,
                "temperature": 0.2,
                "max_tokens": 64,
                "stream": True,
            }
        ]

    async def test_usage_chunk_and_keepalive_comments_are_skipped(self) -> None:
        """Usage chunks (empty choices) and comment keep-alives add no deltas."""
        async with FakeLLM(["a", "b"], comments=True) as server:
            got = await collect(
                deltas(server, api_key=None, stream_options={"include_usage": True})
            )
        assert got == ["a", "b"]

    async def test_base_url_with_full_path_is_accepted(self, llm: FakeLLM) -> None:
        """A base_url already ending in /chat/completions is used as it is."""
        got = await collect(deltas(llm, base_url=llm.base_url + "/chat/completions/"))
        assert "".join(got) == DEFAULT_ANSWER

    async def test_given_session_is_used_and_left_open(self, llm: FakeLLM) -> None:
        """A caller's session carries the request and stays open afterwards."""
        async with aiohttp.ClientSession() as session:
            got = await collect(deltas(llm, session=session))
            assert not session.closed
        assert "".join(got) == DEFAULT_ANSWER

    async def test_closing_early_hangs_up(self) -> None:
        """aclose() after a few deltas closes the connection; the server sees the client leave."""
        async with FakeLLM(["x"] * 1000, delay=0.001) as server:
            stream = openai_chat_deltas(
                base_url=server.base_url, api_key=None, model="m", messages=MESSAGES
            )
            assert [await anext(stream) for _ in range(3)] == ["x", "x", "x"]
            await stream.aclose()
            assert await server.wait_outcomes(1) == ["disconnected"]

    async def test_logs_summary_without_secrets(self, llm: FakeLLM) -> None:
        """A finished stream logs its size; no log line holds the API key."""
        with capture_logs() as logs:
            await collect(deltas(llm))
        finished = [e for e in logs if e["event"] == "llm_stream_finished"]
        assert finished[0]["chars"] == len(DEFAULT_ANSWER)
        assert finished[0]["deltas"] == len(tokenize(DEFAULT_ANSWER))
        assert KEY not in repr(logs)


class TestStreamErrors:
    async def test_error_object_mid_stream(self, llm: FakeLLM) -> None:
        """An error object after some tokens raises LLMProviderError carrying the text so far."""
        llm.fault, llm.fault_after = "error_mid_stream", 3
        error = await failure(deltas(llm))
        assert isinstance(error, LLMProviderError)
        assert isinstance(error, LLMStreamError)
        assert error.text == "".join(tokenize(DEFAULT_ANSWER)[:3])
        assert error.type == "server_error"
        assert "crashed mid-answer" in str(error)

    async def test_error_event(self, llm: FakeLLM) -> None:
        """An 'event: error' frame also raises LLMProviderError."""
        llm.fault, llm.fault_after = "error_event", 0
        error = await failure(deltas(llm))
        assert isinstance(error, LLMProviderError)
        assert error.text == ""
        assert error.code == 500

    async def test_end_without_done(self, llm: FakeLLM) -> None:
        """A body that ends cleanly without [DONE] raises LLMIncompleteError with the whole text."""
        llm.fault = "no_done"
        error = await failure(deltas(llm))
        assert isinstance(error, LLMIncompleteError)
        assert error.text == DEFAULT_ANSWER

    async def test_connection_cut_mid_body(self, llm: FakeLLM) -> None:
        """A connection cut mid-body raises LLMConnectionError, chained, with the text so far."""
        llm.fault, llm.fault_after = "drop", 2
        error = await failure(deltas(llm))
        assert type(error) is LLMConnectionError
        assert isinstance(error.__cause__, aiohttp.ClientError)
        assert error.text == "".join(tokenize(DEFAULT_ANSWER)[:2])

    async def test_http_error_status(self, llm: FakeLLM) -> None:
        """HTTP >= 400 raises LLMHTTPStatusError with the status, excerpt and API message."""
        llm.fault, llm.http_status = "http_error", 503
        error = await failure(deltas(llm))
        assert isinstance(error, LLMHTTPStatusError)
        assert error.status == 503
        assert error.api_message == "The server had an error."
        assert '"code": "server_error"' in error.body

    async def test_wrong_key_is_401_and_not_shown(self, llm: FakeLLM) -> None:
        """A rejected key gives HTTP 401, and neither key appears in the error."""
        wrong = "sk-wrong-key-1234567890"
        error = await failure(deltas(llm, api_key=wrong))
        assert isinstance(error, LLMHTTPStatusError)
        assert error.status == 401
        for text in (str(error), repr(error), error.body, repr(error.__dict__)):
            assert wrong not in text
            assert KEY not in text

    async def test_json_instead_of_event_stream(self, llm: FakeLLM) -> None:
        """A server that ignores stream: true raises LLMResponseError naming the content type."""
        llm.fault = "not_sse"
        error = await failure(deltas(llm))
        assert isinstance(error, LLMResponseError)
        assert error.content_type == "application/json"
        assert "expected a text/event-stream" in str(error)

    async def test_connection_refused(self) -> None:
        """Nothing listening raises LLMConnectionError, not an aiohttp exception."""
        async with FakeLLM() as server:
            url = server.base_url
        error = await failure(
            openai_chat_deltas(base_url=url, api_key=KEY, model="m", messages=MESSAGES)
        )
        assert isinstance(error, LLMConnectionError)
        assert isinstance(error, YunhuError)

    async def test_stalled_model_times_out(self) -> None:
        """No byte for read_timeout seconds raises LLMTimeoutError with the text so far."""
        async with FakeLLM(["a", "b"], delay=30) as server:
            error = await failure(
                openai_chat_deltas(
                    base_url=server.base_url,
                    api_key=None,
                    model="m",
                    messages=MESSAGES,
                    read_timeout=0.2,
                )
            )
        assert isinstance(error, LLMTimeoutError)
        assert error.text == ""


async def serve(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner, base = await serve_app(app)
    return runner, f"{base}/v1"


class TestHostileServers:
    async def test_key_echoed_in_error_body_is_redacted(self) -> None:
        """A server echoing the Authorization header back has the key replaced by ***."""

        async def echo(request: web.Request) -> web.Response:
            return web.json_response(
                {"error": {"message": f"bad header {request.headers['Authorization']}"}},
                status=400,
            )

        runner, url = await serve(echo)
        try:
            error = await failure(
                openai_chat_deltas(base_url=url, api_key=KEY, model="m", messages=MESSAGES)
            )
        finally:
            await runner.cleanup()
        assert isinstance(error, LLMHTTPStatusError)
        assert KEY not in error.body
        assert "Bearer ***" in error.body

    async def test_non_json_data_raises_response_error(self) -> None:
        """A data line that is not JSON raises LLMResponseError quoting it."""

        async def garbage(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b'data: {"choices": [{"delta": {"content": "ok"}}]}\n\n')
            await resp.write(b"data: not json\n\n")
            return resp

        runner, url = await serve(garbage)
        try:
            error = await failure(
                openai_chat_deltas(base_url=url, api_key=None, model="m", messages=MESSAGES)
            )
        finally:
            await runner.cleanup()
        assert isinstance(error, LLMResponseError)
        assert error.body == "not json"
        assert error.text == "ok"

    async def test_oversized_event_raises_response_error(self) -> None:
        """An event past max_event_chars raises LLMResponseError instead of buffering on."""

        async def huge(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"data: " + b"x" * 5000)
            return resp

        runner, url = await serve(huge)
        try:
            error = await failure(
                openai_chat_deltas(
                    base_url=url, api_key=None, model="m", messages=MESSAGES, max_event_chars=1000
                )
            )
        finally:
            await runner.cleanup()
        assert isinstance(error, LLMResponseError)
        assert "max_event_chars=1000" in str(error)


class TestValidation:
    @pytest.mark.parametrize(
        ("override", "match"),
        [
            ({"base_url": "ftp://x/v1"}, "http:// or https://"),
            ({"base_url": 5}, "base_url must be a string"),
            ({"api_key": ""}, "api_key must be None or a non-empty string"),
            ({"api_key": "sk-a b"}, "without whitespace"),
            ({"model": " "}, "model must be a non-empty string"),
            ({"messages": []}, "messages must be a non-empty list"),
            ({"messages": "hi"}, "messages must be a non-empty list"),
            ({"messages": [{"content": "hi"}]}, r"messages\[0\] must be a dict with a 'role'"),
            ({"connect_timeout": 0}, "connect_timeout must be a positive number"),
            ({"read_timeout": float("nan")}, "read_timeout must be a number of seconds > 0"),
            ({"stream": False}, "stream cannot be passed"),
            ({"session": object()}, "session must be an aiohttp.ClientSession"),
            ({"temperature": object()}, "must be JSON"),
            ({"headers": {"X-A": "1\r\nX-B: 2"}}, "headers must be a mapping of str"),
        ],
    )
    def test_bad_argument_fails_at_call_time(self, override: dict[str, Any], match: str) -> None:
        """Bad arguments raise ConfigurationError before any request, saying what is accepted."""
        params: dict[str, Any] = {
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": KEY,
            "model": "m",
            "messages": MESSAGES,
        }
        params.update(override)
        with pytest.raises(ConfigurationError, match=match) as info:
            openai_chat_deltas(**params)
        assert KEY not in str(info.value)


class _Chunk:
    """Stands in for openai's ChatCompletionChunk, a third-party type (openai is optional)."""

    def __init__(self, content: str | None) -> None:
        self.choices = [SimpleNamespace(delta=SimpleNamespace(content=content, role=None))]


class _Stream:
    """Stands in for openai.AsyncStream: async iteration plus an async close()."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.closed = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        for item in self.items:
            yield item

    async def close(self) -> None:
        self.closed = True


class TestDeltasFrom:
    async def test_chunk_objects(self) -> None:
        """Objects with .choices[0].delta.content give their non-empty texts; the stream closes."""
        stream = _Stream(
            [_Chunk(""), _Chunk("你"), _Chunk(None), _Chunk("好"), SimpleNamespace(choices=[])]
        )
        assert await collect(deltas_from(stream)) == ["你", "好"]
        assert stream.closed

    async def test_dicts_and_strings(self) -> None:
        """chat.completion.chunk dicts and plain strings are both accepted."""
        chunk = json.loads('{"choices": [{"index": 0, "delta": {"content": "a"}}]}')
        stream = _Stream([chunk, "b", "", {"choices": []}])
        assert await collect(deltas_from(stream)) == ["a", "b"]

    async def test_error_dict_raises(self) -> None:
        """A dict with an error key raises LLMProviderError with the text so far."""
        stream = _Stream(["a", {"error": {"message": "quota", "code": "insufficient_quota"}}])
        with pytest.raises(LLMProviderError, match="quota") as info:
            await collect(deltas_from(stream))
        assert info.value.text == "a"
        assert info.value.code == "insufficient_quota"
        assert stream.closed

    async def test_wrong_item_type(self) -> None:
        """An item of no accepted kind raises TypeError naming the kinds."""
        with pytest.raises(TypeError, match="items must be str"):
            await collect(deltas_from(_Stream([42])))

    async def test_not_async_iterable(self) -> None:
        """A plain list is refused at call time."""
        with pytest.raises(TypeError, match="async iterable"):
            deltas_from(["a"])  # type: ignore[arg-type]

    async def test_closing_early_closes_source(self) -> None:
        """Closing the generator early closes the source."""
        stream = _Stream(["a", "b", "c"])
        gen = deltas_from(stream)
        assert await anext(gen) == "a"
        await gen.aclose()
        assert stream.closed

    async def test_real_openai_async_stream(self) -> None:
        """The openai package's own AsyncStream, pointed at the fake server, gives the answer."""
        openai = pytest.importorskip("openai")
        async with (
            FakeLLM(api_key=KEY) as server,
            openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
        ):
            stream = await client.chat.completions.create(
                model="fake-gpt", messages=MESSAGES, stream=True
            )
            got = await collect(deltas_from(stream))
        assert got == tokenize(DEFAULT_ANSWER)


class TestTokenize:
    @given(st.text())
    def test_tokens_join_back(self, text: str) -> None:
        """The fake server's tokens always join back to the answer text."""
        assert "".join(tokenize(text)) == text

    def test_cjk_per_character_words_with_space(self) -> None:
        """CJK splits per character, words keep their leading space."""
        assert tokenize("你好 big world") == ["你", "好", " big", " world"]


class TestFakeLLM:
    async def test_non_streaming_request_gets_one_completion(self) -> None:
        """Without stream: true the fake answers one chat.completion with the whole text."""
        async with FakeLLM(["a", "b"]) as server, aiohttp.ClientSession() as http:
            body = {"model": "m", "messages": MESSAGES}
            async with http.post(server.base_url + "/chat/completions", json=body) as resp:
                data = await resp.json()
        assert data["object"] == "chat.completion"
        assert data["choices"][0]["message"] == {"role": "assistant", "content": "ab"}

    async def test_answer_can_depend_on_the_question(self) -> None:
        """A callable answer sees the request's messages."""
        async with FakeLLM(lambda msgs: f"echo: {msgs[-1]['content']}") as server:
            got = await collect(deltas(server, api_key=None))
        assert "".join(got) == "echo: 你好"

    async def test_bad_request_body(self) -> None:
        """A body that is not JSON gets HTTP 400 with an OpenAI-style error."""
        async with FakeLLM() as server, aiohttp.ClientSession() as http:
            url = server.base_url + "/chat/completions"
            async with http.post(url, data=b"{nope") as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "invalid_json"
        assert server.requests == []

    def test_base_url_needs_a_started_server(self) -> None:
        """base_url before start() says how to start it."""
        with pytest.raises(RuntimeError, match="async with FakeLLM"):
            _ = FakeLLM().base_url

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"delay": -1}, "delay must be"),
            ({"fault": "explode"}, "fault must be one of"),
            ({"fault_after": -1}, "fault_after must be"),
            ({"http_status": 200}, "http_status must be"),
        ],
    )
    def test_bad_options(self, kwargs: dict[str, Any], match: str) -> None:
        """Invalid options raise ValueError naming what is accepted."""
        with pytest.raises(ValueError, match=match):
            FakeLLM(**kwargs)
