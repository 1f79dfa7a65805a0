"""AstrBot plugin: adds the YunHu platform type ``yunhu_stream`` (streamed LLM replies).

Drop this folder into AstrBot's ``data/plugins/`` (any folder name), restart AstrBot,
then add a platform of type ``yunhu_stream`` in the platform page and fill in the
bot's token. Everything else is in ``yunhu_stream.integrations.astrbot``.
"""

from astrbot.api import AstrBotConfig
from astrbot.api.star import Context, Star

# Importing it registers the platform type with AstrBot.
from yunhu_stream.integrations.astrbot import forward_logs


class YunhuStreamPlugin(Star):
    """Registers the adapter and shows yunhu-stream's log events in AstrBot's log."""

    def __init__(self, context: Context, config: AstrBotConfig | None = None) -> None:
        super().__init__(context)
        forward_logs((config or {}).get("log_level", "INFO"))
