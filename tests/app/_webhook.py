"""Shared helpers for the webhook tests: fixtures' types, event bodies, post(), echo()."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio

from tests._paths import FIXTURES
from yunhu_stream import Bot, Recipient
from yunhu_stream.app import (
    BotApp,
    Dispatcher,
)
from yunhu_stream.emulator import StoredMessage
from yunhu_stream.events import (
    MessageEvent,
)

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
