"""AstrBot platform adapter: YunHu bots whose LLM replies really stream.

Importing this module registers the platform type ``yunhu_stream`` with AstrBot;
the ready plugin in ``examples/astrbot_plugin/`` does nothing else. Add a platform
of that type in AstrBot's platform page and fill in the token.

What it does, in AstrBot's terms:

* **Events in.** YunHu's webhook (on the adapter's own port, or through AstrBot's
  unified webhook) is parsed with :func:`yunhu_stream.events.parse_event`,
  redeliveries (same ``eventId``) are dropped, and every event type becomes an
  ``AstrBotMessage`` (see ``_convert``): group or private, sender, text, images and
  files as components, a quote as ``Reply``, mentions as ``At`` (so ``@bot`` wakes it).
* **Streamed replies.** ``send_streaming`` feeds AstrBot's deltas into one
  ``bot/send-stream`` per message as they arrive; a ``break`` (between agent steps)
  starts the next message; mentions, quotes, buttons, rollover past
  ``yunhu_max_message_bytes`` and recovery of a failed stream (by edit) are the
  library's (see ``docs/streaming.md`` and ``docs/reliability.md``).
* **Whole replies** (``send``, ``send_by_session``) go through the same Bot, so every
  request of one platform instance shares one rate limiter.

Configuration fields, plugin use and the emulator setup: ``docs/integrations.md``.
"""

from __future__ import annotations

try:
    import astrbot.api.platform  # noqa: F401 - fail here, with the hint, if AstrBot is missing
    from astrbot.core.config.default import CONFIG_METADATA_2
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "yunhu_stream.integrations.astrbot runs inside AstrBot: install AstrBot "
        "(pip install astrbot) and load the plugin in examples/astrbot_plugin/ "
        f"(import failed: {exc})"
    ) from exc

from ..._public import publish
from .._astrbot_config import (
    ADAPTER_NAME,
    DEFAULT_CONFIG,
    FIELD_DESCRIPTIONS,
    Settings,
    parse_settings,
)
from ._event import BUTTONS_EXTRA, YunhuStreamEvent
from ._logs import forward_logs
from ._platform import YunhuStreamPlatform

__all__ = [
    "ADAPTER_NAME",
    "BUTTONS_EXTRA",
    "DEFAULT_CONFIG",
    "Settings",
    "YunhuStreamEvent",
    "YunhuStreamPlatform",
    "forward_logs",
    "parse_settings",
]

# AstrBot's platform page describes (and type-checks on save) the fields it finds in
# this table; adapters from plugins have no other way to add theirs.
_items = CONFIG_METADATA_2["platform_group"]["metadata"]["platform"]["items"]
for _key, _meta in FIELD_DESCRIPTIONS.items():
    _items.setdefault(_key, _meta)
del _items, _key, _meta

publish(globals(), __all__)
