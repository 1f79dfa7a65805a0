"""The AstrBot adapter's settings: the template of its platform page, and their checks.

Kept out of the ``astrbot`` subpackage so that it imports without AstrBot (the
emulator helpers and the tests use it too).

AstrBot stores one dict per platform instance and hands it to the adapter. The keys
are prefixed ``yunhu_`` because AstrBot keeps one field description table for every
adapter's keys, and a bare ``port`` or ``token`` is already described there for others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import _validate as validate
from .. import errors
from .._client import DEFAULT_BASE_URL

ADAPTER_NAME = "yunhu_stream"
"""The adapter's type name in AstrBot (``platform[].type``)."""

DISPLAY_NAME = "云湖 YunHu (yunhu-stream)"

DESCRIPTION = "云湖 (YunHu) 机器人：真正的流式回复（send-stream），失败时编辑恢复，长回复自动分条。"

FIRST_CHUNK_POLICIES = ("at_once", "words", "sentence")
"""``yunhu_first_chunk``: send at once; never markup alone; wait for a sentence (<= 1 s)."""

DEFAULT_CONFIG: dict[str, Any] = {
    "id": "yunhu",
    "type": ADAPTER_NAME,
    "enable": False,
    "yunhu_token": "",
    "yunhu_bot_id": "",
    "unified_webhook_mode": False,
    "webhook_uuid": "",
    "yunhu_webhook_host": "0.0.0.0",  # noqa: S104 - YunHu must reach it; users put a proxy in front
    "yunhu_webhook_port": 6197,
    "yunhu_webhook_path": "/yunhu/webhook",
    "yunhu_base_url": "",
    "yunhu_markdown": True,
    "yunhu_max_message_bytes": 0,
    "yunhu_first_chunk": "words",
    "yunhu_gap_seconds": 0.0,
    "yunhu_rate_limit": 10.0,
}
"""What a new YunHu platform instance starts with in AstrBot's platform page."""

FIELD_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "yunhu_token": {
        "description": "机器人 Token",
        "type": "string",
        "hint": "云湖控制台中机器人的 Token。只用于调用云湖 API，不会出现在日志里。",
    },
    "yunhu_bot_id": {
        "description": "机器人 ID",
        "type": "string",
        "hint": "机器人的云湖 ID，用于识别群聊中 @机器人 和引用机器人的消息。"
                "留空时从第一条私聊消息中得知。",
    },
    "yunhu_webhook_host": {
        "description": "Webhook 监听地址",
        "type": "string",
        "hint": "独立端口模式下 Webhook 服务器监听的地址。",
        "condition": {"unified_webhook_mode": False},
    },
    "yunhu_webhook_port": {
        "description": "Webhook 端口",
        "type": "int",
        "hint": "独立端口模式下 Webhook 服务器的端口。",
        "condition": {"unified_webhook_mode": False},
    },
    "yunhu_webhook_path": {
        "description": "Webhook 路径",
        "type": "string",
        "hint": "云湖推送事件的路径。云湖的推送没有签名，一个难以猜到的路径就是它唯一的密钥。",
        "condition": {"unified_webhook_mode": False},
    },
    "yunhu_base_url": {
        "description": "API 地址",
        "type": "string",
        "hint": f"留空即云湖官方地址 {DEFAULT_BASE_URL}；测试时填写模拟器的 base_url。",
    },
    "yunhu_markdown": {
        "description": "以 Markdown 发送",
        "type": "bool",
        "hint": "关闭后以纯文本发送。",
    },
    "yunhu_max_message_bytes": {
        "description": "单条消息最大字节数",
        "type": "int",
        "hint": "超过后在段落、行或句子结束处接着发下一条消息（UTF-8 字节，至少 64）。"
                "0 表示不分条；云湖未公开上限。",
    },
    "yunhu_first_chunk": {
        "description": "第一段何时发出",
        "type": "string",
        "options": ["at_once", "words", "sentence"],
        "labels": ["立即", "不以单独的 Markdown 符号开头", "等到第一句话结束（最多 1 秒）"],
        "hint": "避免回复以单独的 “#”、空行等开头。",
    },
    "yunhu_gap_seconds": {
        "description": "长时间停顿后另起一条",
        "type": "float",
        "hint": "模型停顿（调用工具、思考）超过这么多秒时，先结束当前消息，之后的文字另起一条。"
                "0 表示不分；云湖未公开流式请求的空闲超时。",
    },
    "yunhu_rate_limit": {
        "description": "每秒请求数上限",
        "type": "float",
        "hint": "每个接口每秒的请求数，本平台实例的所有流式和普通发送共享"
                "（云湖文档为 10）。0 表示不限。",
    },
}
"""Descriptions AstrBot's platform page shows for the adapter's own keys."""


@dataclass(frozen=True)
class Settings:
    """One platform instance's settings, checked.

    Attributes:
        token: The bot token (never logged, never in an error message).
        bot_id: The bot's YunHu id, ``""`` if not configured.
        base_url: API root, ``None`` for YunHu's.
        unified_webhook: Receive events through AstrBot's unified webhook route.
        webhook_host, webhook_port, webhook_path: The adapter's own webhook server.
        content_type: ``"markdown"`` or ``"text"``.
        max_message_bytes: Rollover size, ``None`` for off.
        first_chunk: ``"at_once"``, ``"words"`` (never markup alone) or ``"sentence"``.
        gap: Seconds of silence that end a message, ``None`` for off.
        rate_limit: Requests per second per endpoint, ``None`` for off.
    """

    token: str
    bot_id: str
    base_url: str | None
    unified_webhook: bool
    webhook_host: str
    webhook_port: int
    webhook_path: str
    content_type: str
    max_message_bytes: int | None
    first_chunk: str
    gap: float | None
    rate_limit: float | None

    def __repr__(self) -> str:
        return (f"Settings(bot_id={self.bot_id!r}, base_url={self.base_url!r}, "
                f"unified_webhook={self.unified_webhook}, token='***')")


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Check one platform instance's config dict and return its settings.

    Raises:
        errors.ConfigurationError: naming the field, what it holds (never the token)
            and what is accepted.
    """
    token = config.get("yunhu_token")
    if not isinstance(token, str) or not token.strip():
        raise errors.ConfigurationError(
            "yunhu_token is empty: paste the bot's token from the YunHu console "
            "into the platform's 机器人 Token field"
        )
    base_url = _text(config, "yunhu_base_url").strip() or None
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise validate.fail("yunhu_base_url", "empty or an http:// or https:// URL", base_url)
    path = _text(config, "yunhu_webhook_path", "/yunhu/webhook")
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise validate.fail("yunhu_webhook_path", "a path starting with '/', without spaces",
                            path)
    port = validate.integer("yunhu_webhook_port", _number(config, "yunhu_webhook_port", 6197),
                            minimum=1, maximum=65535)
    rollover = validate.integer("yunhu_max_message_bytes",
                                _number(config, "yunhu_max_message_bytes", 0), minimum=0)
    if 0 < rollover < 64:
        raise validate.fail("yunhu_max_message_bytes", "0 (off) or at least 64", rollover)
    first_chunk = validate.choice("yunhu_first_chunk", config.get("yunhu_first_chunk", "words"),
                                  FIRST_CHUNK_POLICIES)
    gap = validate.seconds("yunhu_gap_seconds", config.get("yunhu_gap_seconds", 0.0), zero=True)
    rate = config.get("yunhu_rate_limit", 10.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate >= 0 \
            or rate == float("inf"):
        raise validate.fail("yunhu_rate_limit", "requests per second >= 0 (0: no limit)", rate)
    return Settings(
        token=token.strip(),
        bot_id=_text(config, "yunhu_bot_id").strip(),
        base_url=base_url,
        unified_webhook=validate.boolean("unified_webhook_mode",
                                         config.get("unified_webhook_mode", False)),
        webhook_host=_text(config, "yunhu_webhook_host", "0.0.0.0").strip() or "0.0.0.0",  # noqa: S104
        webhook_port=port,
        webhook_path=path,
        content_type="markdown" if validate.boolean(
            "yunhu_markdown", config.get("yunhu_markdown", True)) else "text",
        max_message_bytes=rollover or None,
        first_chunk=first_chunk,
        gap=gap or None,
        rate_limit=float(rate) if rate else None,
    )


def _text(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key, default)
    return default if value is None else validate.text(key, value, empty=True)


def _number(config: Mapping[str, Any], key: str, default: int) -> object:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # the platform page may hand a number over as text
    return value
