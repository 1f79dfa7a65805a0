"""Fault rules: rejections, HTTP errors, dropped and stalled connections, the rate-limit mode."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.emulator._http import (
    Body,
    expect_disconnect,
    get_messages,
    one_shot,
    open_stream,
    post_json,
    post_stream,
    stream_url,
)
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestRejectFaults:
    async def test_reject_early_answers_before_the_body_ends(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """reject_early answers while the client is still sending, and creates no message."""
        fault = emu.faults.reject_early(code=1007)
        body = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), body))
        body.send("still sending")
        answer = await task  # the body never ended, yet the answer came
        body.end()
        assert answer["code"] == 1007
        assert emu.chat("group", "123") == []
        assert (emu.streams[0].code, emu.streams[0].fault) == (1007, "reject")
        assert (fault.hits, fault.active) == (1, False)

    async def test_rate_limit_first_k_then_success(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """rate_limit(first=2) answers 1007 twice, then the stream goes through; both counted."""
        emu.faults.rate_limit(first=2)
        codes = [(await one_shot(session, emu, f"try {i}"))["code"] for i in range(3)]
        assert codes == [1007, 1007, 1]
        assert emu.rate_limited == 2
        assert [m.text for m in emu.chat("group", "123")] == ["try 2"]

    async def test_reject_after_body_keeps_the_message(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """An after_body rejection is answered after the message took effect."""
        emu.faults.reject(-1, "内部错误", when="after_body")
        answer = await one_shot(session, emu, "shown anyway")
        assert (answer["code"], answer["msg"]) == (-1, "内部错误")
        assert [m.text for m in emu.chat("group", "123")] == ["shown anyway"]

    @pytest.mark.parametrize(("when", "kept"), [("before_body", 0), ("after_body", 1)])
    async def test_http_status(
        self, emu: Emulator, session: aiohttp.ClientSession, when: str, kept: int
    ) -> None:
        """http_status answers that status with a plain body, before or after the body."""
        emu.faults.http_status(503, when=when)  # type: ignore[arg-type]
        body = Body()
        body.send("hello")
        body.end()
        async with session.post(stream_url(emu), data=body) as resp:
            assert resp.status == 503
            assert "503" in await resp.text()
        assert len(emu.chat("group", "123")) == kept
        assert emu.requests[-1].status == 503

    @pytest.mark.parametrize(("when", "kept"), [("before_body", 0), ("after_body", 1)])
    async def test_non_json(
        self, emu: Emulator, session: aiohttp.ClientSession, when: str, kept: int
    ) -> None:
        """non_json answers an HTML page instead of the JSON envelope."""
        emu.faults.non_json(when=when)  # type: ignore[arg-type]
        body = Body()
        body.send("hello")
        body.end()
        async with session.post(stream_url(emu), data=body) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            with pytest.raises(aiohttp.ContentTypeError):
                await resp.json()
        assert len(emu.chat("group", "123")) == kept


class TestConnectionFaults:
    @pytest.mark.parametrize(
        ("n", "body", "shown"),
        [
            (0, b"", None),
            (2, b"ab", "ab"),
            (3, b"ab\xe4", "ab"),  # inside the three bytes of 你
            (5, b"ab\xe4\xbd\xa0", "ab你"),
        ],
    )
    async def test_drop_after_n_bytes_keeps_what_arrived(
        self,
        emu: Emulator,
        session: aiohttp.ClientSession,
        n: int,
        body: bytes,
        shown: str | None,
    ) -> None:
        """drop_after(n) closes the connection after exactly n bytes; the chat keeps them."""
        emu.faults.drop_after(n)
        sender = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), sender))
        sender.send("ab你好")
        await expect_disconnect(task)
        record = await emu.streams[0].wait_done() if emu.streams else None
        assert record is not None
        assert (record.body, record.aborted, record.completed) == (body, True, False)
        messages = emu.chat("group", "123")
        assert [m.text for m in messages] == ([] if shown is None else [shown])
        assert all(m.incomplete for m in messages)

    async def test_drop_after_beyond_body_changes_nothing(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A drop threshold past the end of the body lets the stream succeed."""
        emu.faults.drop_after(1000)
        assert (await one_shot(session, emu, "short"))["code"] == 1

    async def test_never_answer_until_released(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """never_answer takes the whole message, then drops the connection when released."""
        fault = emu.faults.never_answer()
        task = asyncio.create_task(one_shot(session, emu, "complete text"))
        record = await emu.wait_for_stream()
        await emu.wait_until(lambda: record.completed, what="the body to end")
        assert not task.done()
        fault.release()
        await expect_disconnect(task)
        assert (record.completed, record.code, record.status) == (True, None, None)
        [message] = emu.chat("group", "123")
        assert (message.text, message.incomplete) == ("complete text", False)

    async def test_never_answer_ends_when_the_emulator_closes(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Closing the emulator drops a request that was never answered."""
        async with Emulator() as emu:
            emu.faults.never_answer()
            task = asyncio.create_task(one_shot(session, emu, "x"))
            record = await emu.wait_for_stream()
            await emu.wait_until(lambda: record.completed, what="the body to end")
        await expect_disconnect(task)

    async def test_clear_releases_and_disarms(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """faults.clear() releases held requests and no rule applies afterwards."""
        emu.faults.never_answer(times=None)
        task = asyncio.create_task(one_shot(session, emu, "x"))
        record = await emu.wait_for_stream()
        await emu.wait_until(lambda: record.completed, what="the body to end")
        emu.faults.clear()
        await expect_disconnect(task)
        assert emu.faults.rules == []
        assert (await one_shot(session, emu, "y"))["code"] == 1

    async def test_slow_read_still_delivers_everything(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """slow_read pauses between pieces but the whole message arrives."""
        fault = emu.faults.slow_read(0.01)
        body, task, record = await open_stream(session, emu, "a")
        body.send("b")
        await record.wait_for_bytes(2)
        body.end()
        assert (await task)["code"] == 1
        assert (fault.hits, record.fault, record.text) == (1, "slow_read", "ab")

    async def test_stall_holds_reading_until_released(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """stall(after_bytes) reads no further until released, then the stream completes."""
        fault = emu.faults.stall(after_bytes=5)
        body, task, record = await open_stream(session, emu, "hello")
        body.send(" world")
        # A bounded negative check: the stalled server must not take the next piece.
        with pytest.raises(TimeoutError):
            await record.wait_for_bytes(6, timeout=0.2)
        fault.release()
        await record.wait_for_bytes(11)
        body.end()
        assert (await task)["code"] == 1
        assert emu.chat("group", "123")[0].text == "hello world"

    async def test_stall_for_seconds_resumes_by_itself(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """stall(seconds=...) resumes reading on its own."""
        emu.faults.stall(seconds=0.05)
        assert (await one_shot(session, emu, "eventually"))["code"] == 1

    async def test_restart_mid_stream_cuts_it_and_keeps_the_partial_message(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """restart() drops a stream in flight; its message keeps the text so far."""
        emu.faults.stall(after_bytes=4)
        body, task, record = await open_stream(session, emu, "half")
        await emu.restart()
        await expect_disconnect(task)
        body.end()
        assert record.aborted
        assert emu.chat("group", "123")[0].text == "half"
        assert (await one_shot(session, emu, "again"))["code"] == 1

    async def test_close_cuts_a_healthy_stream_in_flight(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Closing the emulator mid-stream cuts it; the record and message say so."""
        emu = await Emulator().start()
        try:
            body, task, record = await open_stream(session, emu, "unfinished")
        finally:
            await emu.close()
        await expect_disconnect(task)
        body.end()
        assert (record.aborted, record.done) == (True, True)
        [message] = emu.chat("group", "123")
        assert (message.text, message.incomplete) == ("unfinished", True)

    async def test_stopped_emulator_refuses_connections(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Between close() and start() the port refuses connections; then it serves again."""
        await emu.close()
        with pytest.raises(aiohttp.ClientConnectorError):
            await one_shot(session, emu, "nobody home")
        await emu.start()
        assert (await one_shot(session, emu, "back"))["code"] == 1


class TestFaultRules:
    async def test_faults_target_their_endpoint(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A fault for bot/send leaves send-stream alone and vice versa."""
        emu.faults.reject(1004, endpoint="send")
        assert (await one_shot(session, emu, "stream ok"))["code"] == 1
        payload = {
            "recvId": "1",
            "recvType": "user",
            "contentType": "text",
            "content": {"text": "x"},
        }
        assert (await post_json(session, emu, "send", payload))["code"] == 1004
        assert (await post_json(session, emu, "send", payload))["code"] == 1

    async def test_never_answer_on_send_after_it_took_effect(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """never_answer on bot/send creates the message, then drops the connection."""
        fault = emu.faults.never_answer(endpoint="send")
        payload = {
            "recvId": "1",
            "recvType": "user",
            "contentType": "text",
            "content": {"text": "did it arrive?"},
        }
        task = asyncio.create_task(post_json(session, emu, "send", payload))
        message = await emu.wait_for_message("user", "1")
        fault.release()
        await expect_disconnect(task)
        assert message.text == "did it arrive?"

    async def test_unlimited_rule_until_cancelled(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """times=None applies to every request on every endpoint ('*') until cancelled."""
        fault = emu.faults.reject(1005, times=None, endpoint="*")
        assert (await one_shot(session, emu, "a"))["code"] == 1005
        assert (
            await get_messages(session, emu, **{"chat-id": "1", "chat-type": "user", "before": "1"})
        )["code"] == 1005
        fault.cancel()
        assert (await one_shot(session, emu, "b"))["code"] == 1
        assert fault.hits == 2

    async def test_first_armed_rule_wins(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Rules apply in the order they were added, one per request."""
        emu.faults.reject_early(1004)
        emu.faults.reject_early(1005)
        codes = [(await one_shot(session, emu, "x"))["code"] for _ in range(3)]
        assert codes == [1004, 1005, 1]

    @pytest.mark.parametrize(
        ("call", "needle"),
        [
            (lambda f: f.reject(1), "code"),
            (lambda f: f.reject(1007, times=0), "times"),
            (lambda f: f.reject(1007, endpoint="bot/send"), "endpoint"),
            (lambda f: f.reject(1007, when="during"), "when"),
            (lambda f: f.http_status(200), "status"),
            (lambda f: f.drop_after(-1), "n_bytes"),
            (lambda f: f.slow_read(-0.5), "delay_per_chunk"),
            (lambda f: f.stall(seconds=-1), "seconds"),
        ],
    )
    def test_invalid_fault_arguments(self, call: Any, needle: str) -> None:
        """Bad fault arguments raise ValueError naming the argument."""
        with pytest.raises(ValueError, match=needle):
            call(Emulator().faults)


class TestRateLimitMode:
    async def test_over_the_limit_is_1007_per_endpoint(
        self, session: aiohttp.ClientSession
    ) -> None:
        """With rate_limit=2 a third request in one second gets 1007; endpoints count apart."""
        # The window is one second of this clock; freeze it so the test cannot race it.
        now = [1000.0]
        async with Emulator(rate_limit=2, clock=lambda: now[0]) as emu:
            codes = [(await one_shot(session, emu, f"m{i}"))["code"] for i in range(3)]
            assert codes == [1, 1, 1007]
            sent = await post_json(
                session,
                emu,
                "send",
                {
                    "recvId": "1",
                    "recvType": "user",
                    "contentType": "text",
                    "content": {"text": "x"},
                },
            )
            assert sent["code"] == 1
            assert emu.rate_limited == 1
            now[0] = 1001.5
            assert (await one_shot(session, emu, "later"))["code"] == 1

    async def test_off_by_default(self, session: aiohttp.ClientSession) -> None:
        """Without rate_limit, a burst well over 10 requests in a second all succeed."""
        payload = {
            "recvId": "1",
            "recvType": "user",
            "contentType": "text",
            "content": {"text": "x"},
        }
        async with Emulator(clock=lambda: 1000.0) as emu:
            answers = await asyncio.gather(
                *(post_json(session, emu, "send", payload) for _ in range(25))
            )
        assert {a["code"] for a in answers} == {1}
        assert emu.rate_limited == 0
