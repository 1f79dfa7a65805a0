"""A local OpenAI-compatible chat completion server that streams a canned answer.

For running examples offline and for tests::

    async with FakeLLM("你好，世界！Hello world.", delay=0.05) as llm:
        deltas = openai_chat_deltas(base_url=llm.base_url, api_key=None,
                                    model="fake", messages=[{"role": "user", "content": "hi"}])

It is a real aiohttp server on 127.0.0.1 (random port by default) answering
``POST /v1/chat/completions``. With ``"stream": true`` it sends what OpenAI sends:
a role-only first chunk, one ``chat.completion.chunk`` per token, a chunk with
``finish_reason: "stop"``, a usage chunk if ``stream_options.include_usage`` was
asked for, then ``data: [DONE]``. Without it, it answers one ``chat.completion``.

Faults reproduce what real servers do wrong (see :data:`FAULTS`). Run it alone
with ``python -m yunhu_stream.fake_llm --port 8000 --delay 0.05``.

An answer may also call a tool (:class:`ToolCall`), as a model does in an agent loop:
its text streams first, then one ``tool_calls`` delta and ``finish_reason:
"tool_calls"``. Answer with a function of the messages to reply differently once the
tool's result (a ``role: "tool"`` message) is in them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from .. import _validate as validate

__all__ = ["DEFAULT_ANSWER", "FAULTS", "Answer", "FakeLLM", "Fault", "ToolCall", "tokenize"]

Fault = Literal["error_mid_stream", "error_event", "no_done", "drop", "http_error", "not_sse"]
FAULTS: dict[str, str] = {
    "error_mid_stream": "after fault_after tokens, send data: {'error': {...}} and end",
    "error_event": "after fault_after tokens, send event: error with an error object and end",
    "no_done": "send the whole answer, then end the body cleanly without data: [DONE]",
    "drop": "after fault_after tokens, cut the TCP connection mid-body",
    "http_error": "answer http_status (default 500) with an OpenAI-style JSON error body",
    "not_sse": "ignore stream: true and answer one application/json chat.completion",
}

DEFAULT_ANSWER = (
    "你好！我是一个本地的假模型，用来离线演示流式输出。"
    "Each word of this answer arrives as its own server-sent event, "
    "just like a real model's tokens. 🚀"
)



@dataclass(frozen=True)
class ToolCall:
    """An answer that calls a tool: ``text`` streams first (may be empty), then the call.

    Attributes:
        name: The function's name.
        arguments: Its arguments (sent JSON-encoded, as OpenAI does).
        text: What the model says before calling it.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""


Answer = (
    str | Sequence[str] | ToolCall
    | Callable[[list[dict[str, Any]]], str | Sequence[str] | ToolCall]
)
"""A text (split by :func:`tokenize`), a list of tokens, a :class:`ToolCall`, or a
function of the messages returning one of those."""

_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"\s*(?:[{_CJK}]|[^\s{_CJK}]+)|\s+")


def tokenize(text: str) -> list[str]:
    """Split text the way model tokens look: words with their leading space, CJK per character.

    ``"".join(tokenize(text)) == text`` for every text.
    """
    return _TOKEN.findall(text)


class FakeLLM:
    """A fake OpenAI-compatible server. Use ``async with`` or ``start()``/``aclose()``.

    Args:
        answer: What to answer (see :data:`Answer`).
        delay: Seconds to wait before each token, to look like a model.
        api_key: If set, requests must carry ``Authorization: Bearer <api_key>``
            (else 401 with an OpenAI-style error).
        fault: A fault from :data:`FAULTS`, or None. Can be changed between requests.
        fault_after: Tokens sent before a mid-stream fault.
        http_status: Status for the ``http_error`` fault.
        comments: Send ``: keep-alive`` comments before and between chunks, as
            some proxies (e.g. OpenRouter) do.
        model: The model name echoed in chunks.
        host, port: Where to listen; port 0 picks a free one.

    Attributes:
        requests: The JSON body of every completion request received, in order.
        outcomes: How each streamed answer ended, in order: ``"done"``, the
            fault's name, or ``"disconnected"`` (the client went away first).
    """

    def __init__(
        self,
        answer: Answer = DEFAULT_ANSWER,
        *,
        delay: float = 0.0,
        api_key: str | None = None,
        fault: Fault | None = None,
        fault_after: int = 2,
        http_status: int = 500,
        comments: bool = False,
        model: str = "fake-gpt",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        validate.seconds("delay", delay, zero=True)
        if fault is not None:
            validate.choice("fault", fault, FAULTS)
        validate.integer("fault_after", fault_after, minimum=0)
        validate.integer("http_status", http_status, minimum=400, maximum=599)
        self.answer = answer
        self.delay = float(delay)
        self.fault: Fault | None = fault
        self.fault_after = fault_after
        self.http_status = http_status
        self.comments = comments
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self._outcome_changed = asyncio.Event()
        self._api_key = api_key
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._counter = 0

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "not started"
        return f"<FakeLLM {where} fault={self.fault!r}>"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as ``base_url``. Only once started."""
        if self._site is None or self._runner is None:
            raise RuntimeError("FakeLLM is not started; use 'async with FakeLLM() as llm'")
        port = self._runner.addresses[0][1]
        return f"http://{self._host}:{port}/v1"

    def tokens_for(self, messages: list[dict[str, Any]]) -> list[str]:
        """The tokens the server streams for ``messages``."""
        return _tokens(self._answer_for(messages))

    def _answer_for(self, messages: list[dict[str, Any]]) -> str | Sequence[str] | ToolCall:
        return self.answer(messages) if callable(self.answer) else self.answer

    async def wait_outcomes(self, count: int) -> list[str]:
        """Wait until ``count`` streamed answers have ended; return :attr:`outcomes`."""
        while len(self.outcomes) < count:
            await self._outcome_changed.wait()
        return list(self.outcomes)

    def _record(self, outcome: str) -> None:
        self.outcomes.append(outcome)
        changed, self._outcome_changed = self._outcome_changed, asyncio.Event()
        changed.set()

    async def start(self) -> None:
        """Start listening. Idempotent."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        # Cancel a handler when its client goes away (a test that stops reading must
        # not leave a handler sleeping between tokens), and do not wait long on exit.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site

    async def aclose(self) -> None:
        """Stop the server and close open connections. Idempotent."""
        runner, self._runner, self._site = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- handlers ---------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model"}]}
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        if self._api_key is not None and authorization != f"Bearer {self._api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "invalid_json")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty array.", "invalid_messages")
        self.requests.append(body)
        if self.fault == "http_error":
            return _error(self.http_status, "The server had an error.", "server_error")
        self._counter += 1
        ident = f"chatcmpl-fake{self._counter}"
        answer = self._answer_for(messages)
        tokens, call = _tokens(answer), answer if isinstance(answer, ToolCall) else None
        if not body.get("stream") or self.fault == "not_sse":
            return web.json_response(self._completion(ident, "".join(tokens), call))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            resp, outcome = await self._stream(request, ident, tokens, call,
                                               include_usage=include_usage)
        except asyncio.CancelledError:
            # The client went away and aiohttp cancelled the handler (handler_cancellation).
            self._record("disconnected")
            raise
        except ConnectionError:
            # The client went away and a write failed: normal for a client that stops
            # reading, so no traceback.
            self._record("disconnected")
            return web.Response(status=499)  # never sent: the connection is gone
        self._record(outcome)
        return resp

    async def _stream(
        self, request: web.Request, ident: str, tokens: list[str], call: ToolCall | None,
        *, include_usage: bool,
    ) -> tuple[web.StreamResponse, str]:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        fault, created = self.fault, int(time.time())

        async def send(payload: object, event: str | None = None) -> None:
            text = (
                json.dumps(payload, ensure_ascii=False) if not isinstance(payload, str) else payload
            )
            head = f"event: {event}\n" if event else ""
            await resp.write(f"{head}data: {text}\n\n".encode())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if self.comments:
            await resp.write(b": keep-alive\n\n")
        await send(chunk({"role": "assistant", "content": ""}))
        for i, token in enumerate(tokens):
            if i == self.fault_after and fault in ("error_mid_stream", "error_event", "drop"):
                return await self._fail(request, resp, send, fault), fault
            if self.delay:
                await asyncio.sleep(self.delay)
            await send(chunk({"content": token}))
            if self.comments:
                await resp.write(b":\n\n")
        if call is not None:
            await send(chunk({"tool_calls": [_tool_call(ident, call, index=0)]}))
        await send(chunk({}, "stop" if call is None else "tool_calls"))
        if include_usage:
            n = len(tokens)
            usage = {"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n}
            await send({**chunk({}), "choices": [], "usage": usage})
        if fault != "no_done":
            await send("[DONE]")
        await resp.write_eof()
        return resp, fault or "done"

    async def _fail(
        self, request: web.Request, resp: web.StreamResponse, send: Any, fault: Fault
    ) -> web.StreamResponse:
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            return resp
        error = {"message": "The model crashed mid-answer.", "type": "server_error", "code": 500}
        if fault == "error_event":
            await send({"error": error}, event="error")
        else:
            await send({"error": error})
        await resp.write_eof()
        return resp

    def _completion(self, ident: str, text: str, call: ToolCall | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if call is not None:
            message["content"] = text or None
            message["tool_calls"] = [_tool_call(ident, call)]
        return {
            "id": ident,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "stop" if call is None else "tool_calls",
                }
            ],
        }


def _tokens(answer: str | Sequence[str] | ToolCall) -> list[str]:
    if isinstance(answer, ToolCall):
        return tokenize(answer.text)
    return tokenize(answer) if isinstance(answer, str) else list(answer)


def _tool_call(ident: str, call: ToolCall, **extra: int) -> dict[str, Any]:
    arguments = json.dumps(dict(call.arguments), ensure_ascii=False)
    return {**extra, "id": f"call_{ident}", "type": "function",
            "function": {"name": call.name, "arguments": arguments}}


def _error(status: int, message: str, code: str) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    async with FakeLLM(delay=args.delay, host=args.host, port=args.port, fault=args.fault) as llm:
        print(f"fake OpenAI-compatible server on {llm.base_url} (Ctrl-C to stop)", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake server from the command line."""
    parser = argparse.ArgumentParser(prog="python -m yunhu_stream.fake_llm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per token")
    parser.add_argument("--fault", choices=sorted(FAULTS), default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
