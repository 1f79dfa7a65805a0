"""Bot apps: receive YunHu's webhook events and answer them, with or without a framework.

A complete bot, for users without a web framework::

    from yunhu_stream.app import BotApp

    app = BotApp()                                  # token from $YUNHU_TOKEN

    @app.on_message()
    async def echo(event, bot):
        async with bot.stream(to=event) as s:       # replies where the message came from
            await s.write(f"You said: {event.text}")

    app.run(port=8080)                              # POST events to http://host:8080/yunhu

For an existing aiohttp application, :func:`setup` mounts the same webhook and
owns the Bot through the app's cleanup context::

    dp = setup(web_app, token, path="/yunhu")

    @dp.on_command("help")
    async def help_(event, bot): ...

Both answer the webhook at once (HTTP 200) and run the handler as a task, so a
long stream never delays YunHu's request. See ``docs/apps.md``.
"""

from __future__ import annotations

from .._public import publish
from ._botapp import BotApp
from ._dispatch import (
    Dispatcher,
    DispatcherStatistics,
    DispatchOutcome,
    EventHandler,
    MessageHandler,
)
from ._webhook import BOT_KEY, DISPATCHER_KEY, setup

__all__ = [
    "BOT_KEY",
    "DISPATCHER_KEY",
    "BotApp",
    "DispatchOutcome",
    "Dispatcher",
    "DispatcherStatistics",
    "EventHandler",
    "MessageHandler",
    "setup",
]

publish(globals(), __all__)
