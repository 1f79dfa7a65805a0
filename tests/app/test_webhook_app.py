"""BotApp end to end: replies, timing, handler failures, secrets, dedup and shutdown."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests.app._webhook import GROUP, USER, StartApp, body, echo, finished, post, with_event_id
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import (
    BotApp,
)
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import BotClosedError, ConfigurationError
from yunhu_stream.events import (
    ButtonReportEvent,
    Event,
    FollowEvent,
    GroupMemberEvent,
    MessageEvent,
    SettingEvent,
    ShortcutMenuEvent,
)

pytestmark = pytest.mark.anyio


class TestReplies:
    async def test_group_message_is_answered_in_the_group(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A group message posted to the webhook gets a streamed reply in that group."""
        _, url = await start_app(echo)
        status, answer = await post(client, url, body("message_group_text.json"))
        assert status == 200
        assert answer == {
            "ok": True,
            "eventId": "5f0e2b7c9d4a4e1f8b3c6a2d1e0f9a8b",
            "status": "accepted",
        }
        reply = await emulator.wait_for_message(GROUP, predicate=finished)
        assert reply.text == "echo: 早上好"
        assert reply.streamed
        assert emulator.chat(USER) == []

    async def test_private_message_is_answered_to_the_sender(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A private message (chatType bot) is answered in the sender's private chat."""
        _, url = await start_app(echo)
        status, _ = await post(client, url, body("message_private_text.json"))
        assert status == 200
        reply = await emulator.wait_for_message(USER, predicate=finished)
        assert reply.text == "echo: 你好，给我讲个笑话"
        assert emulator.chats() == [("user", "7756242")]

    async def test_commands_go_to_their_handler(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A command runs its on_command handler, not the catch-all message handler."""

        def register(app: BotApp) -> None:
            echo(app)

            @app.on_command("help")
            async def help_(event: MessageEvent, bot: Bot) -> None:
                async with bot.stream(to=event, content_type="markdown") as s:
                    await s.write(f"**help** for {event.command_name} #{event.command_id}")

            @app.on_command(2105)
            async def weather(event: MessageEvent, bot: Bot) -> None:
                await bot.send(event, "form received", parent_id=event.message.msg_id)

        _, url = await start_app(register)
        await post(client, url, body("message_instruction_private.json"))
        await post(client, url, body("message_instruction_group_form.json"))
        private = await emulator.wait_for_message(USER, predicate=finished)
        group = await emulator.wait_for_message(GROUP)
        assert private.text == "**help** for help #2103"
        assert private.content_type == "markdown"
        assert group.text == "form received"
        assert group.parent_id == "e37a993ce328455caf6d5d9ae1d9d6ee"
        assert not group.streamed

    async def test_message_filters(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """chat_type and content_type filters pick the handler; the first match wins."""
        seen: list[str] = []

        def register(app: BotApp) -> None:
            @app.on_message(content_type=["image", "file"])
            async def media(event: MessageEvent, bot: Bot) -> None:
                seen.append(f"media:{event.message.msg_id}")

            @app.on_message(chat_type="bot")
            async def private(event: MessageEvent, bot: Bot) -> None:
                seen.append(f"private:{event.message.msg_id}")

            @app.on_message(chat_type="group")
            async def group(event: MessageEvent, bot: Bot) -> None:
                seen.append(f"group:{event.message.msg_id}")

        app, url = await start_app(register)
        for name in (
            "message_group_image_reply.json",
            "message_private_text.json",
            "message_group_text.json",
        ):
            await post(client, url, body(name))
        await app.stop()
        assert sorted(seen) == [
            "group:930a7bad5d8144c5b25bc161031bb82b",
            "media:467066ccf64641ab84fb7a9f6d354959",
            "private:7a6b5c4d3e2f41a0b9c8d7e6f5a4b3c2",
        ]

    @pytest.mark.parametrize(
        ("fixture", "event_class", "where"),
        [
            ("group_join.json", GroupMemberEvent, GROUP),
            ("group_leave.json", GroupMemberEvent, GROUP),
            ("bot_followed.json", FollowEvent, USER),
            ("button_report_group.json", ButtonReportEvent, GROUP),
            ("button_report_private.json", ButtonReportEvent, USER),
            ("shortcut_menu_group.json", ShortcutMenuEvent, GROUP),
            ("shortcut_menu_private.json", ShortcutMenuEvent, USER),
        ],
    )
    async def test_other_events_are_answered_where_they_came_from(
        self,
        start_app: StartApp,
        client: aiohttp.ClientSession,
        emulator: Emulator,
        fixture: str,
        event_class: type[Event],
        where: Recipient,
    ) -> None:
        """on_event handlers get the typed event and stream(to=event) reaches its chat."""
        event_type = json.loads(body(fixture))["header"]["eventType"]
        received: list[Event] = []

        def register(app: BotApp) -> None:
            @app.on_event(event_type)
            async def handler(event: Event, bot: Bot) -> None:
                received.append(event)
                async with bot.stream(to=event) as s:
                    await s.write(f"handled {event.event_type}")

        _, url = await start_app(register)
        status, _ = await post(client, url, body(fixture))
        assert status == 200
        reply = await emulator.wait_for_message(where, predicate=finished)
        assert reply.text == f"handled {event_type}"
        assert [type(e) for e in received] == [event_class]
        assert len(emulator.chats()) == 1

    async def test_unknown_event_types_reach_on_event(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A newer event type (bot.setting) is delivered, typed, to a handler for it."""
        received: list[Event] = []

        def register(app: BotApp) -> None:
            @app.on_event("bot.setting")
            async def handler(event: Event, bot: Bot) -> None:
                received.append(event)

        app, url = await start_app(register)
        status, answer = await post(client, url, body("bot_setting.json"))
        await app.stop()
        assert (status, answer["status"]) == (200, "accepted")
        [event] = received
        assert isinstance(event, SettingEvent)
        assert event.data["groupName"] == "流式测试群"

    async def test_events_without_a_handler_are_acknowledged(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """An event no handler matches gets 200 "unhandled" and sends nothing."""
        app, url = await start_app(echo)
        status, answer = await post(client, url, body("group_join.json"))
        await app.stop()
        assert (status, answer["status"]) == (200, "unhandled")
        assert app.stats.unhandled == 1
        assert emulator.requests == []


class TestWebhookTiming:
    async def test_webhook_answers_before_the_stream_ends(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """The POST is answered while the handler's stream is still open."""
        release = asyncio.Event()

        def register(app: BotApp) -> None:
            @app.on_message()
            async def slow(event: MessageEvent, bot: Bot) -> None:
                async with bot.stream(to=event) as s:
                    await s.write("thinking… ")
                    await release.wait()
                    await s.write("done")

        app, url = await start_app(register)
        status, _ = await post(client, url, body("message_group_text.json"))
        assert status == 200
        record = await emulator.wait_for_stream()
        await record.wait_for_bytes(len("thinking… ".encode()))
        assert not record.done
        assert app.stats.running == 1
        release.set()
        await record.wait_done()
        reply = await emulator.wait_for_message(GROUP, predicate=finished)
        assert reply.text == "thinking… done"


class TestHandlerFailures:
    async def test_exception_is_logged_with_event_id_and_app_keeps_serving(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A handler that raises is logged with the event id; later events still run."""

        def register(app: BotApp) -> None:
            @app.on_event("group.join")
            async def broken(event: Event, bot: Bot) -> None:
                raise RuntimeError("handler bug")

            echo(app)

        app, url = await start_app(register)
        with capture_logs() as logs:
            status, _ = await post(client, url, body("group_join.json"))
            assert status == 200
            await post(client, url, body("message_group_text.json"))
            reply = await emulator.wait_for_message(GROUP, predicate=finished)
            await app.stop()
        assert reply.text == "echo: 早上好"
        [failure] = [e for e in logs if e["event"] == "handler_failed"]
        assert failure["event_id"] == "c3d4e5f6a7b84930415c6d7e8f9a0b12"
        assert failure["event_type"] == "group.join"
        assert failure["handler"] == "on_event('group.join')"
        assert failure["log_level"] == "error"
        assert failure["exc_info"] is True
        assert app.stats.failed == 1


class TestSecrets:
    async def test_token_and_path_stay_out_of_logs_and_answers(
        self, emulator: Emulator, client: aiohttp.ClientSession
    ) -> None:
        """Neither the token nor the (secret) webhook path appears in logs or replies."""
        secret_path = "/yunhu/8f3c2a9d41e7"
        app = BotApp(
            emulator.token, base_url=emulator.base_url, path=secret_path, max_body_bytes=65536
        )

        @app.on_message()
        async def broken(event: MessageEvent, bot: Bot) -> None:
            raise RuntimeError("handler bug")

        with capture_logs() as logs:
            url = await app.start()
            serving = repr(app)
            answers = [
                await post(client, url, body("message_group_text.json")),
                await post(client, url, b"[]"),
                await post(client, url, b"x" * 100_000),
            ]
            await app.stop()
        assert [status for status, _ in answers] == [200, 400, 413]
        assert serving.startswith("<BotApp serving on 127.0.0.1:")
        text = repr(logs) + repr(answers) + serving + repr(app) + repr(app.dispatcher)
        assert emulator.token not in text
        assert secret_path not in text
        assert "handler_failed" in text


class TestDeduplication:
    async def test_redelivered_event_runs_once(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """The same eventId delivered twice runs the handler once and says so."""
        app, url = await start_app(echo)
        first = await post(client, url, body("message_group_text.json"))
        second = await post(client, url, body("message_group_text.json"))
        await app.stop()
        assert first[1]["status"] == "accepted"
        assert second == (
            200,
            {"ok": True, "eventId": "5f0e2b7c9d4a4e1f8b3c6a2d1e0f9a8b", "status": "duplicate"},
        )
        assert len(emulator.chat(GROUP)) == 1
        assert (app.stats.accepted, app.stats.duplicates) == (1, 1)

    async def test_memory_is_bounded(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """Only the last dedup_size ids are remembered: an older id runs again."""
        runs: list[str] = []

        def register(app: BotApp) -> None:
            @app.on_message()
            async def count(event: MessageEvent, bot: Bot) -> None:
                runs.append(event.event_id)

        app, url = await start_app(register, dedup_size=2)
        for event_id in ("a", "b", "a", "c", "a", "b"):
            await post(client, url, with_event_id("message_group_text.json", event_id))
        await app.stop()
        # The repeated "a" refreshes it, so "c" pushes out "b", which then runs again.
        assert runs == ["a", "b", "c", "b"]
        assert app.stats.duplicates == 2

    async def test_zero_turns_deduplication_off(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """With dedup_size=0 every delivery runs the handler."""
        runs: list[str] = []

        def register(app: BotApp) -> None:
            @app.on_message()
            async def count(event: MessageEvent, bot: Bot) -> None:
                runs.append(event.event_id)

        app, url = await start_app(register, dedup_size=0)
        for _ in range(3):
            await post(client, url, body("message_group_text.json"))
        await app.stop()
        assert len(runs) == 3


class TestShutdown:
    async def test_stop_waits_for_running_handlers(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A stream still running when stop() begins is allowed to finish."""
        release = asyncio.Event()

        def register(app: BotApp) -> None:
            @app.on_message()
            async def slow(event: MessageEvent, bot: Bot) -> None:
                async with bot.stream(to=event) as s:
                    await s.write("part one, ")
                    await release.wait()
                    await s.write("part two")

            async def release_on_shutdown(_: web.Application) -> None:
                release.set()  # runs after stop() began and before handlers are awaited

            app.web_app.on_shutdown.append(release_on_shutdown)

        app, url = await start_app(register)
        await post(client, url, body("message_group_text.json"))
        await (await emulator.wait_for_stream()).wait_for_bytes(1)
        await app.stop()
        [reply] = emulator.chat(GROUP)
        assert reply.text == "part one, part two"
        assert not reply.incomplete
        assert app.stats.cancelled == 0

    async def test_stop_cancels_handlers_after_the_timeout(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """Handlers still running after shutdown_timeout are cancelled and logged."""
        cancelled = asyncio.Event()

        def register(app: BotApp) -> None:
            @app.on_message()
            async def stuck(event: MessageEvent, bot: Bot) -> None:
                try:
                    async with bot.stream(to=event) as s:
                        await s.write("never finished")
                        await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

        app, url = await start_app(register, shutdown_timeout=0.01)
        await post(client, url, body("message_group_text.json"))
        await (await emulator.wait_for_stream()).wait_for_bytes(1)
        with capture_logs() as logs:
            await app.stop()
        assert cancelled.is_set()
        assert app.stats.cancelled == 1
        assert app.stats.running == 0
        assert {"handler_cancelled", "handlers_cancelled_at_shutdown"} <= {e["event"] for e in logs}

    async def test_bot_is_closed_after_stop(self, start_app: StartApp) -> None:
        """The Bot created at startup is closed when the app stops."""
        app, _ = await start_app(echo)
        bot = app.bot
        await app.stop()
        with pytest.raises(BotClosedError):
            await bot.send(GROUP, "too late")

    async def test_stop_is_idempotent_and_an_app_serves_once(self, start_app: StartApp) -> None:
        """stop() twice is fine; start() after stop() refuses clearly."""
        app, url = await start_app(echo)
        assert app.url == url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/yunhu")
        await app.stop()
        await app.stop()
        assert app.url is None
        with pytest.raises(RuntimeError, match="serves once"):
            await app.start()

    async def test_bad_bot_option_value_fails_start_cleanly(self, emulator: Emulator) -> None:
        """A Bot option with a bad value makes start() raise and leaves nothing running."""
        app = BotApp(emulator.token, base_url=emulator.base_url, bot_options={"rate_limit": -1})
        with pytest.raises(ConfigurationError, match="rate_limit"):
            await app.start()
        await app.stop()
        assert app.url is None

    async def test_bot_exists_only_while_running(self, emulator: Emulator) -> None:
        """app.bot before start raises a RuntimeError saying so."""
        app = BotApp(emulator.token, base_url=emulator.base_url)
        with pytest.raises(RuntimeError, match="only while the app runs"):
            _ = app.bot
