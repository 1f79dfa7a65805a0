"""The stand-ins for YunHu's web API lookups (``bot-info``, ``user/homepage``,
``group/group-info``) that real clients make, answered from the emulator's world."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


async def web(session: aiohttp.ClientSession, emu: Emulator, method: str, path: str,
              **kw: Any) -> dict[str, Any]:
    async with session.request(method, f"{emu.url}v1/{path}", **kw) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


class TestWebApi:
    async def test_bot_info_names_the_emulated_bot_without_its_token(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """POST /v1/bot/bot-info {botId} answers data.bot with the fields
        nonebot-adapter-yunhu's BotInfo requires; its ``token`` is empty."""
        emu.add_user("fan")
        answer = await web(session, emu, "POST", "bot/bot-info", json={"botId": emu.bot_id})
        bot = answer["data"]["bot"]
        assert (answer["code"], bot["botId"], bot["nickname"], bot["headcount"]) == (
            1, emu.bot_id, "Emulator Bot", 1)
        assert bot["token"] == "" and emu.token not in str(answer)
        assert set(bot) >= {"id", "botId", "nickname", "nicknameId", "avatarId", "avatarUrl",
                            "token", "link", "introduction", "createBy", "createTime",
                            "headcount", "private", "uri"}

    async def test_unknown_ids_get_an_empty_record(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Like the web API, an unknown id is code 1 with an empty id in the record."""
        bot = await web(session, emu, "POST", "bot/bot-info", json={"botId": "999"})
        user = await web(session, emu, "GET", "user/homepage", params={"userId": "nobody"})
        group = await web(session, emu, "POST", "group/group-info", json={"groupId": "none"})
        assert (bot["data"]["bot"]["botId"], user["data"]["user"]["userId"],
                group["data"]["group"]["groupId"]) == ("", "", "")

    async def test_users_and_groups_come_from_the_world(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """user/homepage and group/group-info describe the world's users and groups."""
        emu.add_user("u1", "小红", avatar_url="http://127.0.0.1/a.png")
        emu.add_group("g1", "测试群", members=["u1", "u2"])
        user = (await web(session, emu, "GET", "user/homepage",
                          params={"userId": "u1"}))["data"]["user"]
        group = (await web(session, emu, "POST", "group/group-info",
                           json={"groupId": "g1"}))["data"]["group"]
        assert (user["nickname"], user["avatarUrl"]) == ("小红", "http://127.0.0.1/a.png")
        assert (group["name"], group["headcount"]) == ("测试群", 3)  # two users and the bot

    async def test_a_missing_id_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """No botId / userId / groupId: 1002 naming the field."""
        answer = await web(session, emu, "POST", "bot/bot-info", json={})
        assert answer["code"] == 1002 and "botId" in answer["msg"]
