"""The world: users and groups, strict mode, and users whose messages and clicks reach a bot
under test through its webhook, with its replies in the same history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests._support import serving
from tests.emulator._http import get_messages, post_json
from yunhu_stream.app import BotApp
from yunhu_stream.emulator import Emulator, WebhookError
from yunhu_stream.events import parse_event

pytestmark = pytest.mark.anyio


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A bare webhook that records what it receives: (url, bodies)."""
    bodies: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serving(app) as base:
        yield f"{base}/hook", bodies


class TestEndToEnd:
    async def test_a_user_in_a_group_talks_to_a_bot_that_streams_its_reply(self) -> None:
        """A user's group message reaches the bot's webhook, the bot streams a reply, and the
        chat shows the user's message and then the reply, each with its sender."""
        async with Emulator() as emu:
            emu.add_user("u1", "小红")
            emu.add_group("g1", "测试群", members=["u1"])
            app = BotApp(emu.token, base_url=emu.base_url)

            @app.on_message()
            async def answer(event: Any, bot: Any) -> None:
                async with bot.stream(event) as s:
                    await s.write(f"{event.sender.nickname} said: ")
                    await s.write(event.text)

            emu.webhook_url = await app.start()
            try:
                delivery = await emu.user_says("group:g1", "你好", user="u1")
                reply = await emu.wait_for_message(
                    "group", "g1", lambda m: m.sender_type == "bot" and not m.streaming
                )
            finally:
                await app.stop()
            assert delivery.status == 200 and delivery.event_type == "message.receive.normal"
            said, replied = emu.chat("group", "g1")
            assert (said.sender_type, said.sender_id, said.sender_nickname, said.text) == (
                "user", "u1", "小红", "你好")
            assert replied is reply and reply.streamed
            assert (reply.sender_id, reply.text) == (emu.bot_id, "小红 said: 你好")

    async def test_the_message_list_shows_users_and_the_bot(
        self, session: aiohttp.ClientSession
    ) -> None:
        """bot/messages lists what users said (senderType user) with the bot's messages."""
        async with Emulator() as emu:
            emu.add_user("u1", "小红")
            await emu.user_says("user:u1", "/help", command="help")
            await post_json(session, emu, "send", {"recvId": "u1", "recvType": "user",
                                                   "contentType": "text",
                                                   "content": {"text": "help text"}})
            answer = await get_messages(session, emu, **{"chat-id": "u1", "chat-type": "user",
                                                         "before": "5"})
        newest, oldest = answer["data"]["list"]
        assert (newest["senderType"], newest["content"]["text"]) == ("bot", "help text")
        assert (oldest["senderType"], oldest["senderId"], oldest["senderNickname"]) == (
            "user", "u1", "小红")
        assert (oldest["commandName"], oldest["commandId"]) == ("help", 1)


class TestUserActions:
    async def test_each_action_posts_its_event(
        self, emu: Emulator, inbox: tuple[str, list[dict[str, Any]]],
        session: aiohttp.ClientSession,
    ) -> None:
        """says, clicks, follows, unfollows, joins, leaves and menu presses each POST the
        event YunHu sends, which parse_event reads back as such."""
        url, bodies = inbox
        emu.webhook_url = url
        emu.add_group("g1", members=["u1"])
        sent = await post_json(session, emu, "send", {
            "recvId": "g1", "recvType": "group", "contentType": "text",
            "content": {"text": "pick", "buttons": [{"text": "more", "actionType": 3,
                                                     "value": "v-more"}]}})
        msg_id = sent["data"]["messageInfo"]["msgId"]
        await emu.user_says("group:g1", "hi", user="u1")
        await emu.user_clicks(msg_id, "more", user="u1")
        await emu.user_follows("u2")
        await emu.user_unfollows("u2")
        await emu.user_joins("g1", "u3")
        await emu.user_leaves("g1", "u1")
        await emu.user_presses_menu("M1", chat="user:u2")
        assert [b["header"]["eventType"] for b in bodies] == [
            "message.receive.normal", "button.report.inline", "bot.followed", "bot.unfollowed",
            "group.join", "group.leave", "bot.shortcut.menu"]
        events = [parse_event(b) for b in bodies]
        assert [str(e.reply_recipient) for e in events] == [
            "group:g1", "group:g1", "user:u2", "user:u2", "group:g1", "group:g1", "user:u2"]
        assert bodies[1]["event"]["value"] == "v-more"
        assert bodies[1]["event"]["msgId"] == msg_id
        assert emu.groups["g1"].members == ["u3"]
        assert emu.users["u2"].follows_bot is False
        assert len(emu.deliveries) == 7

    async def test_clicking_needs_a_report_button(self, emu: Emulator) -> None:
        """Only an actionType-3 button reports a click; others are a clear ValueError."""
        emu.add_user("u1")
        await emu.user_says("user:u1", "x")
        [message] = emu.chat("user", "u1")
        with pytest.raises(ValueError, match="no report button 'more'"):
            await emu.user_clicks(message, "more")

    async def test_without_a_webhook_the_message_is_only_recorded(self, emu: Emulator) -> None:
        """With no webhook_url, user_says records the message and sends nothing."""
        delivery = await emu.user_says("group:g", "hello")
        assert (delivery.url, delivery.status) == (None, None)
        assert [m.text for m in emu.chat("group", "g")] == ["hello"]

    async def test_a_failing_webhook_raises_and_keeps_the_message(
        self, emu: Emulator, free_tcp_port: int
    ) -> None:
        """A webhook that cannot be reached raises WebhookError carrying the delivery."""
        emu.webhook_url = f"http://127.0.0.1:{free_tcp_port}/hook"
        with pytest.raises(WebhookError) as caught:
            await emu.user_says("group:g", "hello")
        assert caught.value.delivery.status is None
        assert emu.chat("group", "g")[0].text == "hello"

    async def test_a_private_chat_is_with_its_user(self, emu: Emulator) -> None:
        """In a private chat the speaker is that chat's user; another user is an error."""
        with pytest.raises(ValueError, match="private chat"):
            await emu.user_says("user:u1", "hi", user="u2")
        assert emu.chats() == []


class TestStrictMode:
    async def test_off_by_default_any_chat_is_reachable(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Without strict mode any recvId is accepted, as before the world existed."""
        answer = await post_json(session, emu, "send", {"recvId": "nobody", "recvType": "user",
                                                        "contentType": "text",
                                                        "content": {"text": "hi"}})
        assert answer["code"] == 1

    @pytest.mark.parametrize(
        ("recv_type", "recv_id", "code", "msg"),
        [
            ("user", "stranger", 1003, "recvId值错误，该用户不是机器人好友"),
            ("user", "unfollowed", 1003, "recvId值错误，该用户不是机器人好友"),
            ("group", "nogroup", -1, "群(ID:nogroup)不存在。"),
            ("group", "nobot", -1, "群(ID:nobot)中未添加当前机器人(ID: 37090343)。"),
        ],
    )
    async def test_unreachable_chats_get_the_documented_codes(
        self, session: aiohttp.ClientSession, recv_type: str, recv_id: str, code: int,
        msg: str,
    ) -> None:
        """Strict mode: 1003 for a user who has not added the bot, -1 for a group without it,
        on send, send-stream and the message list alike."""
        async with Emulator(strict=True) as emu:
            emu.add_user("unfollowed", follows_bot=False)
            emu.add_group("nobot", has_bot=False)
            sent = await post_json(session, emu, "send", {
                "recvId": recv_id, "recvType": recv_type, "contentType": "text",
                "content": {"text": "hi"}})
            url = (f"{emu.base_url}/bot/send-stream?token={emu.token}&recvId={recv_id}"
                   f"&recvType={recv_type}&contentType=text")
            async with session.post(url, data=b"hi") as resp:
                streamed = await resp.json()
            listed = await get_messages(session, emu, **{"chat-id": recv_id,
                                                         "chat-type": recv_type})
            assert emu.chats() == []
        assert {(a["code"], a["msg"]) for a in (sent, streamed, listed)} == {(code, msg)}

    async def test_strict_can_be_switched_while_running(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """emu.strict is a switch; users who follow the bot stay reachable."""
        emu.add_user("fan")
        emu.strict = True
        for user, code in (("fan", 1), ("other", 1003)):
            answer = await post_json(session, emu, "send", {"recvId": user, "recvType": "user",
                                                            "contentType": "text",
                                                            "content": {"text": "hi"}})
            assert answer["code"] == code
        with pytest.raises(ValueError, match="strict"):
            emu.strict = "yes"  # type: ignore[assignment]
