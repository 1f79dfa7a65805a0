"""Boards: ``bot/board`` (one member or a whole chat), ``bot/board-all`` (everyone), their
dismiss calls, and ``expireTime``."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from tests.emulator._http import post_json
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


async def call(session: aiohttp.ClientSession, emu: Emulator, endpoint: str,
               payload: dict[str, Any]) -> dict[str, Any]:
    return await post_json(session, emu, endpoint, payload)


CHAT = {"chatId": "g1", "chatType": "group"}


class TestBoards:
    async def test_chat_board_member_board_and_board_for_everyone(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A member sees their own board, else the chat's, else the one for everyone."""
        for endpoint, payload in (
            ("board-all", {"contentType": "text", "content": "all", "expireTime": 0}),
            ("board", {**CHAT, "contentType": "markdown", "content": "**chat**"}),
            ("board", {**CHAT, "memberId": "u1", "contentType": "html", "content": "<i>u1</i>"}),
        ):
            answer = await call(session, emu, endpoint, payload)
            assert answer == {"code": 1, "msg": "success"}  # the documented answer has no data
        assert emu.board("group:g1", "u1").content == "<i>u1</i>"  # type: ignore[union-attr]
        assert emu.board("group:g1", "u2").content == "**chat**"  # type: ignore[union-attr]
        assert emu.board("group:g1").scope == "chat"  # type: ignore[union-attr]
        assert emu.board("user:9").content == "all"  # type: ignore[union-attr]
        assert [b.scope for b in emu.boards] == ["all", "chat", "member"]

    async def test_dismiss_one_member_then_the_chat_then_everyone(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """board-dismiss with memberId removes that member's; without, every board of the
        chat; board-all-dismiss (no body fields) the board for everyone."""
        await call(session, emu, "board-all", {"contentType": "text", "content": "all"})
        await call(session, emu, "board", {**CHAT, "contentType": "text", "content": "chat"})
        await call(session, emu, "board", {**CHAT, "memberId": "u1", "contentType": "text",
                                           "content": "u1"})
        assert (await call(session, emu, "board-dismiss", {**CHAT, "memberId": "u1"}))["code"] == 1
        assert emu.board("group:g1", "u1").content == "chat"  # type: ignore[union-attr]
        await call(session, emu, "board", {**CHAT, "memberId": "u1", "contentType": "text",
                                           "content": "u1"})
        await call(session, emu, "board-dismiss", CHAT)
        assert emu.board("group:g1", "u1").content == "all"  # type: ignore[union-attr]
        url = f"{emu.base_url}/bot/board-all-dismiss?token={emu.token}"
        async with session.post(url) as resp:  # no body at all, as nonebot's adapter sends it
            assert (await resp.json())["code"] == 1
        assert emu.boards == []

    async def test_expire_time_is_a_unix_time_in_seconds(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A board whose expireTime has passed is gone; 0 and future times are shown."""
        now = int(time.time())
        await call(session, emu, "board", {**CHAT, "contentType": "text", "content": "later",
                                           "expireTime": now + 600})
        await call(session, emu, "board", {"chatId": "g2", "chatType": "group",
                                           "contentType": "text", "content": "gone",
                                           "expireTime": now - 1})
        assert emu.board("group:g1").expire_time == now + 600  # type: ignore[union-attr]
        assert emu.board("group:g2") is None

    async def test_recv_id_and_recv_type_are_accepted_spellings(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """recvId/recvType are the deprecated names of chatId/chatType (and the official
        Python SDK mixes chatId with recvType)."""
        payload = {"chatId": "g1", "recvType": "group", "memberId": "", "contentType": "text",
                   "content": "mixed", "expireTime": 0}
        assert (await call(session, emu, "board", payload))["code"] == 1
        assert emu.board("group:g1").content == "mixed"  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        ("payload", "needle"),
        [
            ({**CHAT, "contentType": "text", "content": ""}, "看板内容不能为空"),
            ({**CHAT, "contentType": "image", "content": "x"}, "contentType"),
            ({**CHAT, "contentType": "text", "content": "x", "expireTime": -5}, "expireTime"),
            ({"chatId": "g1", "contentType": "text", "content": "x"}, "chatType"),
        ],
    )
    async def test_bad_boards_are_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, payload: dict[str, Any],
        needle: str,
    ) -> None:
        """Empty content, a type other than text/markdown/html, a negative expireTime or a
        missing chat type are answered 1002 naming the problem."""
        answer = await call(session, emu, "board", payload)
        assert answer["code"] == 1002 and needle in answer["msg"]
        assert emu.boards == []
