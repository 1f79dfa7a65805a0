"""Test helpers for YunHu bots: webhook bodies, and an ``emulator`` pytest fixture.

Webhook bodies: :func:`message_event`, :func:`button_event`, :func:`follow_event`,
:func:`group_event`, :func:`menu_event`, :func:`setting_event` and :func:`a2ui_event`
build the JSON object YunHu POSTs to a bot's webhook (the envelope
``{"version", "header", "event"}``), shaped as YunHu sends it. POST one to your bot to
test it without a YunHu account; :func:`yunhu_stream.events.parse_event` turns each
into the matching event, whose ``reply_recipient`` is the ``chat`` you asked for::

    body = message_event("hello", chat="group:307149245")
    body = message_event("/help", chat="user:7756242", command="help")  # private

Ids default to made-up but realistic values; event and message ids are fresh each call.

The pytest plugin (entry point ``pytest11``, so any project that depends on
``yunhu-stream`` gets it) provides the ``emulator`` fixture. Async tests need anyio's
pytest plugin on the asyncio backend::

    import pytest
    from yunhu_stream import Bot

    pytestmark = pytest.mark.anyio

    async def test_reply(emulator):
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.send("group:1", "hi")
        assert emulator.chat("group", "1")[-1].text == "hi"

This module imports without pytest installed (the body builders need only the
standard library); the fixture is defined only when pytest is there.
"""

from __future__ import annotations

from .._public import publish
from ._events import (
    DEFAULT_AVATAR_URL,
    DEFAULT_BOT_ID,
    DEFAULT_CHAT,
    DEFAULT_USER_ID,
    INCOMING_CONTENT_TYPES,
    a2ui_event,
    button_event,
    follow_event,
    group_event,
    menu_event,
    message_event,
    setting_event,
)
from .fake_llm import FakeLLM

__all__ = [
    "DEFAULT_AVATAR_URL",
    "DEFAULT_BOT_ID",
    "DEFAULT_CHAT",
    "DEFAULT_USER_ID",
    "INCOMING_CONTENT_TYPES",
    "FakeLLM",
    "a2ui_event",
    "button_event",
    "follow_event",
    "group_event",
    "menu_event",
    "message_event",
    "setting_event",
]

try:
    import pytest  # noqa: F401 - only to know whether the fixture can exist
except ImportError:  # examples and scripts use the body builders without pytest
    pass
else:
    from ._plugin import emulator

    __all__ += ["emulator"]

publish(globals(), __all__)
