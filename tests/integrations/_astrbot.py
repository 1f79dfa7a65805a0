"""Shared by the AstrBot tests: a real AstrBot process with the adapter, and what it saw.

AstrBot lives in its own venv (``make astrbot-env`` makes ``.venv-astrbot``; it is too
heavy for the test venv), so it always runs as a child process: AstrBot's own start-up
(``yunhu_stream.integrations.astrbot_emulator``) in a root directory made for the test
module, with the ready plugin from ``examples/astrbot_plugin/`` and the tests' probe
plugin (``astrbot_probe/``). The emulator and the fake LLM run in the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests._paths import EXAMPLES, ROOT
from tests.integrations._frameworks import Child, free_port, run_child, wait_listening
from yunhu_stream.emulator import Emulator
from yunhu_stream.fake_llm import FakeLLM
from yunhu_stream.integrations.astrbot_emulator import READY_MARKER, prepare_root
from yunhu_stream.testing import DEFAULT_BOT_ID

ASTRBOT_VERSION = "4.14.6"  # keep in step with the Makefile's ASTRBOT_VERSION
VENV = ROOT / ".venv-astrbot"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / f".installed-{ASTRBOT_VERSION}"
UNAVAILABLE = ROOT / ".astrbot-env-unavailable"
PLUGIN = EXAMPLES / "astrbot_plugin"
PROBE = Path(__file__).resolve().parent / "astrbot_probe"
BOT_ID = DEFAULT_BOT_ID
PATH = "/yunhu/webhook"


def require_astrbot() -> None:
    """Skip the calling module unless ``make astrbot-env`` installed AstrBot.

    It skips only with the reason the Makefile recorded for an install that could not
    happen; an install that was never attempted is an error on CI (``$CI``).
    """
    if STAMP.is_file() and PYTHON.is_file():
        return
    if UNAVAILABLE.is_file():
        reason = UNAVAILABLE.read_text(encoding="utf-8").strip()
        pytest.skip(f"AstrBot {ASTRBOT_VERSION} could not be installed: {reason}",
                    allow_module_level=True)
    hint = f"AstrBot {ASTRBOT_VERSION} is not installed in {VENV}: run make astrbot-env"
    if os.environ.get("CI"):
        raise RuntimeError(hint)
    pytest.skip(hint, allow_module_level=True)


@dataclass
class AstrBot:
    """A running AstrBot, and where to POST webhook bodies to each platform instance."""

    child: Child
    emu: Emulator
    llm: FakeLLM
    root: Path
    urls: dict[str, str] = field(default_factory=dict)

    async def post(self, body: Any, *, platform: str = "yunhu") -> tuple[int, dict[str, Any]]:
        """POST one body to a platform instance's webhook: the status and JSON answer."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with aiohttp.ClientSession() as session, session.post(
            self.urls[platform], data=data, headers={"Content-Type": "application/json"},
        ) as resp:
            return resp.status, await resp.json()

    async def send(self, body: dict[str, Any], *, platform: str = "yunhu") -> None:
        """POST a body that must be accepted."""
        status, answer = await self.post(body, platform=platform)
        assert (status, answer.get("status")) == (200, "accepted"), answer

    async def probe(self, message_id: str, *, timeout: float = 20.0) -> dict[str, Any]:
        """What the probe plugin saw of the event with this message id (or button msgId)."""
        line = await self.child.wait_for_line(
            lambda line: line.startswith("PROBE ") and f'"message_id": "{message_id}"' in line,
            timeout=timeout, what=f"a PROBE line for {message_id}")
        seen: dict[str, Any] = json.loads(line.removeprefix("PROBE "))
        return seen


@contextlib.asynccontextmanager
async def running_astrbot(
    tmp: Path, answer: Callable[[list[dict[str, Any]]], Any], *,
    platforms: dict[str, dict[str, Any]] | None = None,
    failing: dict[str, dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None, llm_delay: float = 0.02,
) -> AsyncIterator[AstrBot]:
    """Run AstrBot with the plugin, against an emulator and a fake LLM answering ``answer``.

    ``platforms`` adds more instances of the adapter (id: extra config keys); those
    with ``unified_webhook_mode`` are reached through AstrBot's unified webhook.
    ``failing`` adds instances whose config is expected to stop them at start-up.
    """
    async with Emulator(rate_limit=10, bot_id=BOT_ID) as emu, \
            FakeLLM(answer, delay=llm_delay) as llm:
        webhook, dashboard = free_port(), free_port()
        root = prepare_root(
            tmp / "astrbot", token=emu.token, base_url=emu.base_url, bot_id=BOT_ID,
            webhook_port=webhook, dashboard_port=dashboard, llm_base_url=llm.base_url,
            plugins=[PLUGIN, PROBE],
            # No date appended to each prompt: the fake LLM's answers quote the prompt.
            config={"provider_settings": {"datetime_system_prompt": False}, **(config or {})},
        )
        urls = {"yunhu": f"http://127.0.0.1:{webhook}{PATH}"}
        cmd_config = root / "data" / "cmd_config.json"
        settings = json.loads(cmd_config.read_text(encoding="utf-8"))
        for platform_id, extra in (platforms or {}).items():
            instance = {**settings["platform"][0], "id": platform_id, **extra}
            if extra.get("unified_webhook_mode"):
                urls[platform_id] = (f"http://127.0.0.1:{dashboard}/api/platform/webhook/"
                                     f"{extra['webhook_uuid']}")
            else:
                instance["yunhu_webhook_port"] = port = free_port()
                urls[platform_id] = f"http://127.0.0.1:{port}{PATH}"
            settings["platform"].append(instance)
        for platform_id, extra in (failing or {}).items():
            settings["platform"].append({**settings["platform"][0], "id": platform_id,
                                         "yunhu_webhook_port": free_port(), **extra})
        cmd_config.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
        argv = [str(PYTHON), "-m", "yunhu_stream.integrations.astrbot_emulator", str(root)]
        async with run_child(argv, cwd=root, ready_marker=READY_MARKER, timeout=90) as child:
            for url in urls.values():
                await wait_listening(url, child, timeout=30)
            yield AstrBot(child, emu, llm, root, urls)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message in an OpenAI request (str or content parts)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""
