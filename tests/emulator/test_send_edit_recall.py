"""``bot/send``, ``bot/edit`` and ``bot/recall`` over raw HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.emulator._http import (
    one_shot,
    post_json,
)
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


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
