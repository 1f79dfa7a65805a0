"""yunhu-stream's log events in AstrBot's log (console and WebUI), at a chosen level."""

from __future__ import annotations

import logging

import structlog
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
    """Show yunhu-stream's events from ``level`` up in AstrBot's log, as logfmt lines.

    The library prints nothing by itself; inside AstrBot this is the application's
    logging set-up (the plugin calls it when it loads; calling it again replaces the
    level and handler). The token never appears in an event.

    Raises:
        ValueError: ``level`` is not one of DEBUG, INFO, WARNING, ERROR.
    """
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.format_exc_info,
            structlog.processors.LogfmtRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    library = logging.getLogger("yunhu_stream")
    for handler in [h for h in library.handlers if isinstance(h, _ToAstrBot)]:
        library.removeHandler(handler)
    library.addHandler(_ToAstrBot())
    library.setLevel(level)
    library.propagate = False  # AstrBot's own handlers already got it
