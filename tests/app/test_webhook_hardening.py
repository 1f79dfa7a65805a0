"""The webhook under pressure: a flood of events, slow peers, huge ids, a SIGTERM.

Every test talks to a real BotApp on loopback (in this process, or in a child process
where signals and file-descriptor limits are the subject), replying into the emulator.
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import socket
import sys
import textwrap
import tracemalloc
from typing import Any

import aiohttp
import anyio
import pytest

from tests.app._webhook import StartApp, post
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import BotApp, Dispatcher
from yunhu_stream.emulator import Emulator
from yunhu_stream.events import MessageEvent, parse_event
from yunhu_stream.testing import message_event

pytestmark = pytest.mark.anyio

GROUP = Recipient.group("g1")


def event_body(text: str, **options: Any) -> bytes:
    return json.dumps(message_event(text, chat="group:g1", **options)).encode()


class TestHandlerCap:
    async def test_past_max_handlers_events_get_503_and_a_redelivery_runs(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        release = asyncio.Event()

        def register(app: BotApp) -> None:
            @app.on_message()
            async def slow(event: MessageEvent, bot: Bot) -> None:
                await release.wait()
                await bot.send(event, "done " + event.text)

        app, url = await start_app(register, max_handlers=2)
        answers = [await post(client, url, event_body(f"e{i}", event_id=f"id-{i}"))
                   for i in range(3)]
        assert [status for status, _ in answers] == [200, 200, 503]
        async with client.post(url, data=event_body("e2", event_id="id-2")) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert app.stats.busy == 2 and app.stats.running == 2
        release.set()
        await emulator.wait_until(lambda: app.stats.running == 0, what="handlers done")
        status, answer = await post(client, url, event_body("e2", event_id="id-2"))
        assert (status, answer["status"]) == (200, "accepted")  # not taken for a duplicate
        await emulator.wait_for_message(GROUP, predicate=lambda m: m.text == "done e2")


class TestDedupMemory:
    async def test_huge_event_ids_cost_a_fixed_digest_each(self, emulator: Emulator) -> None:
        dp = Dispatcher(dedup_size=4096)

        @dp.on_message()
        async def nothing(event: MessageEvent, bot: Bot) -> None:
            pass

        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            big = "x" * (512 * 1024)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(300):
                event = parse_event(event_body("hi", event_id=f"{i}-{big}"))
                assert dp.dispatch(event, bot) == "accepted"
                assert dp.dispatch(event, bot) == "duplicate"
                del event
                await asyncio.sleep(0)  # the handler runs and ends
            await dp.aclose()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
        assert grown < 2 * 1024 * 1024  # 300 ids of 512 KiB would be 150 MiB


class TestShutdown:
    async def test_a_reply_still_being_written_is_finished_with_what_it_has(
        self, emulator: Emulator, client: aiohttp.ClientSession
    ) -> None:
        app = BotApp(emulator.token, base_url=emulator.base_url, shutdown_timeout=1.0)
        wrote = asyncio.Event()

        @app.on_message()
        async def endless(event: MessageEvent, bot: Bot) -> None:
            async with bot.stream(to=event) as s:
                await s.write("the part written before the shutdown")
                wrote.set()
                while True:  # a model that never ends
                    await asyncio.sleep(0.05)

        url = await app.start()
        status, _ = await post(client, url, event_body("go"))
        assert status == 200
        await wrote.wait()
        await app.aclose()
        [reply] = emulator.chat(GROUP)
        assert reply.text == "the part written before the shutdown"
        assert emulator.streams[-1].done and not emulator.streams[-1].aborted


SLOW_PEERS = 1_100


class TestSlowPeers:
    async def test_slow_connections_do_not_keep_a_webhook_out(
        self, emulator: Emulator, client: aiohttp.ClientSession
    ) -> None:
        """With the usual 1,024 descriptors, 1,100 connections trickling their headers
        or bodies do not stop a real event from being answered."""
        script = textwrap.dedent(f"""
            import asyncio, resource, sys
            from yunhu_stream.app import BotApp
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(
                resource.RLIMIT_NOFILE)[1]))
            app = BotApp({emulator.token!r}, base_url={emulator.base_url!r})
            @app.on_message()
            async def echo(event, bot):
                await bot.send(event, "echo: " + event.text)
            async def main():
                print(await app.start(), flush=True)
                await asyncio.Event().wait()
            asyncio.run(main())
        """)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
        peers: list[socket.socket] = []
        try:
            assert proc.stdout is not None
            url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            loop = asyncio.get_running_loop()
            for i in range(SLOW_PEERS):
                sock = socket.socket()
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, ("127.0.0.1", port))
                    head = b"POST /yunhu HTTP/1.1\r\nHost: x\r\n"
                    if i % 2:  # a whole head, then a body that never comes
                        head += b"Content-Type: application/json\r\nContent-Length: 9999\r\n\r\n{"
                    await loop.sock_sendall(sock, head)
                except OSError:
                    pass  # refused or reset: the server made room, as it should
                peers.append(sock)
            with anyio.fail_after(10):  # a hang-guard, not a speed claim (see the issue note)
                started = loop.time()
                status, answer = await post(client, url, event_body("still there?"))
                answered_in = loop.time() - started
            assert status == 200 and answer["status"] == "accepted", answer
            reply = await emulator.wait_for_message(GROUP)
            assert reply.text == "echo: still there?"
            print(f"webhook answered in {answered_in * 1000:.0f} ms beside {SLOW_PEERS} slow peers")
        finally:
            for sock in peers:
                sock.close()
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


FLOOD = 600


class TestSigtermUnderLoad:
    async def test_no_acknowledged_event_loses_its_reply(
        self, emulator: Emulator
    ) -> None:
        """600 events that each stream a reply, a SIGTERM 3 s later: every event answered
        200 'accepted' gets its reply, delivered (not cut off); the rest were refused
        (503), so YunHu would deliver them again."""
        script = textwrap.dedent(f"""
            import asyncio, logging, sys
            from yunhu_stream.app import BotApp
            logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
            app = BotApp({emulator.token!r}, base_url={emulator.base_url!r})
            @app.on_message()
            async def reply(event, bot):
                async with bot.stream(to=event) as s:
                    await s.write("reply to " + event.text + ":")
                    for word in ["one", "two", "three", "four", "five"]:
                        await asyncio.sleep(0.1)
                        await s.write(" " + word)
            app.run(host="127.0.0.1", port=0)
        """)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the bot exited before serving"
            if line.startswith("webhook_serving"):
                url = line.split("url=", 1)[1].strip()
        outcomes: dict[str, str] = {}

        async def deliver(http: aiohttp.ClientSession, i: int) -> None:
            try:
                async with http.post(url, data=event_body(f"e{i}")) as resp:
                    answer = await resp.json()
                    outcomes[f"e{i}"] = answer.get("status", str(resp.status))
            except aiohttp.ClientError:
                outcomes[f"e{i}"] = "connection lost"

        async with aiohttp.ClientSession() as http:
            posting = asyncio.gather(*(deliver(http, i) for i in range(FLOOD)))
            await asyncio.sleep(3)
            proc.send_signal(signal.SIGTERM)
            await posting
            output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()[-2000:]
        accepted = {text for text, outcome in outcomes.items() if outcome == "accepted"}
        assert accepted and len(outcomes) == FLOOD
        assert set(outcomes.values()) <= {"accepted", "503", "connection lost"}
        replies = {m.text.split(":", 1)[0].removeprefix("reply to ")
                   for m in emulator.chat(GROUP)}
        assert accepted - replies == set()  # none acknowledged and lost
        assert not [r for r in emulator.streams if r.aborted]
        print(f"{len(accepted)} accepted and replied, "
              f"{sum(o == '503' for o in outcomes.values())} refused with 503")
