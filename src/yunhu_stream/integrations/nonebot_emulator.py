"""Run a NoneBot2 YunHu bot against :mod:`yunhu_stream.emulator` (or any API root).

``nonebot-adapter-yunhu`` hard-codes YunHu's API host, and on startup asks
YunHu's unofficial web API (``chat-web-go.jwzhd.com/v1/bot/bot-info``) who each
configured bot is; a bot whose lookup fails is never connected. Neither works
without YunHu itself. :class:`EmulatorAdapter` is the same adapter with two
changes, for tests and local demos:

* every bot API call goes to ``YUNHU_STREAM_BASE_URL`` (the setting this
  project's NoneBot plugin uses too, so one line points both at the emulator);
* the bot-info lookup is answered locally: each configured bot connects under
  its ``app_id``, with ``app_id`` as its nickname.

Register it instead of the stock adapter::

    import nonebot
    from yunhu_stream.integrations.nonebot_emulator import EmulatorAdapter

    nonebot.init()                     # .env: YUNHU_STREAM_BASE_URL=http://127.0.0.1:8300/open-apis/v1
    nonebot.get_driver().register_adapter(EmulatorAdapter)

Its name is still ``"YunHu"`` and its bots are ordinary
``nonebot.adapters.yunhu.Bot`` objects, so plugins cannot tell the difference.
"""

from __future__ import annotations

from typing import Any

try:
    from nonebot import get_plugin_config
    from nonebot.adapters.yunhu import Adapter
    from nonebot.adapters.yunhu.config import YunHuConfig
    from nonebot.adapters.yunhu.models import BotInfo
    from nonebot.compat import type_validate_python
    from nonebot.drivers import URL, Driver
    from pydantic import BaseModel
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "yunhu_stream.integrations.nonebot_emulator needs NoneBot2 and nonebot-adapter-yunhu; "
        "install them with: pip install 'yunhu-stream[nonebot]' "
        f"(import failed: {exc})"
    ) from exc

from .. import errors

__all__ = ["EmulatorAdapter"]


class _EmulatorConfig(BaseModel):
    yunhu_stream_base_url: str | None = None


class EmulatorAdapter(Adapter):
    """``nonebot-adapter-yunhu``'s adapter, talking to ``YUNHU_STREAM_BASE_URL``.

    Raises:
        errors.ConfigurationError: at registration, when ``YUNHU_STREAM_BASE_URL``
            is not set or is not an http(s) URL.
    """

    def __init__(self, driver: Driver, **kwargs: Any) -> None:
        base_url = get_plugin_config(_EmulatorConfig).yunhu_stream_base_url
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise errors.ConfigurationError(
                "EmulatorAdapter needs YUNHU_STREAM_BASE_URL set to the emulator's API root "
                f"(like http://127.0.0.1:8300/open-apis/v1), not {base_url!r}"
            )
        self.base_url = URL(base_url.rstrip("/") + "/")
        super().__init__(driver, **kwargs)

    def get_api_url(self, path: str) -> URL:
        """``path`` resolved against ``YUNHU_STREAM_BASE_URL`` instead of YunHu's host."""
        return self.base_url.joinpath(path)

    async def get_bot_info(self, bot_config: YunHuConfig) -> BotInfo:
        """A successful lookup naming the bot by its ``app_id`` (never the token)."""
        bot = {
            "id": 0, "botId": bot_config.app_id, "nickname": bot_config.app_id,
            "nicknameId": 0, "avatarId": 0, "avatarUrl": "", "token": "", "link": "",
            "introduction": "", "createBy": "", "createTime": 0, "headcount": 0,
            "private": 1, "uri": "",
        }
        return type_validate_python(BotInfo, {"code": 1, "msg": "success", "data": {"bot": bot}})
