"""Bugs found in review of the core (Streamer, Delivery, Bot, _http), each shown by a test.

Every test states what must hold; each was first committed failing (as a strict xfail)
and passes since the fix. They run against the real emulator on loopback; two put a small
real aiohttp server in front of it (a gateway that cuts a request mid-body, an error page
that echoes the URL), behaviours of things between us and YunHu the emulator does not model.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._support import serving
from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PIECES = [f"第{i}段 chunk {i} 😀\n" for i in range(6)]
TRANSCRIPT = "".join(PIECES)


def make_bot(emu: Emulator, base_url: str | None = None, **kw: object) -> Bot:
    options: dict[str, object] = {
        "base_url": base_url or emu.base_url, "response_timeout": 5.0, "edit_interval": 0.02,
        "retry_max_wait": 5.0, "rate_limit": None,
    }
    options.update(kw)
    return Bot(emu.token, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on loopback; yield its ``/open-apis/v1`` base URL."""
    async with serving(app) as base:
        yield f"{base}/open-apis/v1"


class TestRecoveryLookup:
    async def test_earlier_reply_that_is_a_prefix_is_not_overwritten(
        self, emulator: Emulator
    ) -> None:
        """Recovering a stream never edits an earlier, finished reply of the same bot."""
        async with make_bot(emulator) as bot:
            async with bot.stream(to="group:42") as first:
                await first.write("好的")
            emulator.faults.drop_after(0)  # nothing of the second reply reaches the chat
            async with bot.stream(to="group:42") as second:
                await second.write("好的，")
                await second.write("这是第二个回答。")
        texts = [m.text for m in emulator.chat("group", "42")]
        assert texts == ["好的", "好的，这是第二个回答。"]


class TestConcurrentEnding:
    async def test_abort_from_another_task_does_not_cancel_the_closer(
        self, emulator: Emulator
    ) -> None:
        """A close() interrupted by abort() from another task ends without a CancelledError."""
        hold = emulator.faults.never_answer()
        async with make_bot(emulator, response_timeout=30.0) as bot:
            s = bot.stream(to="user:1")
            await s.write("hello")
            closer = asyncio.create_task(s.close())
            record = await emulator.wait_for_stream()
            await hold.wait_hit()
            await emulator.wait_until(lambda: record.completed)  # closer awaits the answer
            await s.abort()
            (outcome,) = await asyncio.gather(closer, return_exceptions=True)
        assert not closer.cancelled()
        assert isinstance(outcome, errors.StreamClosedError), outcome


    async def test_cancelling_one_closer_does_not_cancel_another(
        self, emulator: Emulator
    ) -> None:
        """When one of two close() callers is cancelled, the other is not cancelled."""
        hold = emulator.faults.never_answer()
        async with make_bot(emulator, response_timeout=30.0) as bot:
            s = bot.stream(to="user:1")
            await s.write("hello")
            first = asyncio.create_task(s.close())
            second = asyncio.create_task(s.close())
            record = await emulator.wait_for_stream()
            await hold.wait_hit()
            await emulator.wait_until(lambda: record.completed)
            first.cancel()
            outcomes = await asyncio.gather(first, second, return_exceptions=True)
        assert first.cancelled()
        assert not second.cancelled(), outcomes


class Gateway:
    """A pass-through reverse proxy in front of the emulator, as a load balancer would be.

    When armed, it forwards the first ``cut_after`` bytes of the next send-stream body to
    the emulator, then drops that upstream request and answers the client ``502`` while
    the client is still sending: a gateway timing out a long request body.
    """

    def __init__(self, emu: Emulator, cut_after: int) -> None:
        self.emu = emu
        self.cut_after = cut_after
        self.armed = True
        self.cut = asyncio.Event()
        self.after_cut = asyncio.Event()  # the client sent a new request after the 502
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        if self.cut.is_set():
            self.after_cut.set()
        url = self.emu.url.rstrip("/") + request.path_qs
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        if request.path.endswith("/bot/send-stream") and self.armed:
            self.armed = False
            return await self._cut(request, url, headers)
        data: object = (
            request.content.iter_any() if request.path.endswith("/bot/send-stream")
            else await request.read()
        )
        async with self.session.request(
            request.method, url, data=data, headers=headers
        ) as upstream:
            body = await upstream.read()
            return web.Response(status=upstream.status, body=body,
                                content_type=upstream.content_type)

    async def _cut(self, request: web.Request, url: str, headers: dict[str, str]) -> web.Response:
        assert self.session is not None
        forwarded = asyncio.Event()
        n = len(self.emu.streams) + 1

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            async for data in request.content.iter_any():
                yield data
                sent += len(data)
                if sent >= self.cut_after:
                    forwarded.set()
                    await asyncio.Event().wait()  # hold the upstream body open until cut

        async def post() -> None:
            async with self.session.post(url, data=body(), headers=headers) as r:  # type: ignore[union-attr]
                await r.read()

        upstream = asyncio.create_task(post())
        await forwarded.wait()
        record = await self.emu.wait_for_stream(n)
        await record.wait_for_bytes(self.cut_after)
        upstream.cancel()
        await asyncio.gather(upstream, return_exceptions=True)
        await record.wait_done()
        self.cut.set()
        return web.Response(status=502, text="upstream timed out")

    async def __aenter__(self) -> str:
        self.session = aiohttp.ClientSession()
        self._serve = serve(self.app)
        return await self._serve.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._serve.__aexit__(None, None, None)
        assert self.session is not None
        await self.session.close()


class TestClassification:
    async def test_5xx_mid_body_after_text_was_shown_does_not_duplicate(
        self, emulator: Emulator
    ) -> None:
        """A 502 that arrives mid-body after part of the text was shown leaves one message."""
        first = PIECES[0].encode()
        gateway = Gateway(emulator, cut_after=len(first))
        async with (
            gateway as base_url,
            make_bot(emulator, base_url=base_url) as bot,
            bot.stream(to="group:42") as s,
        ):
                await s.write(PIECES[0])
                # The chat shows PIECES[0]; wait until the client reacted to the 502 (a
                # retry or a lookup), so the answer surely came before the body ended.
                await gateway.after_cut.wait()
                for piece in PIECES[1:]:
                    await s.write(piece)
        texts = [m.text for m in emulator.chat("group", "42")]
        assert texts == [TRANSCRIPT]


    async def test_1007_after_the_body_does_not_duplicate(self, emulator: Emulator) -> None:
        """A 1007 answered after the message took effect does not lead to a second copy."""
        emulator.faults.reject(1007, when="after_body")
        async with make_bot(emulator) as bot, bot.stream(to="group:42") as s:
            for piece in PIECES:
                await s.write(piece)
        texts = [m.text for m in emulator.chat("group", "42")]
        assert texts == [TRANSCRIPT]


class TestSecrets:
    async def test_error_page_echoing_the_url_does_not_leak_the_token(self) -> None:
        """An error page that echoes the request URL does not put the token in errors or logs."""
        token = "tok-" + secrets.token_hex(16)

        async def not_found(request: web.Request) -> web.Response:
            # Many servers' error pages echo the request line (proxies, debug pages, WAFs).
            return web.Response(status=404, text=f"Not Found: {request.method} {request.path_qs}")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", not_found)
        seen: list[str] = []
        with capture_logs() as logs:
            async with serve(app) as base_url, Bot(token, base_url=base_url,
                                                   rate_limit=None) as bot:
                with pytest.raises(errors.HTTPStatusError) as sent:
                    await bot.send("user:1", "hi")
                s = bot.stream(to="user:1")
                await s.write("hello")
                with pytest.raises(errors.HTTPStatusError) as streamed:
                    await s.close()
        for exc in (sent.value, streamed.value):
            seen += [str(exc), repr(exc), exc.body]
        seen += [repr(event) for event in logs]
        assert "Not Found" in sent.value.body  # the page really was echoed
        assert [item for item in seen if token in item] == []


class TestIdleTimeout:
    async def test_idle_timeout_ends_a_quote_fallback_reply(self, emulator: Emulator) -> None:
        """With quote='fallback', a reply left without writes for idle_timeout is still sent."""
        async with make_bot(emulator, idle_timeout=0.05) as bot:
            s = bot.stream(to="user:1", reply_to="m-1", quote="fallback")
            await s.write("partial answer, then the producer hangs")
            # Fails with TimeoutError while idle_timeout is ignored on this path.
            await emulator.wait_for_requests(1, endpoint="send", timeout=1.5)
            with pytest.raises(errors.StreamClosedError, match="idle_timeout"):
                await s.write("too late")
            await s.close()
        (msg,) = emulator.chat("user", "1")
        assert msg.parent_id == "m-1"


    async def test_idle_timeout_ends_a_recovered_stream(self, emulator: Emulator) -> None:
        """After a mid-stream recovery, idle_timeout still ends the message with its final edit."""
        buttons = [[{"text": "Again", "actionType": 3, "value": "again"}]]
        emulator.faults.drop_after(4)
        async with make_bot(emulator, idle_timeout=0.05) as bot:
            s = bot.stream(to="user:1", buttons=buttons)
            await s.write(PIECES[0])
            # Buttons come only with the final edit, so they show the message was ended.
            await emulator.wait_until(
                lambda: any(m.buttons for m in emulator.chat("user", "1")), timeout=1.5,
                what="the final edit with buttons",
            )
            with pytest.raises(errors.StreamClosedError, match="idle_timeout"):
                await s.write("too late")
            await s.close()
        assert [m.text for m in emulator.chat("user", "1")] == [PIECES[0]]
