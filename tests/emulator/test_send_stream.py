"""``bot/send-stream``: the message appears at the first chunk, grows, and is recorded
chunk by chunk."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.emulator._http import (
    Body,
    get_messages,
    one_shot,
    post_stream,
    stream_url,
)
from yunhu_stream.emulator import STREAM_TIP, Emulator

pytestmark = pytest.mark.anyio


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
