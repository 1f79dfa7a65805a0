"""An LLM bot: each message gets a streamed model answer in YunHu and, live, on a web page.

One model stream is split with ``tee``: one reader pipes it into the chat
message, the other records it for the page at ``/answers/<msgId>``, which
shows the answer growing through the browser's own ``EventSource``.

Run it for real (any OpenAI-compatible API; point the bot's webhook at ``/yunhu``)::

    YUNHU_TOKEN=... OPENAI_BASE_URL=https://api.deepseek.com/v1 OPENAI_API_KEY=sk-... \\
    OPENAI_MODEL=deepseek-chat python examples/llm_bot.py --port 8080

Without ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` it starts the bundled fake model on
loopback, so it runs offline. ``--demo`` does everything in one process: the YunHu
emulator, the fake model (or yours, if configured), the bot; it posts one webhook
event, prints the answer as the web page receives it, then the chat message::

    python examples/llm_bot.py --demo
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import json
import logging
import os
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from yunhu_stream import Bot
from yunhu_stream.app import setup
from yunhu_stream.events import MessageEvent
from yunhu_stream.fake_llm import FakeLLM
from yunhu_stream.llm import LLMError, openai_chat_deltas
from yunhu_stream.sse import SSEParser, TeeIterator, sse_response, tee

log = logging.getLogger("llm_bot")

SYSTEM_PROMPT = "You are a helpful assistant in a YunHu chat. Answer briefly, in Markdown."
KEEP_ANSWERS = 100  # the page keeps this many recent answers in memory


@dataclass
class LLMConfig:
    """Where answers come from: an OpenAI-compatible endpoint."""

    base_url: str
    api_key: str | None
    model: str

    @classmethod
    def from_env(cls) -> LLMConfig | None:
        """The endpoint from $OPENAI_BASE_URL / $OPENAI_API_KEY / $OPENAI_MODEL, if set."""
        base_url, api_key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
        if not base_url and not api_key:
            return None
        return cls(
            base_url=base_url or "https://api.openai.com/v1",
            api_key=api_key or None,
            model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        )


def fake_answer(messages: list[dict[str, Any]]) -> str:
    question = str(messages[-1].get("content", ""))
    return (
        f"你问的是：「{question}」。\n\n"
        "这是离线的假模型在回答：每个词都作为一个事件流出，"
        "同一个回答既流进云湖消息，也实时显示在网页上。\n\n"
        "Set `OPENAI_BASE_URL` and `OPENAI_API_KEY` to use a real model."
    )


@dataclass
class Answer:
    """One answer as the web page sees it: the text so far, and whether it ended."""

    id: str
    question: str
    parts: list[str] = field(default_factory=list)
    done: bool = False
    error: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class Answers:
    """Recent answers, recorded from one tee reader and followed by any number of pages."""

    def __init__(self) -> None:
        self._items: collections.OrderedDict[str, Answer] = collections.OrderedDict()
        self._added = asyncio.Event()

    def new(self, answer_id: str, question: str) -> Answer:
        answer = self._items[answer_id] = Answer(answer_id, question)
        while len(self._items) > KEEP_ANSWERS:
            self._items.popitem(last=False)
        self._added.set()
        self._added = asyncio.Event()
        return answer

    def latest(self) -> Answer | None:
        return next(reversed(self._items.values()), None)

    async def wait_for(self, answer_id: str, timeout: float) -> Answer | None:
        """The answer, waiting a little for one whose webhook is still being handled."""
        deadline = time.monotonic() + timeout
        while answer_id not in self._items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._added.wait(), remaining)
            except asyncio.TimeoutError:
                return None
        return self._items[answer_id]

    @staticmethod
    async def record(answer: Answer, deltas: AsyncGenerator[str, None] | TeeIterator[str]) -> None:
        """Read one tee consumer to the end; a model error is stored, not raised."""
        try:
            async with aclosing(deltas):
                async for delta in deltas:
                    answer.parts.append(delta)
                    answer.poke()
        except LLMError as exc:
            answer.error = type(exc).__name__
        finally:
            answer.done = True
            answer.poke()

    @staticmethod
    async def follow(answer: Answer) -> AsyncIterator[str]:
        """The text so far as one piece, then each new piece as it is recorded."""
        sent = 0
        while True:
            changed = answer.changed
            if sent < len(answer.parts):
                yield "".join(answer.parts[sent:])
                sent = len(answer.parts)
                continue
            if answer.done:
                if answer.error:
                    raise RuntimeError(f"the model failed: {answer.error}")
                return
            await changed.wait()


ANSWERS: web.AppKey[Answers] = web.AppKey("answers", Answers)
LLM: web.AppKey[LLMConfig] = web.AppKey("llm", LLMConfig)

PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>LLM bot: live answer</title>
<style>body{{font:16px/1.5 sans-serif;max-width:48em;margin:2em auto;padding:0 1em}}
pre{{white-space:pre-wrap;background:#f6f6f6;padding:1em;border-radius:6px;min-height:3em}}
#status{{color:#666}}</style></head>
<body><h1>Live answer</h1><p><b>Question:</b> {question}</p>
<p id="status">connecting…</p><pre id="answer"></pre>
<script>
const out = document.getElementById("answer"), status = document.getElementById("status");
const es = new EventSource({events_url});
es.addEventListener("delta", (e) => {{ out.textContent += JSON.parse(e.data);
  status.textContent = "streaming…"; }});
es.addEventListener("done", () => {{ status.textContent = "done"; es.close(); }});
es.addEventListener("error", (e) => {{ status.textContent = e.data ? "the model failed"
  : "connection lost"; es.close(); }});
</script></body></html>
"""


async def answer_page(request: web.Request) -> web.Response:
    answer_id = request.match_info.get("answer_id")
    answers = request.app[ANSWERS]
    answer = answers.latest() if answer_id is None else await answers.wait_for(answer_id, 10.0)
    if answer is None:
        return web.Response(text="No answer yet: send the bot a message.", status=404)
    # The id comes from an untrusted webhook body: quote it for the URL, and keep
    # "</" out of the script element.
    events_url = json.dumps(f"/answers/{quote(answer.id, safe='')}/events").replace("</", "<\\/")
    body = PAGE.format(question=html.escape(answer.question), events_url=events_url)
    return web.Response(text=body, content_type="text/html")


async def answer_events(request: web.Request) -> web.StreamResponse:
    answer = await request.app[ANSWERS].wait_for(request.match_info["answer_id"], 10.0)
    if answer is None:
        raise web.HTTPNotFound(text="no such answer")
    return await sse_response(request, Answers.follow(answer), raise_errors=False)


def build_app(
    token: str | None = None,
    base_url: str | None = None,
    llm: LLMConfig | None = None,
    *,
    fake_delay: float = 0.03,
) -> web.Application:
    """The bot: webhook at ``POST /yunhu``, pages at ``/`` and ``/answers/<msgId>``.

    ``llm`` defaults to the environment's endpoint, else the fake model, which
    waits ``fake_delay`` seconds per token.
    """
    app = web.Application()
    app[ANSWERS] = Answers()
    app.router.add_get("/", answer_page)
    app.router.add_get("/answers/{answer_id}", answer_page)
    app.router.add_get("/answers/{answer_id}/events", answer_events)
    app.cleanup_ctx.append(_model(llm, fake_delay))
    dp = setup(app, token, base_url=base_url, path="/yunhu")

    @dp.on_message(content_type="text")
    async def reply(event: MessageEvent, bot: Bot) -> None:
        answer = app[ANSWERS].new(event.message.msg_id, event.text)
        model = app[LLM]
        deltas = openai_chat_deltas(
            base_url=model.base_url,
            api_key=model.api_key,
            model=model.model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": event.text},
            ],
        )
        to_chat, to_page = tee(deltas, 2, max_buffer=256)
        recorder = asyncio.create_task(Answers.record(answer, to_page))
        try:
            async with bot.stream(to=event, content_type="markdown") as s, to_chat:
                try:
                    result = await s.pipe(to_chat)
                except LLMError:
                    await s.close()  # keep what the model said before it failed
                    raise
            log.info("answered %s: %d deltas, %d chars", answer.id, result.writes, result.chars)
        except LLMError as exc:
            log.warning("model failed msg_id=%s error=%s", answer.id, type(exc).__name__)
        finally:
            await recorder

    return app


def _model(
    llm: LLMConfig | None, fake_delay: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: the configured endpoint, or the fake model for the app's lifetime."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        config = llm or LLMConfig.from_env()
        if config is not None:
            app[LLM] = config
            yield
            return
        async with FakeLLM(fake_answer, delay=fake_delay) as fake:
            app[LLM] = LLMConfig(base_url=fake.base_url, api_key=None, model=fake.model)
            log.info("using the fake model at %s", fake.base_url)
            yield

    return context


SAMPLE_EVENT: dict[str, Any] = {
    "version": "1.0",
    "header": {"eventId": "demo-llm-1", "eventType": "message.receive.normal", "eventTime": 0},
    "event": {
        "sender": {
            "senderId": "7756242",
            "senderType": "user",
            "senderUserLevel": "member",
            "senderNickname": "小明",
        },
        "chat": {"chatId": "37090343", "chatType": "group"},
        "message": {
            "msgId": "demo-llm-msg-1",
            "parentId": "",
            "sendTime": 0,
            "chatId": "37090343",
            "chatType": "group",
            "contentType": "text",
            "content": {"text": "流式输出是什么？"},
            "commandId": 0,
            "commandName": "",
        },
    },
}


@dataclass
class DemoResult:
    """What ``--demo`` saw: the answer on the web page and in the chat."""

    page_text: str
    page_events: list[str]
    chat_text: str
    page_url: str


async def demo(
    out: Any = sys.stdout, llm: LLMConfig | None = None, *, fake_delay: float = 0.03
) -> DemoResult:
    """Run the bot against the emulator, post one event, follow the answer, return it."""
    from yunhu_stream.emulator import Emulator

    async with Emulator() as emu:
        app = build_app(emu.token, emu.base_url, llm, fake_delay=fake_delay)
        runner = web.AppRunner(app, shutdown_timeout=5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            msg_id = SAMPLE_EVENT["event"]["message"]["msgId"]
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/yunhu", json=SAMPLE_EVENT) as resp:
                    print(f"POST /yunhu -> {resp.status}", file=out)
                print(f"web page: {base}/answers/{msg_id}\nlive on the page: ", end="", file=out)
                events, pieces = await _follow_page(http, f"{base}/answers/{msg_id}/events", out)
        finally:
            await runner.cleanup()  # waits for the handler to finish, then closes the Bot
        chat = emu.chat("group", "37090343")
        text = chat[-1].text if chat else ""
        chunks = sum(len(stream.chunks) for stream in emu.streams)
        print(f"\nin the YunHu chat ({chunks} chunks): {text!r}", file=out)
        return DemoResult("".join(pieces), events, text, f"{base}/answers/{msg_id}")


async def _follow_page(
    http: aiohttp.ClientSession, url: str, out: Any
) -> tuple[list[str], list[str]]:
    """Read the page's event stream as a browser would; print deltas as they come."""
    parser, events, pieces = SSEParser(), [], []
    async with http.get(url) as resp:
        async for chunk in resp.content.iter_any():
            for event in parser.feed(chunk):
                events.append(event.event)
                if event.event == "delta":
                    pieces.append(json.loads(event.data))
                    print(pieces[-1], end="", flush=True, file=out)
    return events, pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run once, offline, and exit")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.demo:
        asyncio.run(demo())
    else:
        logging.basicConfig(level=logging.INFO)  # a deployment wants the library's events
        web.run_app(build_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
