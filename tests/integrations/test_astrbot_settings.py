"""The AstrBot adapter's parts that need no AstrBot: its settings, the offline root, imports.

These run in the test venv, where AstrBot is not installed (it has its own venv).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integrations._astrbot import PLUGIN
from tests.integrations._frameworks import modules_loaded_by_importing_yunhu_stream
from yunhu_stream import errors
from yunhu_stream.integrations._astrbot_config import (
    ADAPTER_NAME,
    DEFAULT_CONFIG,
    FIELD_DESCRIPTIONS,
    parse_settings,
)
from yunhu_stream.integrations.astrbot_emulator import PLATFORM_ID, PROVIDER_ID, prepare_root

TOKEN = "t0ken-never-shown-4242"



def config(**changes: Any) -> dict[str, Any]:
    return {**DEFAULT_CONFIG, "yunhu_token": TOKEN, **changes}


class TestSettings:
    def test_the_template_parses_into_the_defaults(self) -> None:
        """A new instance with only the token filled in: own port, markdown, no rollover."""
        s = parse_settings(config())
        assert (s.token, s.base_url, s.unified_webhook) == (TOKEN, None, False)
        assert (s.webhook_host, s.webhook_port, s.webhook_path) == ("0.0.0.0", 6197,
                                                                    "/yunhu/webhook")
        assert (s.content_type, s.max_message_bytes, s.rate_limit) == ("markdown", None, 10.0)
        assert (s.first_chunk, s.gap) == ("words", None)
        assert DEFAULT_CONFIG["type"] == ADAPTER_NAME

    def test_every_field_of_the_template_is_described_for_the_platform_page(self) -> None:
        """The platform page shows a description and type for each of the adapter's keys."""
        own = {k for k in DEFAULT_CONFIG if k.startswith("yunhu_")}
        assert own == set(FIELD_DESCRIPTIONS)
        assert all({"description", "type", "hint"} <= set(m) for m in FIELD_DESCRIPTIONS.values())

    def test_fields_change_what_they_say(self) -> None:
        """Each field maps to its setting; 0 turns rollover and the rate limit off."""
        s = parse_settings(config(yunhu_markdown=False, yunhu_max_message_bytes=3500,
                                  yunhu_rate_limit=0, yunhu_base_url="http://127.0.0.1:1/v1",
                                  yunhu_webhook_port="8080", unified_webhook_mode=True,
                                  yunhu_bot_id=" 37090343 ", yunhu_first_chunk="sentence",
                                  yunhu_gap_seconds=20))
        assert (s.content_type, s.max_message_bytes, s.rate_limit) == ("text", 3500, None)
        assert (s.base_url, s.webhook_port, s.unified_webhook) == ("http://127.0.0.1:1/v1",
                                                                   8080, True)
        assert (s.bot_id, s.first_chunk, s.gap) == ("37090343", "sentence", 20.0)

    @pytest.mark.parametrize(("changes", "message"), [
        ({"yunhu_token": ""}, "yunhu_token is empty"),
        ({"yunhu_token": None}, "yunhu_token is empty"),
        ({"yunhu_base_url": "ftp://x"}, "yunhu_base_url must be empty or an http"),
        ({"yunhu_webhook_path": "yunhu"}, "yunhu_webhook_path must be a path starting with '/'"),
        ({"yunhu_webhook_port": 0}, "yunhu_webhook_port must be an integer from 1 to 65535, not 0"),
        ({"yunhu_webhook_port": "x"}, "yunhu_webhook_port must be an integer from 1 to 65535"),
        ({"yunhu_max_message_bytes": 10}, "must be 0 (off) or at least 64, not 10"),
        ({"yunhu_rate_limit": -1}, "yunhu_rate_limit must be requests per second >= 0"),
        ({"yunhu_rate_limit": float("nan")}, "yunhu_rate_limit must be requests per second"),
        ({"yunhu_markdown": "yes"}, "yunhu_markdown must be True or False, not 'yes'"),
        ({"yunhu_first_chunk": "later"}, "yunhu_first_chunk must be one of 'at_once', 'words'"),
        ({"yunhu_gap_seconds": -1}, "yunhu_gap_seconds must be a number of seconds >= 0"),
    ])
    def test_a_bad_field_is_named_with_what_is_accepted(
        self, changes: dict[str, Any], message: str
    ) -> None:
        """Each bad value raises ConfigurationError naming the field; never the token."""
        with pytest.raises(errors.ConfigurationError) as info:
            parse_settings(config(**changes))
        assert message in str(info.value) and TOKEN not in str(info.value)

    def test_the_token_stays_out_of_the_repr(self) -> None:
        """Settings print without the token."""
        assert TOKEN not in repr(parse_settings(config()))


class TestOfflineRoot:
    def test_prepare_root_writes_an_astrbot_root_with_the_plugin(self, tmp_path: Path) -> None:
        """The root has AstrBot's marker, the plugin copied in, and a config with one
        yunhu_stream platform on loopback and the given provider as default, streaming."""
        root = prepare_root(tmp_path / "r", token=TOKEN, base_url="http://127.0.0.1:9/v1",
                            webhook_port=9001, dashboard_port=9002, plugins=[PLUGIN],
                            llm_base_url="http://127.0.0.1:9/llm/v1",
                            platform={"yunhu_markdown": False},
                            config={"platform_settings": {"reply_with_mention": True}})
        assert (root / ".astrbot").is_file()
        assert (root / "data" / "plugins" / PLUGIN.name / "main.py").is_file()
        settings = json.loads((root / "data" / "cmd_config.json").read_text(encoding="utf-8"))
        [platform] = settings["platform"]
        assert (platform["id"], platform["type"], platform["enable"]) == (
            PLATFORM_ID, ADAPTER_NAME, True)
        assert parse_settings(platform).content_type == "text"
        assert platform["yunhu_webhook_host"] == "127.0.0.1"
        assert settings["dashboard"]["host"] == "127.0.0.1"
        assert settings["provider"][0]["api_base"] == "http://127.0.0.1:9/llm/v1"
        assert settings["provider_settings"] == {"default_provider_id": PROVIDER_ID,
                                                 "streaming_response": True}
        assert settings["platform_settings"] == {"reply_with_mention": True}

    def test_a_folder_without_main_py_is_not_a_plugin(self, tmp_path: Path) -> None:
        """prepare_root refuses a plugin folder AstrBot could not load."""
        with pytest.raises(FileNotFoundError, match=r"no main\.py"):
            prepare_root(tmp_path, token=TOKEN, base_url="http://127.0.0.1:9/v1",
                         webhook_port=1, dashboard_port=2, plugins=[tmp_path / "nothing"])


class TestImports:
    @pytest.mark.anyio
    async def test_importing_yunhu_stream_does_not_import_astrbot(self) -> None:
        """`import yunhu_stream` (and its integrations package) never pulls in AstrBot."""
        assert await modules_loaded_by_importing_yunhu_stream("astrbot") == []

    def test_without_astrbot_the_import_says_where_it_runs(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Outside AstrBot the adapter's import fails with what to install."""
        monkeypatch.setitem(sys.modules, "astrbot", None)
        monkeypatch.delitem(sys.modules, "yunhu_stream.integrations.astrbot", raising=False)
        with pytest.raises(ImportError, match=r"runs inside AstrBot: install AstrBot"):
            __import__("yunhu_stream.integrations.astrbot")
