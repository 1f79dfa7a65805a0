"""The emulator starts, stops and restarts cleanly, keeps its token secret, and lets
tests wait without sleeping."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
import structlog

from tests.emulator._http import (
    one_shot,
    post_json,
)
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


class TestLifecycle:
    def test_urls_point_at_loopback_api(self) -> None:
        """base_url is the root URL plus /open-apis/v1 on 127.0.0.1."""
        emu = Emulator(port=8123)
        assert emu.url == "http://127.0.0.1:8123/"
        assert emu.base_url == "http://127.0.0.1:8123/open-apis/v1"

    def test_random_token_is_not_shown_in_repr(self) -> None:
        """Each emulator gets its own random token, and its repr does not contain it."""
        a, b = Emulator(), Emulator()
        assert a.token != b.token
        assert len(a.token) >= 32
        assert a.token not in repr(a)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"token": ""},
            {"token": "a b"},
            {"port": -1},
            {"port": 70000},
            {"rate_limit": 0},
            {"host": ""},
            {"bot_id": ""},
        ],
    )
    def test_invalid_arguments_are_rejected(self, kwargs: dict[str, Any]) -> None:
        """Bad constructor arguments raise ValueError naming the argument."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Emulator(**kwargs)

    async def test_start_twice_is_an_error_and_close_is_idempotent(self) -> None:
        """start() on a running emulator raises; close() can be called repeatedly."""
        emu = await Emulator().start()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                await emu.start()
        finally:
            await emu.close()
        await emu.close()
        assert not emu.running

    async def test_restart_keeps_port_and_history(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """After restart() the same base_url works and earlier messages are still there."""
        url = emu.base_url
        await one_shot(session, emu, "before")
        await emu.restart()
        assert emu.base_url == url
        await one_shot(session, emu, "after")
        assert [m.text for m in emu.chat("group", "123")] == ["before", "after"]

    async def test_token_never_reaches_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        """Neither stdlib logging (aiohttp's access log) nor structlog events show the token."""
        caplog.set_level(logging.DEBUG)
        with structlog.testing.capture_logs() as events:
            async with Emulator() as emu, aiohttp.ClientSession() as session:
                await one_shot(session, emu, "hi")
                await post_json(session, emu, "send", {"recvId": "1"})
        assert events, "the emulator should log its start and stop"
        assert emu.token not in caplog.text
        assert all(emu.token not in repr(event) for event in events)


class TestWaits:
    async def test_wait_for_message_with_predicate(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """wait_for_message returns once a message satisfying the predicate exists."""
        waiter = asyncio.create_task(
            emu.wait_for_message("group", "123", lambda m: m.text.endswith("!"))
        )
        await one_shot(session, emu, "not yet")
        await one_shot(session, emu, "now!")
        message = await waiter
        assert message.text == "now!"

    async def test_wait_times_out_with_a_clear_error(self, emu: Emulator) -> None:
        """A wait that cannot be satisfied raises TimeoutError naming what it waited for."""
        with pytest.raises(TimeoutError, match="send-stream request #1"):
            await emu.wait_for_stream(timeout=0.05)

    async def test_wait_for_requests_by_endpoint(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """wait_for_requests counts finished requests of one endpoint."""
        await one_shot(session, emu, "x")
        await post_json(session, emu, "send", {})
        [record] = await emu.wait_for_requests(1, endpoint="send")
        assert (record.method, record.status, record.code) == ("POST", 200, 1002)


class TestPytestPlugin:
    async def test_fixture_yields_a_running_emulator(
        self, emulator: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """The plugin's `emulator` fixture is started and answers the API."""
        assert emulator.running
        answer = await one_shot(session, emulator, "from the fixture")
        assert answer["code"] == 1
