"""yunhu-stream's log events in AstrBot's log (console and WebUI), at a chosen level."""

from __future__ import annotations

import logging

from astrbot.api import logger as astrbot_logger

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _ToAstrBot(logging.Handler):
    """Hands each record to AstrBot's logger, whose handlers feed its console and WebUI."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            astrbot_logger.log(record.levelno, "[yunhu-stream] %s", record.getMessage())
        except Exception:  # a log line must never break the work it describes
            self.handleError(record)


def forward_logs(level: str = "INFO") -> None:
    """Show yunhu-stream's events from ``level`` up in AstrBot's log.

    The library's loggers (``yunhu_stream.*``, standard library) print nothing until
    the application configures logging; inside AstrBot this is that set-up (the plugin
    calls it when it loads; calling it again replaces the level and handler). Lines
    read ``[yunhu-stream] stream_closed msg_id=... bytes=...``; the token is never in one.

    Raises:
        ValueError: ``level`` is not one of DEBUG, INFO, WARNING, ERROR.
    """
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    library = logging.getLogger("yunhu_stream")
    for handler in [h for h in library.handlers if isinstance(h, _ToAstrBot)]:
        library.removeHandler(handler)
    library.addHandler(_ToAstrBot())
    library.setLevel(level)
    library.propagate = False  # AstrBot's own handlers get it through the one above
