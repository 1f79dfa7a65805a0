"""The aiohttp plugin (setup()), the dispatcher without routes, registration and the examples."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests._paths import EXAMPLES
from tests._support import serve_app
from tests.app._webhook import GROUP, USER, body, echo, finished, post
from yunhu_stream import Bot
from yunhu_stream.app import (
    BOT_KEY,
    DISPATCHER_KEY,
    BotApp,
    Dispatcher,
    DispatcherStatistics,
    setup,
)
from yunhu_stream.emulator import Emulator
from yunhu_stream.errors import ConfigurationError
from yunhu_stream.events import (
    Event,
    FollowEvent,
    MessageEvent,
    parse_event,
)

pytestmark = pytest.mark.anyio


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

        runner, base = await serve_app(app)
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
        runner, base = await serve_app(app)
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
        runner, _ = await serve_app(app)
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
        runner, _ = await serve_app(app)
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
