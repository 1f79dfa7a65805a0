"""``GET bot/messages``: order, anchor and counts as YunHu documents them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.emulator._http import get_messages, post_json
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


async def fill(session: aiohttp.ClientSession, emu: Emulator, n: int) -> list[str]:
    """Send m0 … m{n-1} to group 123; their msgIds, oldest first."""
    return [
        (
            await post_json(
                session,
                emu,
                "send",
                {
                    "recvId": "123",
                    "recvType": "group",
                    "contentType": "text",
                    "content": {"text": f"m{i}"},
                },
            )
        )["data"]["messageInfo"]["msgId"]
        for i in range(n)
    ]


def texts(answer: dict[str, Any]) -> list[str]:
    return [m["content"]["text"] for m in answer["data"]["list"]]


GROUP = {"chat-id": "123", "chat-type": "group"}


class TestDocumentedCounts:
    """The documented examples: with message-id, before=10 → 11, before=10&after=10 → 21."""

    async def test_before_10_around_an_anchor_gives_11_including_it(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """before=10 with message-id lists the anchor and the 10 before it, newest first."""
        ids = await fill(session, emu, 30)
        answer = await get_messages(
            session, emu, **GROUP, **{"message-id": ids[15], "before": "10"}
        )
        assert answer["code"] == 1
        assert [m["msgId"] for m in answer["data"]["list"]] == ids[5:16][::-1]
        assert answer["data"]["total"] == 11

    async def test_before_and_after_10_give_21(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """before=10&after=10 lists 10 older, the anchor and 10 newer: 21, newest first."""
        ids = await fill(session, emu, 30)
        answer = await get_messages(
            session, emu, **GROUP, **{"message-id": ids[15], "before": "10", "after": "10"}
        )
        assert [m["msgId"] for m in answer["data"]["list"]] == ids[5:26][::-1]
        assert answer["data"]["total"] == 21

    async def test_before_1_puts_the_anchor_first(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """get_msg-style lookup (message-id, before=1): list[0] is the anchor itself."""
        ids = await fill(session, emu, 3)
        for msg_id in ids:  # the oldest too: it has nothing before it
            answer = await get_messages(
                session, emu, **GROUP, **{"message-id": msg_id, "before": "1"}
            )
            assert answer["data"]["list"][0]["msgId"] == msg_id

    async def test_counts_default_to_zero(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Neither before nor after: 0 each, so the anchor alone, or nothing without one."""
        ids = await fill(session, emu, 3)
        alone = await get_messages(session, emu, **GROUP, **{"message-id": ids[1]})
        assert [m["msgId"] for m in alone["data"]["list"]] == [ids[1]]
        nothing = await get_messages(session, emu, **GROUP)
        assert nothing["code"] == 1
        assert nothing["data"] == {"list": [], "total": 0}

    async def test_window_is_cut_at_the_ends_of_the_history(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Counts larger than the history give what there is."""
        ids = await fill(session, emu, 4)
        answer = await get_messages(
            session, emu, **GROUP, **{"message-id": ids[1], "before": "10", "after": "10"}
        )
        assert [m["msgId"] for m in answer["data"]["list"]] == ids[::-1]
        latest = await get_messages(session, emu, **GROUP, before="10")
        assert [m["msgId"] for m in latest["data"]["list"]] == ids[::-1]


class TestLatest:
    async def test_latest_n_newest_first(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Without message-id, before=N gives the latest N messages, newest first."""
        await fill(session, emu, 5)
        answer = await get_messages(session, emu, **GROUP, before="3")
        assert answer["code"] == 1
        assert texts(answer) == ["m4", "m3", "m2"]
        assert answer["data"]["total"] == 3

    async def test_recalled_messages_are_left_out(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """A recalled message is gone from the list; the window counts only what is shown."""
        ids = await fill(session, emu, 3)
        await post_json(
            session, emu, "recall", {"msgId": ids[1], "chatId": "123", "chatType": "group"}
        )
        answer = await get_messages(session, emu, **GROUP, before="5")
        assert texts(answer) == ["m2", "m0"]

    async def test_items_have_every_documented_field(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """Each item has msgId, parentId, senderId, senderType, senderNickname, contentType,
        content, sendTime (ms), commandName and commandId."""
        await fill(session, emu, 1)
        [item] = (await get_messages(session, emu, **GROUP, before="1"))["data"]["list"]
        assert set(item) == {
            "msgId",
            "parentId",
            "senderId",
            "senderType",
            "senderNickname",
            "contentType",
            "content",
            "sendTime",
            "commandName",
            "commandId",
        }
        assert item["senderId"] == emu.bot_id and item["senderType"] == "bot"
        assert item["sendTime"] > 10**12  # milliseconds


class TestInvalidQueries:
    @pytest.mark.parametrize(
        "params",
        [
            {"chat-type": "group", "before": "1"},
            {"chat-id": "1", "chat-type": "x", "before": "1"},
            {"chat-id": "1", "chat-type": "group", "before": "-3"},
            {"chat-id": "1", "chat-type": "group", "after": "many"},
        ],
    )
    async def test_invalid_query_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> None:
        """Missing chat, bad chat type or a bad count are answered 1002."""
        answer = await get_messages(session, emu, **params)
        assert answer["code"] == 1002
        assert "data" not in answer

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
