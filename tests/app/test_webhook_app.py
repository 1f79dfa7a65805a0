"""Bot apps: BotApp and the aiohttp plugin, driven over loopback against the emulator."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from tests._paths import EXAMPLES, FIXTURES
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import (
    BOT_KEY,
    DISPATCHER_KEY,
    BotApp,
    Dispatcher,
    DispatcherStatistics,
    setup,
)
from yunhu_stream.emulator import Emulator, StoredMessage
from yunhu_stream.errors import BotClosedError, ConfigurationError
from yunhu_stream.events import (
    ButtonReportEvent,
    Event,
    FollowEvent,
    GroupMemberEvent,
    MessageEvent,
    SettingEvent,
    ShortcutMenuEvent,
    parse_event,
)

pytestmark = pytest.mark.anyio


GROUP = Recipient.group("307149245")
USER = Recipient.user("7756242")


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def with_event_id(name: str, event_id: str) -> bytes:
    data = json.loads(body(name))
    data["header"]["eventId"] = event_id
    return json.dumps(data).encode()


def finished(message: StoredMessage) -> bool:
    return not message.streaming


StartApp = Callable[..., Awaitable[tuple[BotApp, str]]]


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def start_app(emulator: Emulator) -> AsyncIterator[StartApp]:
    """Build a BotApp against the emulator, let the test register handlers, start it."""
    apps: list[BotApp] = []

    async def start(register: Callable[[BotApp], None], **options: Any) -> tuple[BotApp, str]:
        app = BotApp(emulator.token, base_url=emulator.base_url, **options)
        register(app)
        apps.append(app)
        return app, await app.start()

    yield start
    for app in apps:
        await app.stop()


async def post(
    client: aiohttp.ClientSession, url: str, data: Any, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    with anyio.fail_after(10):  # a hang here means the webhook waited for a handler
        async with client.post(url, data=data, **kwargs) as resp:
            return resp.status, await resp.json()


def echo(app: BotApp | Dispatcher) -> None:
    @app.on_message()
    async def reply(event: MessageEvent, bot: Bot) -> None:
        async with bot.stream(to=event) as s:
            await s.write("echo: ")
            await s.write(event.text or event.message.content_type)


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


_DEEP = b'{"header": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
_GROUP_TEXT = json.loads((FIXTURES / "message_group_text.json").read_bytes())


def _mutated(path: str, value: object) -> bytes:
    data = json.loads(json.dumps(_GROUP_TEXT))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return json.dumps(data).encode()


class TestHostileBodies:
    @pytest.mark.parametrize(
        ("data", "error"),
        [
            (b"", "body: not valid JSON"),
            (b"not json at all", "body: not valid JSON"),
            (b"\xff\xfe\x00{", "body: not UTF-8"),
            (b"[1, 2, 3]", "body: expected a JSON object, got array"),
            (b"[" + body("message_group_text.json") + b"]", "body: expected a JSON object"),
            (b'"message.receive.normal"', "body: expected a JSON object, got string"),
            (b"{}", "header: missing"),
            (b'{"header": {"eventId": "x"}}', "header.eventType: missing"),
            (_DEEP, "body: JSON nested too deeply"),
            (_mutated("header.eventTime", "yesterday"), "header.eventTime: expected an integer"),
            (_mutated("event.sender", []), "event.sender: expected an object, got array"),
            (_mutated("event.chat.chatId", None), "event.chat.chatId: missing"),
            (_mutated("header.eventId", {"$ne": None}), "header.eventId: expected a string"),
        ],
    )
    async def test_bodies_that_are_not_events_get_400(
        self,
        start_app: StartApp,
        client: aiohttp.ClientSession,
        emulator: Emulator,
        data: bytes,
        error: str,
    ) -> None:
        """Non-JSON, non-UTF-8, non-object, deeply nested or mistyped bodies get a 400."""
        app, url = await start_app(echo)
        with capture_logs() as logs:
            status, answer = await post(client, url, data)
        assert status == 400
        assert answer["ok"] is False
        assert answer["error"].startswith(error)
        [line] = [e for e in logs if e["event"] == "webhook_rejected"]
        assert line["status"] == 400
        assert line["log_level"] == "warning"
        assert app.stats.rejected == 1
        # The app is unharmed: a real event still gets its reply.
        await post(client, url, body("message_group_text.json"))
        assert (await emulator.wait_for_message(GROUP, predicate=finished)).text == "echo: 早上好"

    async def test_declared_too_large_body_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A body whose Content-Length exceeds max_body_bytes gets 413."""
        app, url = await start_app(echo, max_body_bytes=4096)
        padded = json.loads(body("message_group_text.json"))
        padded["padding"] = "x" * 100_000
        status, answer = await post(client, url, json.dumps(padded).encode())
        assert status == 413
        assert answer == {"ok": False, "error": "body larger than 4096 bytes"}
        assert app.stats.rejected == 1

    async def test_chunked_endless_body_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A chunked body with no Content-Length is cut off once it passes the limit."""
        app, url = await start_app(echo, max_body_bytes=4096)

        async def endless() -> AsyncIterator[bytes]:
            yield b'{"header": "'
            for _ in range(64):
                yield b"x" * 16_384

        status, _ = await post(client, url, endless())
        assert status == 413
        assert app.stats.rejected == 1

    async def test_gzip_bomb_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A small gzip body that inflates past the limit is refused, not inflated whole."""
        app, url = await start_app(echo, max_body_bytes=64 * 1024)
        bomb = gzip.compress(b'{"header": "' + b" " * 8_000_000 + b'"}')
        assert len(bomb) < 64 * 1024
        status, _ = await post(client, url, bomb, headers={"Content-Encoding": "gzip"})
        assert status == 413
        assert app.stats.rejected == 1

    async def test_corrupt_compressed_body_gets_400(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A body that claims gzip but is not gzip gets a 400, not a server error."""
        app, url = await start_app(echo)
        status, answer = await post(
            client, url, b"definitely not gzip", headers={"Content-Encoding": "gzip"}
        )
        assert status == 400
        assert answer["error"].startswith("body could not be read")
        assert app.stats.rejected == 1

    async def test_only_post_is_served(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """GET on the webhook path is 405."""
        _, url = await start_app(echo)
        async with client.get(url) as resp:
            assert resp.status == 405

    async def test_content_type_is_not_required(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A real event is accepted whatever Content-Type header it carries."""
        _, url = await start_app(echo)
        status, _ = await post(
            client, url, body("message_group_text.json"), headers={"Content-Type": "text/plain"}
        )
        assert status == 200
        assert (await emulator.wait_for_message(GROUP, predicate=finished)).text


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


class TestPlugin:
    async def test_setup_serves_events_next_to_the_apps_own_routes(
        self, emulator: Emulator, client: aiohttp.ClientSession
    ) -> None:
        """setup() mounts the webhook on an existing app whose routes can use BOT_KEY."""
        app = web.Application()

        async def announce(request: web.Request) -> web.Response:
            info = await request.app[BOT_KEY].send(GROUP, "deployed")
            return web.json_response({"msgId": info.msg_id})

        app.router.add_post("/announce", announce)
        dp = setup(app, emulator.token, base_url=emulator.base_url, path="/hooks/yunhu")
        assert app[DISPATCHER_KEY] is dp
        received: list[Event] = []

        @dp.on_message(chat_type="group")
        async def reply(event: MessageEvent, bot: Bot) -> None:
            received.append(event)
            assert bot is app[BOT_KEY]
            async with bot.stream(to=event) as s:
                await s.write("plugin reply")

        @dp.on_event("bot.followed")
        async def welcome(event: FollowEvent, bot: Bot) -> None:
            await bot.send(event, "thanks for following")

        runner, base = await _serve(app)
        try:
            status, _ = await post(client, f"{base}/hooks/yunhu", body("message_group_text.json"))
            assert status == 200
            status, _ = await post(client, f"{base}/hooks/yunhu", body("bot_followed.json"))
            assert status == 200
            status, sent = await post(client, f"{base}/announce", b"")
            assert status == 200
            reply_msg = await emulator.wait_for_message(
                GROUP, predicate=lambda m: m.streamed and finished(m)
            )
            welcome_msg = await emulator.wait_for_message(USER)
        finally:
            await runner.cleanup()
        assert reply_msg.text == "plugin reply"
        assert welcome_msg.text == "thanks for following"
        assert sent["msgId"] in {m.msg_id for m in emulator.chat(GROUP)}
        assert len(received) == 1

    async def test_webhook_refuses_events_once_shutdown_began(
        self, emulator: Emulator, client: aiohttp.ClientSession
    ) -> None:
        """After the dispatcher starts shutting down, the webhook answers 503."""
        app = web.Application()
        dp = setup(app, emulator.token, base_url=emulator.base_url)
        echo(dp)
        runner, base = await _serve(app)
        try:
            await dp.shutdown()
            status, answer = await post(client, f"{base}/yunhu", body("message_group_text.json"))
        finally:
            await runner.cleanup()
        assert (status, answer) == (503, {"ok": False, "error": "shutting down"})
        assert emulator.requests == []

    async def test_setup_passes_bot_options(self, emulator: Emulator) -> None:
        """bot_options reach the Bot that the cleanup context creates."""
        app = web.Application()
        setup(
            app,
            emulator.token,
            base_url=emulator.base_url,
            bot_options={"response_timeout": 5.0, "rate_limit": None},
        )
        runner, _ = await _serve(app)
        try:
            bot = app[BOT_KEY]
            assert (bot.response_timeout, bot.rate_limit) == (5.0, None)
        finally:
            await runner.cleanup()

    async def test_setup_twice_is_refused(self, emulator: Emulator) -> None:
        """One app gets one webhook; one dispatcher serves one app."""
        app = web.Application()
        dp = setup(app, emulator.token)
        with pytest.raises(RuntimeError, match="already has a YunHu webhook"):
            setup(app, emulator.token)
        with pytest.raises(RuntimeError, match="already mounted"):
            setup(web.Application(), emulator.token, dispatcher=dp)

    async def test_setup_after_start_is_refused(self, emulator: Emulator) -> None:
        """setup() on a running application raises instead of half-working."""
        app = web.Application()
        runner, _ = await _serve(app)
        try:
            with pytest.raises(RuntimeError, match="before the application starts"):
                setup(app, emulator.token)
        finally:
            await runner.cleanup()

    def test_missing_token_is_reported_at_setup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a token or $YUNHU_TOKEN, setup() and BotApp() fail at once."""
        monkeypatch.delenv("YUNHU_TOKEN", raising=False)
        with pytest.raises(ConfigurationError, match="YUNHU_TOKEN"):
            setup(web.Application())
        with pytest.raises(ConfigurationError, match="YUNHU_TOKEN"):
            BotApp()

    def test_token_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$YUNHU_TOKEN is enough to build an app."""
        monkeypatch.setenv("YUNHU_TOKEN", "env-token")
        assert BotApp().path == "/yunhu"

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"path": "yunhu"}, "path must start with '/'"),
            ({"path": "/yun hu"}, "path must start with '/'"),
            ({"bot_options": {"token": "x"}}, "not in bot_options"),
            ({"bot_options": {"timeout": 5}}, "'timeout', which Bot\\(\\) does not take"),
        ],
    )
    def test_bad_setup_arguments(self, kwargs: dict[str, Any], match: str) -> None:
        """Bad paths and misplaced options raise ConfigurationError naming them."""
        with pytest.raises(ConfigurationError, match=match):
            setup(web.Application(), "token", **kwargs)

    def test_setup_needs_an_application(self) -> None:
        """setup() on something else is a TypeError."""
        with pytest.raises(TypeError, match=r"aiohttp\.web\.Application"):
            setup(object(), "token")  # type: ignore[arg-type]


class TestDispatcherWithoutAiohttpRoutes:
    async def test_dispatch_and_shutdown_directly(self, emulator: Emulator) -> None:
        """dispatch() runs the handler as a task; shutdown() drains it; then it refuses."""
        dp = Dispatcher()
        echo(dp)
        event = parse_event(body("message_private_text.json"))
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            assert dp.dispatch(event, bot) == "accepted"
            assert dp.dispatch(event, bot) == "duplicate"
            assert dp.stats.running == 1
            await dp.shutdown()
            assert dp.closing
            assert dp.dispatch(parse_event(body("group_join.json")), bot) == "closing"
        [reply] = emulator.chat(USER)
        assert reply.text == "echo: 你好，给我讲个笑话"
        assert dp.stats == DispatcherStatistics(
            received=2,
            accepted=1,
            duplicates=1,
            unhandled=0,
            rejected=0,
            failed=0,
            cancelled=0,
            running=0,
        )


class TestRegistration:
    def test_handlers_must_be_async(self) -> None:
        """Registering a plain function raises TypeError naming the decorator."""
        dp = Dispatcher()

        def plain(event: MessageEvent, bot: Bot) -> None:
            pass

        with pytest.raises(TypeError, match=r"on_message\(\) needs an async function"):
            dp.on_message()(plain)  # type: ignore[type-var]

    def test_async_callable_objects_are_accepted(self) -> None:
        """An object with an async __call__ is a valid handler."""

        class Handler:
            async def __call__(self, event: MessageEvent, bot: Bot) -> None:
                pass

        handler = Handler()
        dp = Dispatcher()
        assert dp.on_message()(handler) is handler

    @pytest.mark.parametrize(
        ("register", "match"),
        [
            (lambda dp: dp.on_message(chat_type="private"), "chat_type must be"),
            (lambda dp: dp.on_message(content_type=""), "content_type must be"),
            (lambda dp: dp.on_message(content_type=[]), "at least one content type"),
            (lambda dp: dp.on_command(), "at least one command"),
            (lambda dp: dp.on_command(""), "command must be"),
            (lambda dp: dp.on_command(None), "command must be"),
            (lambda dp: dp.on_event(), "at least one event type"),
            (lambda dp: dp.on_event(" "), "event type must be"),
        ],
    )
    def test_bad_filters(self, register: Callable[[Dispatcher], object], match: str) -> None:
        """Filter values that cannot match anything raise ValueError saying what is accepted."""
        with pytest.raises(ValueError, match=match):
            register(Dispatcher())

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_body_bytes": 10}, "max_body_bytes must be an integer >= 1024"),
            ({"max_body_bytes": 1.5}, "max_body_bytes must be an int"),
            ({"dedup_size": -1}, "dedup_size must be an integer >= 0"),
            ({"shutdown_timeout": -1}, "shutdown_timeout must be"),
            ({"shutdown_timeout": float("nan")}, "shutdown_timeout must be"),
        ],
    )
    def test_bad_options(self, kwargs: dict[str, Any], match: str) -> None:
        """Out-of-range options raise ConfigurationError naming the option."""
        with pytest.raises(ConfigurationError, match=match):
            BotApp("token", **kwargs)

    def test_commands_win_over_events_over_messages(self) -> None:
        """One handler per event: on_command, then on_event, then on_message."""
        dp = Dispatcher()
        order: list[str] = []

        @dp.on_message()
        async def any_message(event: MessageEvent, bot: Bot) -> None:
            order.append("message")

        @dp.on_event("message.receive.instruction")
        async def instruction(event: Event, bot: Bot) -> None:
            order.append("event")

        @dp.on_command("help")
        async def help_(event: MessageEvent, bot: Bot) -> None:
            order.append("command")

        command = parse_event(body("message_instruction_private.json"))
        other_command = parse_event(body("message_instruction_group_form.json"))
        plain = parse_event(body("message_group_text.json"))
        assert dp.handler_for(command) is help_
        assert dp.handler_for(other_command) is instruction
        assert dp.handler_for(plain) is any_message
        assert dp.handler_for(parse_event(body("group_join.json"))) is None

    def test_bad_ports(self) -> None:
        """start()/run() refuse ports outside 0..65535."""
        app = BotApp("token")
        with pytest.raises(ValueError, match="port must be"):
            app.run(port=70000)


def _load_example(name: str) -> Any:
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestExamples:
    async def test_echo_bot_demo(self, capsys: pytest.CaptureFixture[str]) -> None:
        """examples/echo_bot.py --demo streams a mention-addressed echo into the group."""
        await _load_example("echo_bot.py").demo()
        out = capsys.readouterr().out
        assert "answered 200" in out
        assert (
            "final message in group 307149245: "
            "'@小明\\u200b you said: streaming makes long answers feel fast ', at=['7756242']"
        ) in out

    async def test_aiohttp_app_demo(self, capsys: pytest.CaptureFixture[str]) -> None:
        """examples/aiohttp_app.py --demo answers a private message with streamed markdown."""
        await _load_example("aiohttp_app.py").demo()
        out = capsys.readouterr().out
        assert "GET /healthz answered 200" in out
        assert "markdown: '**Hi 小明!** I stream answers as they are written.'" in out
