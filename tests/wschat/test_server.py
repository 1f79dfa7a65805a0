"""The chat server of the documented protocol, driven by bare WebSocket clients."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.wschat.conftest import Raw, frames_until
from yunhu_stream.errors import ConfigurationError
from yunhu_stream.wschat import WsChatServer

pytestmark = pytest.mark.anyio


def single(target: str, content: str, msg_id: str, **fields: object) -> str:
    frame = {"type": "single", "target": target, "msgType": "text",
             "msg": {"msgId": msg_id, "timestamp": 1611065986, "content": content}}
    frame.update(fields)
    return json.dumps(frame)


def ack_or_error(frame: dict[str, object]) -> bool:
    return frame["type"] in ("ack", "error")


class TestTokens:
    async def test_the_token_api_answers_a_token_for_the_right_key_and_secret(
        self, server: WsChatServer
    ) -> None:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.base_url}/chat/oauth/token", json={
                "appKey": "demo-key", "appSecret": "demo-secret", "userId": 7,
            }) as resp:
                good = await resp.json()
            async with http.post(f"{server.base_url}/chat/oauth/token", json={
                "appKey": "demo-key", "appSecret": "wrong", "userId": 7,
            }) as resp:
                bad = await resp.json()
        assert good["code"] == 1
        assert server.user_of(good["data"]["token"]) == "7"
        assert bad["code"] != 1 and "appSecret" in bad["msg"]
        assert "data" not in bad

    async def test_a_bad_token_is_refused_with_401_and_no_upgrade(
        self, server: WsChatServer
    ) -> None:
        forged = server.issue_token("alice")[:-2] + "xx"
        async with aiohttp.ClientSession() as http:
            for token in ("", "nonsense", forged):
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await http.ws_connect(f"{server.url}?token={token}")
                assert info.value.status == 401

    async def test_a_restarted_server_with_the_same_secret_takes_old_tokens(self) -> None:
        first = WsChatServer(app_secret="s3cret")
        token = first.issue_token("alice")
        assert WsChatServer(app_secret="s3cret").user_of(token) == "alice"
        assert WsChatServer(app_secret="other").user_of(token) is None

    def test_bad_options_name_what_is_accepted(self) -> None:
        with pytest.raises(ConfigurationError, match="max_offline"):
            WsChatServer(max_offline=0)
        with pytest.raises(ConfigurationError, match="port"):
            WsChatServer(port=70000)


class TestSingle:
    async def test_two_users_exchange_messages(self, raw: Raw) -> None:
        alice, bob = await raw("alice"), await raw("bob")
        await alice.send_str(single("bob", "hi bob", "a1"))
        assert (await frames_until(alice, ack_or_error))[-1]["type"] == "ack"
        got = (await frames_until(bob, lambda f: True))[0]
        assert (got["source"], got["target"], got["msg"]["content"]) == ("alice", "bob", "hi bob")
        await bob.send_str(single("alice", "hi alice", "b1"))
        got = await frames_until(alice, lambda f: f["type"] == "single")
        assert got[-1]["msg"]["content"] == "hi alice" and got[-1]["source"] == "bob"

    async def test_a_forged_source_is_replaced_by_the_tokens_user(self, raw: Raw) -> None:
        alice, bob = await raw("alice"), await raw("bob")
        await alice.send_str(single("bob", "it's me, carol", "f1", source="carol"))
        got = (await frames_until(bob, lambda f: True))[0]
        assert got["source"] == "alice"

    async def test_every_connection_of_the_target_gets_it(self, raw: Raw) -> None:
        alice, bob1, bob2 = await raw("alice"), await raw("bob"), await raw("bob")
        await alice.send_str(single("bob", "to both", "m1"))
        for ws in (bob1, bob2):
            assert (await frames_until(ws, lambda f: True))[0]["msg"]["content"] == "to both"

    async def test_custom_types_and_extra_pass_through(self, raw: Raw) -> None:
        alice, bob = await raw("alice"), await raw("bob")
        extra = {"lat": 31.2, "lng": 121.5, "note": ["a", 1]}
        await alice.send_str(single("bob", "", "g1", msgType="map", extra=extra))
        got = (await frames_until(bob, lambda f: True))[0]
        assert (got["msgType"], got["extra"]) == ("map", extra)

    async def test_a_repeated_whole_message_is_acked_and_delivered_once(self, raw: Raw) -> None:
        alice, bob = await raw("alice"), await raw("bob")
        for _ in range(2):
            await alice.send_str(single("bob", "once", "same-id"))
            assert (await frames_until(alice, ack_or_error))[-1]["type"] == "ack"
        await alice.send_str(single("bob", "next", "other-id"))
        got = await frames_until(bob, lambda f: f["msg"]["content"] == "next")
        assert [f["msg"]["content"] for f in got] == ["once", "next"]


class TestOffline:
    async def test_frames_for_an_offline_user_wait_and_arrive_in_order(
        self, raw: Raw, server: WsChatServer
    ) -> None:
        alice = await raw("alice")
        for i in range(5):
            await alice.send_str(single("dave", f"m{i}", f"o{i}"))
        await frames_until(alice, lambda f: f["type"] == "ack" and f["msg"]["msgId"] == "o4")
        assert server.queued("dave") == 5
        dave = await raw("dave")
        got = await frames_until(dave, lambda f: f["msg"]["content"] == "m4")
        assert [f["msg"]["content"] for f in got] == [f"m{i}" for i in range(5)]
        assert server.queued("dave") == 0

    async def test_the_queue_is_bounded_and_the_sender_is_told(self, raw: Raw) -> None:
        async with WsChatServer(max_offline=2) as small, aiohttp.ClientSession() as http:
            alice = await http.ws_connect(f"{small.url}?token={small.issue_token('alice')}")
            answers = []
            for i in range(3):
                await alice.send_str(single("erin", f"m{i}", f"q{i}"))
                answers.append((await frames_until(alice, ack_or_error))[-1])
            await alice.close()
            assert [a["type"] for a in answers] == ["ack", "ack", "error"]
            assert "offline queue full" in answers[2]["msg"]["content"]
            assert answers[2]["msg"]["msgId"] == "q2"
            assert small.queued("erin") == 2


class TestGroups:
    async def test_a_group_of_three_with_join_and_leave(
        self, raw: Raw, server: WsChatServer
    ) -> None:
        a, b, c = await raw("a"), await raw("b"), await raw("c")
        for ws in (a, b, c):
            await ws.send_str(json.dumps({"type": "join", "target": "g1",
                                          "msg": {"msgId": "j"}}))
            assert (await frames_until(ws, ack_or_error))[-1]["type"] == "ack"
        assert server.members("g1") == {"a", "b", "c"}
        await a.send_str(json.dumps({"type": "group", "target": "g1",
                                     "msg": {"msgId": "g-1", "content": "hello all"}}))
        for ws in (b, c):
            got = (await frames_until(ws, lambda f: True))[0]
            assert (got["type"], got["source"], got["msg"]["content"]) == (
                "group", "a", "hello all")
        await c.send_str(json.dumps({"type": "leave", "target": "g1", "msg": {"msgId": "l"}}))
        await frames_until(c, ack_or_error)
        await b.send_str(json.dumps({"type": "group", "target": "g1",
                                     "msg": {"msgId": "g-2", "content": "c left"}}))
        got = (await frames_until(a, lambda f: f["type"] == "group"))[-1]
        assert got["msg"]["content"] == "c left"
        await c.send_str(single("a", "still here", "s-1"))  # c still reads: nothing from g1
        await frames_until(c, ack_or_error)
        assert (await frames_until(a, lambda f: f["type"] == "single"))[-1]["source"] == "c"
        assert server.members("g1") == {"a", "b"}

    async def test_sending_to_a_group_not_joined_is_refused(self, raw: Raw) -> None:
        a = await raw("a")
        await a.send_str(json.dumps({"type": "group", "target": "g9",
                                     "msg": {"msgId": "x", "content": "hi"}}))
        answer = (await frames_until(a, ack_or_error))[-1]
        assert answer["type"] == "error" and "join" in answer["msg"]["content"]


class TestBadFrames:
    @pytest.mark.parametrize(("text", "reason"), [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "whisper", "target": "b"}', "type must be one of"),
        ('{"type": "single"}', "target is required"),
        ('{"type": "single", "target": true}', "target must be a string or number"),
        ('{"type": "single", "target": "b", "msg": "hi"}', "msg must be an object"),
        ('{"type": "single", "target": "b", "msg": {"content": 5}}', "msg.content"),
    ])
    async def test_a_malformed_frame_gets_an_error_and_the_connection_stays(
        self, raw: Raw, text: str, reason: str
    ) -> None:
        alice, bob = await raw("alice"), await raw("bob")
        await alice.send_str(text)
        answer = (await frames_until(alice, lambda f: True))[0]
        assert answer["type"] == "error"
        assert reason in answer["msg"]["content"]
        await alice.send_str(single("bob", "after the bad one", "ok"))
        assert (await frames_until(bob, lambda f: True))[0]["msg"]["content"] == (
            "after the bad one")

    async def test_an_oversized_frame_is_refused_and_the_connection_stays(self) -> None:
        async with WsChatServer(max_frame_bytes=2048) as small, aiohttp.ClientSession() as http:
            alice = await http.ws_connect(f"{small.url}?token={small.issue_token('alice')}")
            await alice.send_str(single("bob", "x" * 4000, "big"))
            answer = (await frames_until(alice, lambda f: True))[0]
            assert answer["type"] == "error" and "over 2048 bytes" in answer["msg"]["content"]
            await alice.send_str(single("bob", "small", "small"))
            assert (await frames_until(alice, lambda f: True))[0]["type"] == "ack"
            await alice.close()
