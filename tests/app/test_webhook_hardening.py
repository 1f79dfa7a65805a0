"""The webhook server under hostile peers and load (issue 12, findings 3 and 5).

Real sockets on loopback against a real BotApp answering through the emulator: slow
connections (slowloris), a full handler pool, shutdown with replies still streaming,
and a dedup cache fed very long event ids.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest

from tests._paths import FIXTURES, ROOT
from tests._support import free_port
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import BotApp, Dispatcher
from yunhu_stream.emulator import Emulator, StoredMessage
from yunhu_stream.errors import ConfigurationError, StreamClosedError
from yunhu_stream.events import MessageEvent, parse_event

pytestmark = pytest.mark.anyio

GROUP = Recipient.group("307149245")


def event_body(event_id: str, text: str = "早上好", chat_id: str = "307149245") -> bytes:
    data: dict[str, Any] = json.loads((FIXTURES / "message_group_text.json").read_bytes())
    data["header"]["eventId"] = event_id
    data["event"]["message"]["content"]["text"] = text
    data["event"]["chat"]["chatId"] = chat_id
    return json.dumps(data).encode()


def done(message: StoredMessage) -> bool:
    return not message.streaming


class SlowClient:
    """One connection that trickles its request a byte at a time, and notices when the
    server closes it."""

    def __init__(self, host: str, port: int, path: str, in_body: bool) -> None:
        self.host, self.port, self.path, self.in_body = host, port, path, in_body
        self.closed_by_server = asyncio.Event()
        self.answer = b""
        self.writer: asyncio.StreamWriter | None = None

    async def start(self, tasks: set[asyncio.Task[None]]) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.writer = writer
        if self.in_body:
            head = (f"POST {self.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    "\r\nContent-Length: 100000\r\n\r\n{")
        else:
            head = f"POST {self.path} HTTP/1.1\r\nHost: x\r\nX-Slow: "
        writer.write(head.encode())
        for job in (self._watch(reader), self._trickle(writer)):
            task = asyncio.create_task(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        try:
            while chunk := await reader.read(4096):
                self.answer += chunk
        except OSError:
            pass
        self.closed_by_server.set()

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        try:
            while not self.closed_by_server.is_set():
                await asyncio.sleep(1)
                writer.write(b"a")
                await writer.drain()
        except OSError:
            pass

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@pytest.fixture
async def slow_clients() -> AsyncIterator[Callable[..., Any]]:
    clients: list[SlowClient] = []
    tasks: set[asyncio.Task[None]] = set()

    async def open_many(url: str, count: int) -> list[SlowClient]:
        host_port, path = url.split("/", 3)[2], "/" + url.split("/", 3)[3]
        host, port = host_port.rsplit(":", 1)
        made = [SlowClient(host, int(port), path, in_body=i % 2 == 1) for i in range(count)]
        for i in range(0, count, 100):  # connect in batches: the listen backlog is finite
            await asyncio.gather(*(c.start(tasks) for c in made[i:i + 100]))
        clients.extend(made)
        return made

    yield open_many
    for client in clients:
        client.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def echo(app: BotApp) -> None:
    @app.on_message()
    async def reply(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(to=event) as s:
            await s.write(f"echo: {event.text}")


async def finished_messages(emulator: Emulator, n: int) -> list[StoredMessage]:
    def check() -> list[StoredMessage] | None:
        chat = emulator.chat(GROUP)
        return chat if len(chat) >= n and all(map(done, chat)) else None

    return await emulator.wait_until(check, what=f"{n} finished messages")


async def post(url: str, data: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    with anyio.fail_after(30):  # a hang guard, not a speed claim
        async with aiohttp.ClientSession() as client, client.post(url, data=data) as resp:
            return resp.status, dict(resp.headers), await resp.json()


class TestSlowloris:
    async def test_slow_connections_beyond_the_cap_do_not_lock_out_a_real_event(
        self, emulator: Emulator, slow_clients: Callable[..., Any]
    ) -> None:
        """The issue's attack: 1,100 connections trickling a byte a second, half inside
        their headers, half inside a declared body, against the default settings but
        timeouts long enough that only the connection cap can help. A real webhook
        still gets its 200 and its reply while they keep trickling."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        count = min(1100, (soft - 300) // 2)  # each connection costs two fds here
        if count < 600:
            pytest.skip(f"needs ~2,500 file descriptors, the limit is {soft}")
        app = BotApp(emulator.token, base_url=emulator.base_url,
                     header_timeout=600, body_timeout=600)
        echo(app)
        cap = app.guard.max_connections
        assert cap == 512  # the default, below the usual 1,024 descriptors
        url = await app.start()
        try:
            clients = await slow_clients(url, count)
            assert app.guard.open_connections <= cap
            status, _, answer = await post(url, event_body("real-1", "still here?"))
            assert (status, answer["status"]) == (200, "accepted")
            reply = await emulator.wait_for_message(GROUP, predicate=done)
            assert reply.text == "echo: still here?"
            assert app.guard.open_connections <= cap
            closed = sum(c.closed_by_server.is_set() for c in clients)
            assert closed >= count - cap  # the oldest slow ones made room
            assert closed < count  # and the rest are still trickling: they did not time out
            assert app.guard.evicted >= count - cap
        finally:
            await app.stop()

    async def test_slow_headers_and_slow_bodies_are_closed_by_their_timeouts(
        self, emulator: Emulator, slow_clients: Callable[..., Any]
    ) -> None:
        app = BotApp(emulator.token, base_url=emulator.base_url,
                     header_timeout=0.5, body_timeout=0.5)
        echo(app)
        url = await app.start()
        try:
            clients = await slow_clients(url, 20)
            with anyio.fail_after(30):
                for client in clients:
                    await client.closed_by_server.wait()
            bodies = [c for c in clients if c.in_body]
            for client in bodies:  # told why, then closed
                assert client.answer.startswith(b"HTTP/1.1 408 ")
                assert b"body_timeout" in client.answer
            for client in clients:
                if not client.in_body:
                    assert client.answer == b""  # no request ever started
            assert app.guard.timed_out == 10
            assert app.stats.rejected == 10
            status, _, _ = await post(url, event_body("real-2"))
            assert status == 200
        finally:
            await app.stop()

    def test_the_limits_are_checked(self) -> None:
        for option, value in [("header_timeout", 0), ("body_timeout", -1),
                              ("max_connections", 0), ("max_handlers", 0)]:
            with pytest.raises(ConfigurationError, match=option):
                BotApp("token", **{option: value})


class TestBackpressure:
    async def test_a_full_handler_pool_answers_503_and_the_redelivery_runs(
        self, emulator: Emulator
    ) -> None:
        release = asyncio.Event()
        app = BotApp(emulator.token, base_url=emulator.base_url, max_handlers=2)

        @app.on_message()
        async def slow(event: MessageEvent, bot: Bot) -> None:
            await release.wait()
            async with bot.stream(to=event) as s:
                await s.write(f"done {event.event_id}")

        url = await app.start()
        try:
            assert (await post(url, event_body("e1")))[0] == 200
            assert (await post(url, event_body("e2")))[0] == 200
            status, headers, answer = await post(url, event_body("e3"))
            assert status == 503
            assert int(headers["Retry-After"]) > 0
            assert "max_handlers" in answer["error"]
            assert app.stats.busy == 1
            release.set()
            await finished_messages(emulator, 2)
            # YunHu's redelivery of e3 is not taken for a duplicate: it runs now.
            status, _, answer = await post(url, event_body("e3"))
            assert (status, answer["status"]) == (200, "accepted")
            await finished_messages(emulator, 3)
            assert sorted(m.text for m in emulator.chat(GROUP)) == ["done e1", "done e2",
                                                                    "done e3"]
        finally:
            await app.stop()

    async def test_shutdown_finishes_open_replies_with_what_they_have(
        self, emulator: Emulator
    ) -> None:
        """A handler stuck mid-reply at shutdown: its message is closed (finished with
        the text written so far), not cut off, and the counts say so."""
        never = asyncio.Event()
        app = BotApp(emulator.token, base_url=emulator.base_url, shutdown_timeout=2)

        @app.on_message()
        async def stuck(event: MessageEvent, bot: Bot) -> None:
            async with bot.stream(to=event) as s:
                await s.write("first half, ")
                await never.wait()
                await s.write("never written")

        url = await app.start()
        assert (await post(url, event_body("stuck-1")))[0] == 200
        await emulator.wait_for_message(GROUP, predicate=lambda m: m.text == "first half, ")
        await app.stop()
        [message] = emulator.chat(GROUP)
        assert message.text == "first half, "
        assert not message.streaming and not message.incomplete  # closed, not cut off
        assert app.stats.finished_at_shutdown == 1
        assert app.stats.cut_off == 0
        assert app.stats.running == 0

    async def test_a_handler_writing_while_shutdown_closes_its_reply_does_not_cut_it(
        self, emulator: Emulator
    ) -> None:
        """The race behind a CI failure: shutdown's close of a reply is slow (the server
        has stopped reading), the handler wakes meanwhile and writes; that write is refused
        and the handler's block exits with it. The close still finishes the message,
        and the handler counts as stopped at shutdown, not failed."""
        app = BotApp(emulator.token, base_url=emulator.base_url, shutdown_timeout=6,
                     bot_options={"rate_limit": None})
        refused = asyncio.Event()

        @app.on_message()
        async def chatty(event: MessageEvent, bot: Bot) -> None:
            async with bot.stream(to=event) as s:
                await s.write("so far")
                while True:
                    await asyncio.sleep(0.01)
                    try:
                        await s.write(".")
                    except StreamClosedError:
                        refused.set()
                        raise

        # The server stops reading after "so far": the shutdown's close then waits.
        fault = emulator.faults.stall(after_bytes=len("so far"))
        try:
            url = await app.start()
            assert (await post(url, event_body("chatty-1")))[0] == 200
            with anyio.fail_after(30):
                await fault.wait_hit()
            stopping = asyncio.ensure_future(app.stop())
            with anyio.fail_after(30):
                await refused.wait()  # the block leaves while the close waits
            await asyncio.sleep(0.05)  # and has reached its exit
            fault.release()
            with anyio.fail_after(30):
                await stopping
        finally:
            fault.release()
        with anyio.fail_after(30):
            await emulator.streams[-1].wait_done()
        [message] = emulator.chat(GROUP)
        assert message.text.startswith("so far")
        assert not message.streaming and not message.incomplete  # closed, not cut off
        assert (app.stats.finished_at_shutdown, app.stats.cut_off) == (1, 0)
        assert (app.stats.failed, app.stats.cancelled) == (0, 1)


class TestDedupMemory:
    async def test_long_event_ids_cost_a_fixed_digest_each(self, emulator: Emulator) -> None:
        """300 ids of 512 KiB were kept whole (+150 MB); now each costs a 16-byte digest."""
        dp = Dispatcher()
        long_id = "x" * (512 * 1024)
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(300):
                    event = parse_event(event_body(f"{i:04d}{long_id}"))
                    assert dp.dispatch(event, bot) == "unhandled"
                    del event
                gc.collect()
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert kept < 1024 * 1024, f"the dedup cache kept {kept} bytes"
            # The digests still recognise a redelivery of a long id.
            assert dp.dispatch(parse_event(event_body(f"0007{long_id}")), bot) == "duplicate"
            assert dp.dispatch(parse_event(event_body(f"9999{long_id}")), bot) == "unhandled"


APP_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from yunhu_stream.app import BotApp

    token, base_url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = BotApp(token, base_url=base_url, shutdown_timeout=6, max_handlers=200,
                 bot_options={"rate_limit": None})

    @app.on_message()
    async def reply(event, bot):
        async with bot.stream(to=event) as s:
            await s.write(f"reply {event.event_id}:")
            for i in range(40):
                await asyncio.sleep(0.15)
                await s.write(f" w{i}")

    app.run(host="127.0.0.1", port=port)
""")


class TestSigterm:
    async def test_600_events_then_sigterm_lose_no_acknowledged_reply(
        self, emulator: Emulator, tmp_path: Any
    ) -> None:
        """The issue's run: 600 events that each stream a 6 s reply, then SIGTERM while
        they stream. Every event answered 200 ends with a finished reply (whole, or
        closed with what it had), every other one was refused with 503 + Retry-After
        so YunHu delivers it again; none is acknowledged and then dropped."""
        script = tmp_path / "app.py"
        script.write_text(APP_SCRIPT)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        errors = tmp_path / "stderr.txt"
        with errors.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), emulator.token, emulator.base_url, str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )
        try:
            url = f"http://127.0.0.1:{port}/yunhu"
            with anyio.fail_after(30):
                while True:
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.close()
                        break
                    except OSError:
                        assert proc.poll() is None, errors.read_text()
                        await asyncio.sleep(0.05)

            results: dict[str, tuple[int, str | None]] = {}
            connector = aiohttp.TCPConnector(limit=100)
            async with aiohttp.ClientSession(connector=connector) as client:

                async def deliver(i: int) -> None:
                    eid = f"ev{i:03d}"
                    async with client.post(url, data=event_body(eid, chat_id=f"g{i}")) as resp:
                        results[eid] = (resp.status, resp.headers.get("Retry-After"))

                with anyio.fail_after(60):
                    await asyncio.gather(*(deliver(i) for i in range(600)))
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(60):
                while proc.poll() is None:
                    await asyncio.sleep(0.05)
            stderr = errors.read_text()
            assert proc.returncode == 0, stderr
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        acked = [eid for eid, (status, _) in results.items() if status == 200]
        refused = [eid for eid, (status, _) in results.items() if status == 503]
        assert len(acked) + len(refused) == 600
        assert acked and refused  # the pool filled up: both outcomes happened
        assert all(results[eid][1] for eid in refused)  # each 503 says when to retry
        finished_partly = 0
        for eid in acked:
            [message] = emulator.chat(Recipient.group(f"g{int(eid[2:])}"))
            assert message.text.startswith(f"reply {eid}:")
            assert not message.streaming and not message.incomplete, (message.text, stderr)
            finished_partly += not message.text.endswith(" w39")
        for eid in refused:
            assert emulator.chat(Recipient.group(f"g{int(eid[2:])}")) == []
        # SIGTERM came while they streamed: some were closed with what they had.
        assert finished_partly > 0
        assert "replies_cut_off_at_shutdown" not in stderr
