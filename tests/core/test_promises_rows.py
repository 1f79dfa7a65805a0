"""Rows of docs/reliability.md's fault table that had no test for one of their columns
(issue 17): the ``recover=False`` column and the ``delivery`` the caller gets."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from tests.core.test_failure_edge_cases import PIECES, TRANSCRIPT, Gateway, make_bot
from yunhu_stream import errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

HANG = 30  # seconds: turns a hang into a failure; measures nothing


async def test_gateway_502_mid_body_without_recovery_raises_http_status(
    emulator: Emulator,
) -> None:
    gateway = Gateway(emulator, cut_after=len(PIECES[0].encode()))
    async with gateway as base_url, make_bot(emulator, base_url=base_url, recover=False) as bot:
        s = bot.stream(to="group:42")
        await s.write(PIECES[0])
        with anyio.fail_after(HANG):
            await gateway.cut.wait()
        with pytest.raises(errors.HTTPStatusError) as info:
            for _ in range(500):  # until the stream reports it (no timing assumed)
                await s.write("x")
                await asyncio.sleep(0.01)
        assert info.value.status == 502 and info.value.text == s.text
        with pytest.raises(errors.HTTPStatusError):
            await s.close()


async def test_1007_after_the_message_took_effect_is_confirmed_by_an_edit(
    emulator: Emulator,
) -> None:
    emulator.faults.reject(1007, when="after_body")
    async with make_bot(emulator) as bot, bot.stream(to="group:42") as s:
        for piece in PIECES:
            await s.write(piece)
    assert s.message_info is not None and s.message_info.delivery == "stream+edit"
    assert [m.text for m in emulator.chat("group", "42")] == [TRANSCRIPT]


async def test_1007_after_the_body_without_recovery_raises_rate_limited(
    emulator: Emulator,
) -> None:
    emulator.faults.reject(1007, when="after_body")
    async with make_bot(emulator, recover=False) as bot:
        s = bot.stream(to="group:42")
        with pytest.raises(errors.RateLimitedError) as info:
            for piece in PIECES:
                await s.write(piece)
            await s.close()
    assert info.value.text == TRANSCRIPT


async def test_server_restarted_between_requests_without_recovery(emulator: Emulator) -> None:
    async with make_bot(emulator, recover=False) as bot:
        async with bot.stream(to="user:1") as s1:
            await s1.write("before")
        await emulator.restart()
        async with bot.stream(to="user:1") as s2:
            for piece in PIECES:
                await s2.write(piece)
    assert [m.text for m in emulator.chat("user", "1")] == ["before", TRANSCRIPT]
    assert s2.message_info is not None and s2.message_info.delivery == "stream"
