"""The emulator behaves like YunHu's bot API, records streams, and injects faults.

These tests speak raw HTTP with aiohttp's client, so they pin the wire behaviour
independently of the library's own client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import aiohttp
import anyio
import pytest
import structlog

from yunhu_stream.emulator import STREAM_TIP, Emulator, StreamRecord

pytestmark = pytest.mark.anyio


class Body:
    """A chunked request body the test feeds piece by piece."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def send(self, data: bytes | str) -> None:
        self._queue.put_nowait(data.encode() if isinstance(data, str) else data)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def fail(self) -> None:
        """Make the client abort the request mid-body."""
        self._queue.put_nowait(RuntimeError("client gave up"))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def stream_url(
    emu: Emulator,
    *,
    token: str | None = None,
    recv_id: str = "123",
    recv_type: str = "group",
    content_type: str = "text",
) -> str:
    return (
        f"{emu.base_url}/bot/send-stream?token={token or emu.token}&recvId={recv_id}"
        f"&recvType={recv_type}&contentType={content_type}"
    )


async def post_stream(session: aiohttp.ClientSession, url: str, body: Any) -> dict[str, Any]:
    async with session.post(url, data=body, headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def post_json(
    session: aiohttp.ClientSession,
    emu: Emulator,
    endpoint: str,
    payload: Any,
    *,
    token: str | None = None,
) -> dict[str, Any]:
    url = f"{emu.base_url}/bot/{endpoint}?token={token or emu.token}"
    async with session.post(url, json=payload) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


async def get_messages(
    session: aiohttp.ClientSession, emu: Emulator, **params: str
) -> dict[str, Any]:
    query = {"token": emu.token, **params}
    async with session.get(f"{emu.base_url}/bot/messages", params=query) as resp:
        result: dict[str, Any] = await resp.json()
        return result


async def one_shot(
    session: aiohttp.ClientSession, emu: Emulator, text: str, **kw: str
) -> dict[str, Any]:
    body = Body()
    body.send(text)
    body.end()
    return await post_stream(session, stream_url(emu, **kw), body)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class TestLifecycle:
    def test_urls_point_at_loopback_api(self) -> None:
        """base_url is the root URL plus /open-apis/v1 on 127.0.0.1."""
        emu = Emulator(port=8123)
        assert emu.url == "http://127.0.0.1:8123/"
        assert emu.base_url == "http://127.0.0.1:8123/open-apis/v1"

    def test_random_token_is_not_shown_in_repr(self) -> None:
        """Each emulator gets its own random token, and its repr does not contain it."""
        a, b = Emulator(), Emulator()
        assert a.token != b.token
        assert len(a.token) >= 32
        assert a.token not in repr(a)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"token": ""},
            {"token": "a b"},
            {"port": -1},
            {"port": 70000},
            {"rate_limit": 0},
            {"host": ""},
            {"bot_id": ""},
        ],
    )
    def test_invalid_arguments_are_rejected(self, kwargs: dict[str, Any]) -> None:
        """Bad constructor arguments raise ValueError naming the argument."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Emulator(**kwargs)

    async def test_start_twice_is_an_error_and_close_is_idempotent(self) -> None:
        """start() on a running emulator raises; close() can be called repeatedly."""
        emu = await Emulator().start()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                await emu.start()
        finally:
            await emu.close()
        await emu.close()
        assert not emu.running

    async def test_restart_keeps_port_and_history(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """After restart() the same base_url works and earlier messages are still there."""
        url = emu.base_url
        await one_shot(session, emu, "before")
        await emu.restart()
        assert emu.base_url == url
        await one_shot(session, emu, "after")
        assert [m.text for m in emu.chat("group", "123")] == ["before", "after"]

    async def test_token_never_reaches_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        """Neither stdlib logging (aiohttp's access log) nor structlog events show the token."""
        caplog.set_level(logging.DEBUG)
        with structlog.testing.capture_logs() as events:
            async with Emulator() as emu, aiohttp.ClientSession() as session:
                await one_shot(session, emu, "hi")
                await post_json(session, emu, "send", {"recvId": "1"})
        assert events, "the emulator should log its start and stop"
        assert emu.token not in caplog.text
        assert all(emu.token not in repr(event) for event in events)


class TestSendStream:
    async def test_message_appears_at_first_chunk_and_grows(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A streamed message is in the chat after its first chunk and grows with each one."""
        body = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), body))
        body.send("Hello ")
        record = await emu.wait_for_stream()
        await record.wait_for_bytes(6)
        [message] = emu.chat("group", "123")
        assert (message.text, message.streaming, message.streamed) == ("Hello ", True, True)
        body.send("world")
        await record.wait_for_bytes(11)
        assert message.text == "Hello world"
        body.end()
        answer = await task
        assert answer["code"] == 1
        assert answer["msg"] == "success"
        assert answer["data"]["messageInfo"] == {
            "msgId": message.msg_id,
            "recvId": "123",
            "recvType": "group",
        }
        assert (record.completed, record.aborted, record.code) == (True, False, 1)
        assert not message.streaming
        assert record.msg_id == message.msg_id

    async def test_chunks_are_recorded_with_arrival_times(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Each piece is recorded in order with non-decreasing monotonic and wall times."""
        body = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), body))
        for i, piece in enumerate(["one ", "two ", "three"], start=1):
            body.send(piece)
            record = await emu.wait_for_stream()
            await record.wait_for_chunks(i)
        body.end()
        await task
        assert [c.data for c in record.chunks] == [b"one ", b"two ", b"three"]
        assert all(c.http_chunk_end for c in record.chunks)
        times = [c.t for c in record.chunks]
        assert times == sorted(times)
        assert record.started <= times[0]
        assert record.body == b"one two three"
        assert record.text == "one two three"

    async def test_utf8_split_across_chunks_is_accepted(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A multi-byte character split across chunks is shown only once complete."""
        body = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), body))
        emoji = "你好🙂".encode()
        body.send(emoji[:4])
        record = await emu.wait_for_stream()
        await record.wait_for_bytes(4)
        [message] = emu.chat("group", "123")
        assert message.text == "你"
        body.send(emoji[4:])
        body.end()
        assert (await task)["code"] == 1
        assert message.text == "你好🙂"

    async def test_empty_body_is_rejected(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """An empty stream is answered 1002 "消息内容不能为空" and leaves no message."""
        answer = await one_shot(session, emu, "")
        assert (answer["code"], answer["msg"]) == (1002, "消息内容不能为空")
        assert emu.chat("group", "123") == []

    async def test_invalid_utf8_is_rejected(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A body that is not UTF-8 is answered 1002 and its message is withdrawn."""
        body = Body()
        body.send(b"ok \xff\xfe")
        body.end()
        answer = await post_stream(session, stream_url(emu), body)
        assert answer["code"] == 1002
        assert "UTF-8" in answer["msg"]
        assert emu.chat("group", "123") == []

    @pytest.mark.parametrize("token", ["wrong", ""])
    async def test_bad_token_is_unauthorized(
        self, emu: Emulator, session: aiohttp.ClientSession, token: str
    ) -> None:
        """A wrong or missing token is answered 1003 and nothing reaches the chat."""
        url = stream_url(emu).replace(f"token={emu.token}", f"token={token}")
        body = Body()
        body.send("secret")
        body.end()
        answer = await post_stream(session, url, body)
        assert answer["code"] == 1003
        assert emu.chat("group", "123") == []
        assert emu.streams[0].code == 1003

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"recv_type": "channel"}, "recvType"),
            ({"content_type": "html"}, "contentType"),
            ({"recv_id": ""}, "recvId"),
        ],
    )
    async def test_bad_parameters_are_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, params: dict[str, str], field: str
    ) -> None:
        """An invalid query parameter is answered 1002 with a message naming it."""
        answer = await one_shot(session, emu, "hi", **params)
        assert answer["code"] == 1002
        assert field in answer["msg"]

    async def test_client_abort_keeps_partial_message(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A stream cut off by the client stays in the chat with what arrived, marked incomplete."""
        body = Body()
        task = asyncio.create_task(post_stream(session, stream_url(emu), body))
        body.send("partial ")
        record = await emu.wait_for_stream()
        await record.wait_for_bytes(8)
        body.fail()
        with pytest.raises(aiohttp.ClientError):
            await task
        await record.wait_done()
        assert (record.aborted, record.completed, record.code) == (True, False, None)
        [message] = emu.chat("group", "123")
        assert (message.text, message.incomplete, message.streaming) == ("partial ", True, False)

    async def test_streamed_message_carries_the_ai_tip(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """In bot/messages a streamed message's content has the AI label as "tip"."""
        await one_shot(
            session, emu, "**bold**", content_type="markdown", recv_type="user", recv_id="7"
        )
        answer = await get_messages(
            session, emu, **{"chat-id": "7", "chat-type": "user", "before": "5"}
        )
        [item] = answer["data"]["list"]
        assert item["content"] == {"text": "**bold**", "tip": STREAM_TIP}
        assert item["contentType"] == "markdown"
        assert (item["senderType"], item["senderId"]) == ("bot", emu.bot_id)


class TestSendEditRecall:
    async def test_send_stores_text_buttons_mentions_and_quote(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """bot/send creates a message with its buttons, mentions and parent id."""
        buttons = [[{"text": "Open", "actionType": 1, "url": "https://example.com"}]]
        answer = await post_json(
            session,
            emu,
            "send",
            {
                "recvId": "9",
                "recvType": "user",
                "contentType": "markdown",
                "parentId": "p1",
                "content": {"text": "@Ann\u200b hi", "buttons": buttons, "at": ["42"]},
            },
        )
        assert answer["code"] == 1
        [message] = emu.chat("user:9")
        assert message.msg_id == answer["data"]["messageInfo"]["msgId"]
        assert (message.buttons, message.at, message.parent_id) == (buttons, ["42"], "p1")
        assert (message.streamed, message["content"]["text"]) == (False, "@Ann\u200b hi")

    @pytest.mark.parametrize(
        ("payload", "needle"),
        [
            ({"recvType": "user", "contentType": "text", "content": {"text": "x"}}, "recvId"),
            (
                {"recvId": "1", "recvType": "x", "contentType": "text", "content": {"text": "x"}},
                "recvType",
            ),
            (
                {"recvId": "1", "recvType": "user", "contentType": "gif", "content": {"text": "x"}},
                "contentType",
            ),
            (
                {"recvId": "1", "recvType": "user", "contentType": "text", "content": {"text": ""}},
                "消息内容不能为空",
            ),
            (
                {
                    "recvId": "1",
                    "recvType": "user",
                    "contentType": "text",
                    "content": {"text": "x", "buttons": [{"text": "flat"}]},
                },
                "buttons",
            ),
            (
                {"recvId": "1", "recvType": "user", "contentType": "image", "content": {}},
                "imageKey",
            ),
            ([1, 2], "JSON"),
        ],
    )
    async def test_send_validates_parameters(
        self, emu: Emulator, session: aiohttp.ClientSession, payload: Any, needle: str
    ) -> None:
        """Invalid bot/send bodies are answered 1002 with a message naming the problem."""
        answer = await post_json(session, emu, "send", payload)
        assert answer["code"] == 1002
        assert needle in answer["msg"]
        assert emu.chats() == []

    async def test_non_json_body_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A body that is not JSON is answered 1002."""
        async with session.post(
            f"{emu.base_url}/bot/send?token={emu.token}", data=b"{nope"
        ) as resp:
            answer = await resp.json()
        assert answer["code"] == 1002

    async def test_edit_replaces_text_and_adds_buttons(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """bot/edit on a streamed message replaces its text and may add buttons."""
        sent = await one_shot(session, emu, "draft")
        msg_id = sent["data"]["messageInfo"]["msgId"]
        buttons = [[{"text": "Copy", "actionType": 2, "value": "v"}]]
        answer = await post_json(
            session,
            emu,
            "edit",
            {
                "msgId": msg_id,
                "recvId": "123",
                "recvType": "group",
                "contentType": "markdown",
                "content": {"text": "final", "buttons": buttons},
            },
        )
        assert answer["code"] == 1
        [message] = emu.chat("group", "123")
        assert (message.text, message.buttons, message.edits) == ("final", buttons, 1)
        assert message.content_type == "markdown"

    async def test_edit_of_unknown_or_foreign_message_fails(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Editing a message that is not in the given chat is answered -1."""
        sent = await one_shot(session, emu, "draft")
        msg_id = sent["data"]["messageInfo"]["msgId"]
        for recv_id, mid in (("999", msg_id), ("123", "nope")):
            answer = await post_json(
                session,
                emu,
                "edit",
                {
                    "msgId": mid,
                    "recvId": recv_id,
                    "recvType": "group",
                    "contentType": "text",
                    "content": {"text": "x"},
                },
            )
            assert answer["code"] == -1
        assert emu.chat("group", "123")[0].text == "draft"

    async def test_recall_removes_message_from_chat(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """bot/recall hides the message from the chat and from bot/messages."""
        sent = await one_shot(session, emu, "oops")
        msg_id = sent["data"]["messageInfo"]["msgId"]
        answer = await post_json(
            session, emu, "recall", {"msgId": msg_id, "chatId": "123", "chatType": "group"}
        )
        assert answer["code"] == 1
        assert emu.chat("group", "123") == []
        assert emu.chat("group", "123", include_recalled=True)[0].recalled
        again = await post_json(
            session, emu, "recall", {"msgId": msg_id, "chatId": "123", "chatType": "group"}
        )
        assert again["code"] == -1

    async def test_json_endpoints_check_the_token(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """bot/send with a wrong token is answered 1003."""
        answer = await post_json(session, emu, "send", {}, token="bad")
        assert answer["code"] == 1003


class TestMessages:
    async def test_latest_n_oldest_first(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Without message-id, before=N gives the latest N messages, oldest first."""
        for i in range(5):
            await one_shot(session, emu, f"m{i}")
        answer = await get_messages(
            session, emu, **{"chat-id": "123", "chat-type": "group", "before": "3"}
        )
        assert answer["code"] == 1
        assert [m["content"]["text"] for m in answer["data"]["list"]] == ["m2", "m3", "m4"]
        assert answer["data"]["total"] == 3

    async def test_around_a_message_id(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        """With message-id, before/after give the neighbours, excluding the anchor."""
        ids = []
        for i in range(5):
            sent = await one_shot(session, emu, f"m{i}")
            ids.append(sent["data"]["messageInfo"]["msgId"])
        answer = await get_messages(
            session,
            emu,
            **{
                "chat-id": "123",
                "chat-type": "group",
                "message-id": ids[2],
                "before": "1",
                "after": "5",
            },
        )
        assert [m["msgId"] for m in answer["data"]["list"]] == [ids[1], ids[3], ids[4]]

    @pytest.mark.parametrize(
        "params",
        [
            {"chat-type": "group", "before": "1"},
            {"chat-id": "1", "chat-type": "x", "before": "1"},
            {"chat-id": "1", "chat-type": "group"},
            {"chat-id": "1", "chat-type": "group", "before": "-3"},
        ],
    )
    async def test_invalid_query_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> None:
        """Missing chat, bad chat type, no count or a bad count are answered 1002."""
        answer = await get_messages(session, emu, **params)
        assert answer["code"] == 1002

    async def test_unknown_message_id_is_minus_one(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A message-id that is not in the chat is answered -1."""
        answer = await get_messages(
            session,
            emu,
            **{"chat-id": "1", "chat-type": "group", "message-id": "zzz", "before": "1"},
        )
        assert answer["code"] == -1


class TestWaits:
    async def test_wait_for_message_with_predicate(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """wait_for_message returns once a message satisfying the predicate exists."""
        waiter = asyncio.create_task(
            emu.wait_for_message("group", "123", lambda m: m.text.endswith("!"))
        )
        await one_shot(session, emu, "not yet")
        await one_shot(session, emu, "now!")
        message = await waiter
        assert message.text == "now!"

    async def test_wait_times_out_with_a_clear_error(self, emu: Emulator) -> None:
        """A wait that cannot be satisfied raises TimeoutError naming what it waited for."""
        with pytest.raises(TimeoutError, match="send-stream request #1"):
            await emu.wait_for_stream(timeout=0.05)

    async def test_wait_for_requests_by_endpoint(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """wait_for_requests counts finished requests of one endpoint."""
        await one_shot(session, emu, "x")
        await post_json(session, emu, "send", {})
        [record] = await emu.wait_for_requests(1, endpoint="send")
        assert (record.method, record.status, record.code) == ("POST", 200, 1002)


class TestPytestPlugin:
    async def test_fixture_yields_a_running_emulator(
        self, emulator: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """The plugin's `emulator` fixture is started and answers the API."""
        assert emulator.running
        answer = await one_shot(session, emulator, "from the fixture")
        assert answer["code"] == 1


async def open_stream(
    session: aiohttp.ClientSession, emu: Emulator, first: str | bytes, n: int = 1
) -> tuple[Body, asyncio.Task[dict[str, Any]], StreamRecord]:
    """Start a stream, send its first piece, and return once the server has it."""
    body = Body()
    task = asyncio.create_task(post_stream(session, stream_url(emu), body))
    body.send(first)
    record = await emu.wait_for_stream(n)
    await record.wait_for_chunks(1)
    return body, task, record


async def expect_disconnect(task: asyncio.Task[Any]) -> None:
    with pytest.raises(aiohttp.ClientError):
        await task


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


async def next_event(resp: aiohttp.ClientResponse) -> tuple[str, Any]:
    """Read one SSE event (name, parsed data), skipping comments and retry lines."""
    name, data = "message", []
    with anyio.fail_after(10):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise EOFError("the event stream ended")
            line = line.rstrip("\n")
            if line == "" and data:
                return name, json.loads("\n".join(data))
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


async def event_where(resp: aiohttp.ClientResponse, check: Any) -> dict[str, Any]:
    """Read message events until one satisfies check(data)."""
    while True:
        name, data = await next_event(resp)
        if name == "message" and check(data):
            result: dict[str, Any] = data
            return result


class TestLivePage:
    async def test_page_and_its_files_are_served_without_the_token(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/ serves the page, which loads its script and style from the emulator itself."""
        async with session.get(emu.url) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            page = await resp.text()
        for needle in (
            'id="chat-list"',
            'id="messages"',
            "/_emulator/static/app.js",
            "/_emulator/static/markdown.js",
            "/_emulator/static/style.css",
        ):
            assert needle in page
        assert "http" not in page.replace('href="data:,"', ""), "the page must load nothing remote"
        for name, kind in (
            ("app.js", "text/javascript"),
            ("markdown.js", "text/javascript"),
            ("style.css", "text/css"),
        ):
            async with session.get(f"{emu.url}_emulator/static/{name}") as resp:
                assert (resp.status, resp.content_type) == (200, kind)
                assert emu.token not in await resp.text()

    @pytest.mark.parametrize("name", ["nope.js", "..%2F_server.py", "index.html"])
    async def test_unknown_static_file_is_404(
        self, emu: Emulator, session: aiohttp.ClientSession, name: str
    ) -> None:
        """Only the page's own files are served from /_emulator/static/."""
        async with session.get(f"{emu.url}_emulator/static/{name}") as resp:
            assert resp.status == 404

    async def test_chats_summary(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        """/_emulator/chats lists each chat with its count, newest text and streaming flag."""
        await one_shot(session, emu, "first", recv_type="user", recv_id="7")
        body, task, _record = await open_stream(session, emu, "growing", n=2)
        async with session.get(f"{emu.url}_emulator/chats") as resp:
            chats = (await resp.json())["chats"]
        assert [(c["key"], c["count"], c["streaming"], c["lastText"]) for c in chats] == [
            ("user:7", 1, False, "first"),
            ("group:123", 1, True, "growing"),
        ]
        body.end()
        await task

    async def test_chat_messages_with_timeline(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/_emulator/chats/{type}/{id} gives messages with their chunk timeline and recalls."""
        body, task, record = await open_stream(session, emu, "a")
        body.send("bc")
        await record.wait_for_bytes(3)
        body.end()
        msg_id = (await task)["data"]["messageInfo"]["msgId"]
        await post_json(
            session, emu, "recall", {"msgId": msg_id, "chatId": "123", "chatType": "group"}
        )
        async with session.get(f"{emu.url}_emulator/chats/group/123") as resp:
            data = await resp.json()
        [message] = data["messages"]
        assert (message["msgId"], message["text"], message["recalled"]) == (msg_id, "abc", True)
        stream = message["stream"]
        assert (stream["chunkCount"], stream["bytes"], stream["completed"]) == (2, 3, True)
        assert [size for _offset, size in stream["chunks"]] == [1, 2]
        offsets = [offset for offset, _size in stream["chunks"]]
        assert offsets == sorted(offsets)
        assert all(offset >= 0 for offset in offsets)
        assert data["chat"]["count"] == 0

    async def test_unknown_chat_type_is_404(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A chat type other than user or group is not found."""
        async with session.get(f"{emu.url}_emulator/chats/channel/1") as resp:
            assert resp.status == 404

    async def test_events_push_a_stream_as_it_grows(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """/_emulator/events pushes the message after each chunk, before the stream ends."""
        async with session.get(f"{emu.url}_emulator/events") as events:
            assert events.content_type == "text/event-stream"
            assert await next_event(events) == ("hello", {})
            body, task, _record = await open_stream(session, emu, "Hello ")
            first = await event_where(events, lambda d: d["message"]["text"] == "Hello ")
            assert first["message"]["streaming"] is True
            assert first["chat"] == {**first["chat"], "key": "group:123", "streaming": True}
            body.send("world")
            await event_where(events, lambda d: d["message"]["text"] == "Hello world")
            body.end()
            last = await event_where(events, lambda d: not d["message"]["streaming"])
            await task
            assert last["message"]["stream"]["completed"] is True
            assert emu.token not in json.dumps(last)

    async def test_events_end_when_the_emulator_closes(
        self, session: aiohttp.ClientSession
    ) -> None:
        """An open event stream is finished, not left hanging, when the emulator stops."""
        emu = await Emulator().start()
        try:
            events = await session.get(f"{emu.url}_emulator/events")
            assert (await next_event(events))[0] == "hello"
        finally:
            await emu.close()
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            await next_event(events)
        events.release()


NODE = shutil.which("node")


def render_markdown(source: str) -> str:
    script = (
        "const md = require(process.argv[1]);"
        "process.stdout.write(md.renderMarkdown(require('fs').readFileSync(0, 'utf8')));"
    )
    path = resources.files("yunhu_stream.emulator").joinpath("static").joinpath("markdown.js")
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", script, str(path)],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout


@pytest.mark.skipif(NODE is None, reason="node is needed to run the page's markdown renderer")
class TestPageMarkdown:
    def test_html_is_escaped(self) -> None:
        """Raw HTML in a message is shown as text, never parsed."""
        html = render_markdown('<script>alert("x")</script> <img src=x onerror=alert(1)>')
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html

    def test_only_safe_links_become_anchors(self) -> None:
        """http(s) links are rendered; javascript: links stay plain text."""
        html = render_markdown("[ok](https://example.com) [bad](javascript:alert(1))")
        assert '<a href="https://example.com"' in html
        assert 'href="javascript' not in html
        assert "[bad](javascript:alert(1))" in html

    def test_common_markup(self) -> None:
        """Headings, emphasis, inline code, lists and quotes render as HTML."""
        html = render_markdown("## Title\n**b** *i* `c`\n\n- x\n- y\n\n1. one\n\n> q")
        for part in (
            "<h2>Title</h2>",
            "<strong>b</strong>",
            "<em>i</em>",
            "<code>c</code>",
            "<ul><li>x</li><li>y</li></ul>",
            "<ol><li>one</li></ol>",
            "<blockquote>q</blockquote>",
        ):
            assert part in html

    def test_code_blocks_are_literal_even_when_cut_off(self) -> None:
        """Fenced code keeps its text literally, also while the closing fence has not arrived."""
        html = render_markdown("```py\nx = **1** < 2\n")
        assert html == '<pre><code class="language-py">x = **1** &lt; 2\n</code></pre>'
