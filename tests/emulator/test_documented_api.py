"""Every request/response example of ``YUNHU_API.md`` (the project's contract), against the
emulator over raw HTTP. ``bot/messages`` has its own file (test_message_list.py)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.emulator._http import Body, get_messages, one_shot, post_json, post_stream, stream_url
from yunhu_stream.emulator import STREAM_TIP, Emulator

pytestmark = pytest.mark.anyio

TEXT = {"recvId": "123", "recvType": "group", "contentType": "text", "content": {"text": "hi"}}


async def raw(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, str, Any]:
    async with session.post(url, **kw) as resp:
        body = await resp.text()
        return resp.status, resp.content_type, json.loads(body)


class TestTransport:
    async def test_every_answer_is_http_200_with_the_envelope(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Success and failure alike: HTTP 200, JSON ``{code, msg[, data]}``, code 1 = success."""
        url = f"{emu.base_url}/bot/send?token={emu.token}"
        ok = await raw(session, url, json=TEXT)
        bad = await raw(session, url, json={**TEXT, "recvType": "nobody"})
        assert ok[:2] == bad[:2] == (200, "application/json")
        assert ok[2]["code"] == 1 and ok[2]["msg"] == "success" and "data" in ok[2]
        assert bad[2]["code"] == 1002 and set(bad[2]) == {"code", "msg"}

    async def test_the_token_is_a_query_parameter_and_a_wrong_one_is_1003(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """``token=`` in the query authenticates; a wrong or missing one is answered 1003."""
        for token in ("wrong", ""):
            url = f"{emu.base_url}/bot/send?token={token}"
            assert (await raw(session, url, json=TEXT))[2]["code"] == 1003
        assert emu.chat("group", "123") == []

    async def test_over_ten_a_second_is_1007(self, session: aiohttp.ClientSession) -> None:
        """The documented limit (10 requests per second per endpoint) answers 1007."""
        async with Emulator(rate_limit=10) as emu:
            codes = [(await post_json(session, emu, "send", TEXT))["code"] for _ in range(11)]
        assert codes[:10] == [1] * 10
        assert codes[10] == 1007

    async def test_empty_content_is_1002_with_the_documented_msg(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """An empty text is ``1002`` "消息内容不能为空" on send and on send-stream."""
        sent = await post_json(session, emu, "send", {**TEXT, "content": {"text": ""}})
        body = Body()
        body.end()
        streamed = await post_stream(session, stream_url(emu), body)
        assert (sent["code"], sent["msg"]) == (1002, "消息内容不能为空")
        assert (streamed["code"], streamed["msg"]) == (1002, "消息内容不能为空")

    async def test_a_group_without_the_bot_is_minus_one_in_strict_mode(
        self, session: aiohttp.ClientSession
    ) -> None:
        """Seen in practice: -1 with a readable msg when the bot is not in the group."""
        async with Emulator(strict=True) as emu:
            emu.add_group("123", has_bot=False)
            answer = await post_json(session, emu, "send", TEXT)
        assert answer["code"] == -1
        assert answer["msg"] == f"群(ID:123)中未添加当前机器人(ID: {emu.bot_id})。"

    async def test_unknown_paths_answer_the_envelope(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A path or method the API does not have is answered with the JSON envelope."""
        status, ctype, body = await raw(session, f"{emu.base_url}/bot/nothing?token={emu.token}")
        assert (status, ctype, body["code"]) == (404, "application/json", -1)
        assert "/open-apis/v1/bot/nothing" in body["msg"]
        async with session.get(f"{emu.base_url}/bot/send?token={emu.token}") as resp:
            assert (resp.status, (await resp.json())["code"]) == (405, -1)


class TestSendStream:
    async def test_the_seed_documents_response_example(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """The response once the body ended: ``{code 1, msg success, data.messageInfo{msgId,
        recvId, recvType}}``, recvType as given (the seed's example is a user)."""
        answer = await one_shot(session, emu, "Message 0Message 1", recv_id="7058262",
                                recv_type="user")
        assert answer["code"] == 1 and answer["msg"] == "success"
        info = answer["data"]["messageInfo"]
        assert set(info) == {"msgId", "recvId", "recvType"}
        assert (info["recvId"], info["recvType"]) == ("7058262", "user")
        assert emu.message(info["msgId"]).text == "Message 0Message 1"  # type: ignore[union-attr]

    @pytest.mark.parametrize("content_type", ["html", "image", "file"])
    async def test_only_text_and_markdown_stream(
        self, emu: Emulator, session: aiohttp.ClientSession, content_type: str
    ) -> None:
        """``contentType`` of send-stream is text or markdown only."""
        answer = await one_shot(session, emu, "x", content_type=content_type)
        assert answer["code"] == 1002

    async def test_a_streamed_message_is_listed_with_the_ai_tip(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """In the message list a streamed message's content carries ``tip``."""
        await one_shot(session, emu, "streamed")
        [item] = (await get_messages(session, emu, **{"chat-id": "123", "chat-type": "group",
                                                       "before": "1"}))["data"]["list"]
        assert item["content"]["tip"] == STREAM_TIP == "本内容由AI生成，仅供参考"

    async def test_a_parent_id_is_accepted_and_kept(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """send-stream accepts a ``parentId`` query parameter (ErisPulse sends one)."""
        body = Body()
        body.send("quoted")
        body.end()
        answer = await post_stream(session, stream_url(emu) + "&parentId=abc", body)
        assert answer["code"] == 1
        assert emu.chat("group", "123")[-1].parent_id == "abc"


class TestSend:
    @pytest.mark.parametrize("content_type", ["text", "markdown", "html"])
    async def test_text_types_answer_message_info(
        self, emu: Emulator, session: aiohttp.ClientSession, content_type: str
    ) -> None:
        """``bot/send`` answers ``data.messageInfo{msgId, recvId, recvType}``."""
        answer = await post_json(session, emu, "send", {**TEXT, "contentType": content_type})
        info = answer["data"]["messageInfo"]
        assert (info["recvId"], info["recvType"]) == ("123", "group")
        assert emu.message(info["msgId"]).content_type == content_type  # type: ignore[union-attr]

    async def test_buttons_as_rows_or_as_one_flat_row(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """``buttons`` may be rows of buttons or a flat list (one row), as the official SDKs
        send them; actionType 1 opens ``url``, 2 copies ``value``, 3 reports ``value``."""
        row = [
            {"text": "open", "actionType": 1, "url": "http://127.0.0.1/"},
            {"text": "copy", "actionType": 2, "value": "v"},
            {"text": "more", "actionType": 3, "value": "more"},
        ]
        for buttons in ([row], row):
            content = {"text": "pick", "buttons": buttons}
            answer = await post_json(session, emu, "send", {**TEXT, "content": content})
            assert answer["code"] == 1
        assert [m.buttons for m in emu.chat("group", "123")] == [[row], [row]]

    async def test_a_mention_is_at_name_zero_width_space_and_the_id_in_at(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A mention: ``@Name`` + U+200B in the text, the user id in ``at``; with ``parentId``."""
        content = {"text": "@小明\u200b hello", "at": ["7756242"]}
        await post_json(session, emu, "send", {**TEXT, "content": content, "parentId": "p"})
        [message] = emu.chat("group", "123")
        assert (message.text, message.at, message.parent_id) == (content["text"], ["7756242"], "p")


class TestBatchSend:
    async def test_success_count_and_list(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """``bot/batch_send`` answers ``successCount`` and ``successList[{msgId, recvId,
        recvType}]``, one message in each chat."""
        payload = {"recvIds": ["1", "2", "3"], "recvType": "user", "contentType": "markdown",
                   "content": {"text": "**all**"}}
        answer = await post_json(session, emu, "batch_send", payload)
        assert answer["code"] == 1
        data = answer["data"]
        assert data["successCount"] == 3
        assert [(i["recvId"], i["recvType"]) for i in data["successList"]] == [
            ("1", "user"), ("2", "user"), ("3", "user")]
        for item in data["successList"]:
            [message] = emu.chat("user", item["recvId"])
            assert (message.msg_id, message.text) == (item["msgId"], "**all**")

    async def test_strict_mode_leaves_unreachable_chats_out(
        self, session: aiohttp.ClientSession
    ) -> None:
        """In strict mode a user who has not added the bot is not sent to, nor listed."""
        async with Emulator(strict=True) as emu:
            emu.add_user("1")
            emu.add_user("2", follows_bot=False)
            payload = {"recvIds": ["1", "2"], "recvType": "user", "contentType": "text",
                       "content": {"text": "hi"}}
            data = (await post_json(session, emu, "batch_send", payload))["data"]
            assert (data["successCount"], [i["recvId"] for i in data["successList"]]) == (1, ["1"])
            assert emu.chat("user", "2") == []

    @pytest.mark.parametrize("ids", [None, [], "1", [""], [True]])
    async def test_bad_recv_ids_are_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, ids: Any
    ) -> None:
        """``recvIds`` must be a non-empty list of ids; nothing is sent otherwise."""
        payload = {"recvIds": ids, "recvType": "user", "contentType": "text",
                   "content": {"text": "hi"}}
        answer = await post_json(session, emu, "batch_send", payload)
        assert answer["code"] == 1002 and "recvIds" in answer["msg"]
        assert emu.chats() == []


class TestEditRecall:
    async def test_edit_answers_success_count(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """``bot/edit`` answers ``data.successCount``; recvId/recvType must match the original."""
        msg_id = (await post_json(session, emu, "send", TEXT))["data"]["messageInfo"]["msgId"]
        edit = {"msgId": msg_id, "recvId": "123", "recvType": "group", "contentType": "html",
                "content": {"text": "<b>new</b>"}}
        answer = await post_json(session, emu, "edit", edit)
        assert (answer["code"], answer["data"]) == (1, {"successCount": 1})
        other_chat = await post_json(session, emu, "edit", {**edit, "recvId": "999"})
        assert other_chat["code"] == -1
        assert emu.message(msg_id).text == "<b>new</b>"  # type: ignore[union-attr]

    @pytest.mark.parametrize("content_type", ["image", "file"])
    async def test_edit_to_image_or_file_is_accepted_without_effect(
        self, emu: Emulator, session: aiohttp.ClientSession, content_type: str
    ) -> None:
        """image/file edits are accepted and change nothing, as documented."""
        msg_id = (await post_json(session, emu, "send", TEXT))["data"]["messageInfo"]["msgId"]
        edit = {"msgId": msg_id, "recvId": "123", "recvType": "group",
                "contentType": content_type, "content": {"imageKey": "k", "fileKey": "k"}}
        answer = await post_json(session, emu, "edit", edit)
        assert answer["code"] == 1
        message = emu.message(msg_id)
        assert message is not None
        assert (message.text, message.content_type, message.edits) == ("hi", "text", 0)

    async def test_video_edit_is_1002(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        """video is not an edit content type."""
        msg_id = (await post_json(session, emu, "send", TEXT))["data"]["messageInfo"]["msgId"]
        edit = {"msgId": msg_id, "recvId": "123", "recvType": "group", "contentType": "video",
                "content": {"videoKey": "k"}}
        assert (await post_json(session, emu, "edit", edit))["code"] == 1002

    async def test_recall_answers_code_and_msg_without_data(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """``bot/recall`` (msgId, chatId, chatType) answers ``{code, msg}`` with no ``data``."""
        msg_id = (await post_json(session, emu, "send", TEXT))["data"]["messageInfo"]["msgId"]
        answer = await post_json(
            session, emu, "recall", {"msgId": msg_id, "chatId": "123", "chatType": "group"}
        )
        assert answer == {"code": 1, "msg": "success"}
        assert emu.chat("group", "123") == []
