"""Streamed replies over the WebSocket chat: frames on the wire, the Streamer's semantics."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wschat.conftest import Connect, Raw, frames_until, is_final
from yunhu_stream import StreamState
from yunhu_stream.errors import ConfigurationError, StreamClosedError, WouldBlockError
from yunhu_stream.wschat import WsChat, WsChatServer, WsMessage, WsStreamPiece

pytestmark = pytest.mark.anyio


async def received_text(ws_frames: list[dict[str, object]]) -> tuple[str, str]:
    pieces = "".join(f["msg"]["content"] for f in ws_frames  # type: ignore[index]
                     if f["msgType"] == "stream")
    return pieces, ws_frames[-1]["msg"]["content"]  # type: ignore[index,return-value]


class TestWireFormat:
    async def test_stream_frames_arrive_before_the_final_text_frame(
        self, connect: Connect, raw: Raw
    ) -> None:
        """Each write reaches the receiver as a stream frame while the reply is open; the
        final text frame holds the whole text, and the pieces add up to it."""
        bob = await raw("bob")
        bot = await connect("bot")
        async with bot.stream(to="user:bob") as s:
            seen = []
            for piece in ("好的，", "这是", "流式回复 🌏"):
                await s.write(piece)
                frame = (await frames_until(bob, lambda f: True))[0]
                seen.append(frame)  # it arrived before the next write, let alone close()
        final = (await frames_until(bob, is_final))[-1]
        assert [f["msgType"] for f in seen] == ["stream"] * 3
        assert [f["extra"] for f in seen] == [{"seq": i, "done": False} for i in range(3)]
        assert {f["msg"]["msgId"] for f in seen} == {final["msg"]["msgId"]}
        assert final["msgType"] == "text"
        assert final["extra"] == {"seq": 3, "done": True, "streamed": True}
        assert final["msg"]["content"] == "".join(f["msg"]["content"] for f in seen)
        assert final["msg"]["content"] == "好的，这是流式回复 🌏" == s.text
        assert s.message_info is not None and s.message_info.msg_id == final["msg"]["msgId"]
        assert (final["source"], final["target"], final["type"]) == ("bot", "bob", "single")

    async def test_a_backlog_goes_in_few_frames(self, connect: Connect, raw: Raw) -> None:
        bob = await raw("bob")
        bot = await connect("bot")
        async with bot.stream(to="user:bob") as s:
            for i in range(2000):
                s.write_nowait(f"{i},")
        frames = await frames_until(bob, is_final)
        pieces, final = await received_text(frames)
        assert pieces == final == "".join(f"{i}," for i in range(2000))
        assert len(frames) - 1 <= 3
        assert s.stats.chunks_sent == len(frames) - 1 and s.stats.writes == 2000

    async def test_a_client_that_ignores_stream_frames_sees_each_answer_once(
        self, connect: Connect, raw: Raw
    ) -> None:
        """A client that knows only msgType 'text' shows exactly one message per answer."""
        bob = await raw("bob")
        bot = await connect("bot")
        answers = ["第一个回答", "second answer, " * 20, "third"]
        for answer in answers:
            async with bot.stream(to="user:bob") as s:
                for word in answer.split(" "):
                    await s.write(word + " ")
                    await asyncio.sleep(0)
        shown = []
        while len(shown) < len(answers):
            frame = (await frames_until(bob, lambda f: True))[0]
            if frame["msgType"] == "text":
                shown.append(frame["msg"]["content"])
        assert shown == ["".join(w + " " for w in a.split(" ")) for a in answers]

    async def test_a_group_reply_reaches_every_member_but_the_sender(
        self, connect: Connect
    ) -> None:
        bot, a, b = await connect("bot"), await connect("a"), await connect("b")
        for chat in (bot, a, b):
            await chat.join("g1")
        ev_a, ev_b = a.events(), b.events()
        starts = [asyncio.ensure_future(anext(ev)) for ev in (ev_a, ev_b)]
        await asyncio.sleep(0)
        async with bot.stream(to="group:g1") as s:
            await s.write("大家好")
            await s.write("！")
        for first, events in zip(starts, (ev_a, ev_b), strict=True):
            got = [await first]
            while not isinstance(got[-1], WsMessage):
                got.append(await anext(events))
            assert isinstance(got[0], WsStreamPiece)
            assert got[-1].content == "大家好！" and got[-1].streamed
            assert got[-1].reply_recipient.type == "group"
            assert got[-1].reply_recipient.id == "g1"

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(writes=st.lists(st.text(max_size=40), max_size=30),
           yields=st.lists(st.booleans(), max_size=30))
    async def test_any_write_sequence_gives_the_same_text_at_the_receiver(
        self, writes: list[str], yields: list[bool]
    ) -> None:
        async with WsChatServer() as srv, WsChat(
            srv.url, token=srv.issue_token("bot")) as bot, WsChat(
            srv.url, token=srv.issue_token("bob")) as bob:
            events = bob.events()
            first = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0)
            expected = "".join(writes)
            async with bot.stream(to="user:bob") as s:
                for i, w in enumerate(writes):
                    await s.write(w)
                    if i < len(yields) and yields[i]:
                        await asyncio.sleep(0)
            if not expected:
                assert s.message_info is None  # nothing written: nothing sent
                first.cancel()
                return
            got = [await first]
            while not isinstance(got[-1], WsMessage):
                got.append(await anext(events))
            pieces = "".join(e.content for e in got if isinstance(e, WsStreamPiece))
            assert got[-1].content == pieces == expected == s.text


class TestStreamerSemantics:
    async def test_it_is_the_same_streamer_with_stats_and_state(self, connect: Connect) -> None:
        bot = await connect("bot")
        s = bot.stream(to="user:bob")
        assert s.state is StreamState.IDLE
        async with s:
            await s.write("")
            assert s.state is StreamState.IDLE  # an empty write sends nothing
            await s.write("abc")
            assert s.state is StreamState.OPEN
        assert s.state is StreamState.CLOSED
        assert (s.stats.bytes_written, s.stats.messages, s.stats.attempts) == (3, 1, 1)
        with pytest.raises(StreamClosedError):
            await s.write("more")

    async def test_write_nowait_raises_when_the_buffer_is_full(self, connect: Connect) -> None:
        bot = await connect("bot")
        async with bot.stream(to="user:bob", max_buffer_bytes=8) as s:
            s.write_nowait("12345678")
            with pytest.raises(WouldBlockError):
                s.write_nowait("9")
            await s.write("9")  # waits for room instead
        assert s.text == "123456789"

    async def test_rollover_splits_a_long_reply_into_messages(
        self, connect: Connect, raw: Raw
    ) -> None:
        bob = await raw("bob")
        bot = await connect("bot")
        lines = [f"line {i} of the answer\n" for i in range(40)]
        async with bot.stream(to="user:bob", max_message_bytes=200) as s:
            for line in lines:
                await s.write(line)
        finals = []
        while len(finals) < len(s.messages):
            finals += [f for f in await frames_until(bob, is_final) if is_final(f)]
        assert len(s.messages) > 1
        assert "".join(f["msg"]["content"] for f in finals) == "".join(lines)
        assert all(len(f["msg"]["content"].encode()) <= 200 for f in finals)
        assert [f["msg"]["msgId"] for f in finals] == [m.msg_id for m in s.messages]

    async def test_abort_sends_no_final_frame(self, connect: Connect, raw: Raw) -> None:
        bob = await raw("bob")
        bot = await connect("bot")
        s = bot.stream(to="user:bob")
        await s.write("partial")
        assert (await frames_until(bob, lambda f: True))[0]["msgType"] == "stream"
        await s.abort()
        await bot.send("user:bob", "after")  # the next frame bob gets is this one
        assert (await frames_until(bob, lambda f: True))[0]["msg"]["content"] == "after"
        assert s.message_info is None

    async def test_an_exception_in_the_block_aborts(self, connect: Connect) -> None:
        bot = await connect("bot")
        with pytest.raises(RuntimeError):
            async with bot.stream(to="user:bob") as s:
                await s.write("x")
                raise RuntimeError("handler bug")
        assert s.state is StreamState.ABORTED

    async def test_idle_timeout_ends_the_reply(self, connect: Connect, raw: Raw) -> None:
        bob = await raw("bob")
        bot = await connect("bot", idle_timeout=0.05)
        s = bot.stream(to="user:bob")
        await s.write("then silence")
        final = (await frames_until(bob, is_final))[-1]
        assert final["msg"]["content"] == "then silence"
        with pytest.raises(StreamClosedError, match="idle"):
            await s.write("late")
        await s.close()

    async def test_buttons_and_mentions_are_refused_clearly(self, connect: Connect) -> None:
        bot = await connect("bot")
        async with bot.stream(to="user:bob") as s:
            with pytest.raises(ConfigurationError, match="no buttons or mentions"):
                s.attach(at=["123"])
            await s.write("ok")

    async def test_pipe_writes_a_source(self, connect: Connect, raw: Raw) -> None:
        bob = await raw("bob")
        bot = await connect("bot")

        async def source():  # type: ignore[no-untyped-def]
            for piece in ("a", "b", "c"):
                yield piece

        async with bot.stream(to="user:bob") as s:
            result = await s.pipe(source())
        assert result.writes == 3
        assert (await frames_until(bob, is_final))[-1]["msg"]["content"] == "abc"
