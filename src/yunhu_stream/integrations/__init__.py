"""Plugins that give bot frameworks ``async with stream(...)`` replies.

Each integration is its own submodule and imports its framework only when you
import it, so ``import yunhu_stream`` never needs AstrBot, NoneBot2 or ErisPulse:

* :mod:`yunhu_stream.integrations.astrbot` — the YunHu platform adapter for AstrBot
  (its plugin folder is ``examples/astrbot_plugin/``);
  :mod:`yunhu_stream.integrations.astrbot_emulator` runs AstrBot offline for tests.
* :mod:`yunhu_stream.integrations.nonebot` — a NoneBot2 plugin for
  ``nonebot-adapter-yunhu`` (``pip install 'yunhu-stream[nonebot]'``).
* :mod:`yunhu_stream.integrations.erispulse` — an ErisPulse module for
  ``ErisPulse-YunhuAdapter`` (``pip install 'yunhu-stream[erispulse]'``).

Any other async framework needs no plugin: create a :class:`yunhu_stream.Bot`
when the application starts, close it when it stops, and use
``async with bot.stream(to=...)`` in handlers (see ``docs/integrations.md``).
"""

from __future__ import annotations

__all__: list[str] = []
