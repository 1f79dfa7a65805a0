"""The library's loggers: silent until the application configures logging.

One named standard-library logger per area (aiohttp's ``log.py`` is the model)::

    yunhu_stream.client      Bot, streams, delivery, recovery
    yunhu_stream.app         webhook apps and the dispatcher
    yunhu_stream.emulator    the local YunHu emulator
    yunhu_stream.llm         model streams
    yunhu_stream.sse         Server-Sent Events relays
    yunhu_stream.integrations framework plugins
    yunhu_stream.cli         the command line
    yunhu_stream.wschat      the WebSocket chat client and server

Each call names a short snake_case event with key/value context, structlog style::

    log.info("stream_closed", msg_id=..., bytes=..., chunks=...)

Where a call goes is decided when it is made:

* the application configured structlog (``structlog.configure``, or a test inside
  ``structlog.testing.capture_logs``): through structlog, so its processors,
  renderer and filtering apply and the logger name is the area's;
* otherwise: to the area's standard-library logger as ``"event key=value …"``
  (the values also in ``record.yunhu``), which prints nothing unless the
  application configured ``logging``, except that warnings and errors reach
  stderr through the standard library's last-resort handler.

The library never configures either. Values are made safe to print (control
characters, bidirectional overrides and lone surrogates are escaped), and a log
call never raises: a failing logger cannot break the work it describes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog

__all__ = ["Logger", "get_logger", "safe"]

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR
_METHODS = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}

# C0/C1 controls, DEL, bidirectional marks/overrides/isolates, lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

_DEFAULT_CONFIG: tuple[Any, ...] | None = None


def _config_shape() -> tuple[Any, ...]:
    config = structlog.get_config()
    return (
        tuple(type(p) for p in config["processors"]),
        type(config["logger_factory"]),
        config["wrapper_class"],
        config["context_class"],
    )


def _application_configured_structlog() -> bool:
    """True when structlog's configuration is not its built-in default.

    ``structlog.is_configured()`` alone stays True after ``capture_logs`` has
    restored the defaults, so the shape of the configuration decides.
    """
    if not structlog.is_configured():
        return False
    return _DEFAULT_CONFIG is None or _config_shape() != _DEFAULT_CONFIG


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe(value: object) -> object:
    """``value`` with any text made safe to print and encode; other values unchanged."""
    if isinstance(value, str):
        return _UNSAFE.sub(_escape, value) if _UNSAFE.search(value) else value
    return value


def _render(event: str, context: Mapping[str, Any]) -> str:
    parts = [event]
    for key, value in context.items():
        shown = value if isinstance(value, str) and " " not in value and value else repr(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


class Logger:
    """A structlog-style logger bound to one area (and optional context).

    Create with :func:`get_logger`; :meth:`bind` returns a new logger with more
    context and costs one small dict, nothing more, so it is cheap per stream.
    """

    __slots__ = ("_context", "_std", "name")

    def __init__(self, name: str, context: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._std = logging.getLogger(name)
        self._context: dict[str, Any] = dict(context or {})

    def __repr__(self) -> str:
        return f"<Logger {self.name}>"

    def bind(self, **context: Any) -> Logger:
        """A logger with ``context`` added to every event it logs."""
        return Logger(self.name, {**self._context, **context})

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` could be emitted (lets hot paths skip work)."""
        return _application_configured_structlog() or self._std.isEnabledFor(level)

    def debug(self, event: str, **context: Any) -> None:
        self._log(DEBUG, event, context)

    def info(self, event: str, **context: Any) -> None:
        self._log(INFO, event, context)

    def warning(self, event: str, **context: Any) -> None:
        self._log(WARNING, event, context)

    def error(self, event: str, **context: Any) -> None:
        self._log(ERROR, event, context)

    def exception(self, event: str, **context: Any) -> None:
        """An error with the exception being handled attached."""
        context.setdefault("exc_info", True)
        self._log(ERROR, event, context)

    def _log(self, level: int, event: str, context: dict[str, Any]) -> None:
        try:
            if _application_configured_structlog():
                merged = {k: safe(v) for k, v in {**self._context, **context}.items()}
                getattr(structlog.get_logger(self.name), _METHODS[level])(event, **merged)
                return
            if not self._std.isEnabledFor(level):
                return
            exc_info = context.pop("exc_info", None)
            merged = {
                **structlog.contextvars.get_contextvars(),
                **self._context,
                **context,
            }
            merged = {k: safe(v) for k, v in merged.items()}
            self._std.log(
                level, "%s", _render(event, merged), exc_info=exc_info,
                extra={"yunhu": {"event": event, **merged}}, stacklevel=3,
            )
        except Exception as exc:
            _report_failure(exc)


_reported = False


def _report_failure(exc: Exception) -> None:
    """Say once on stderr that a log call failed; never raise."""
    global _reported
    if _reported:
        return
    _reported = True
    with contextlib.suppress(Exception):  # nowhere left to report to
        sys.stderr.write(f"yunhu_stream: a log call failed and was skipped: {type(exc).__name__}\n")


def get_logger(area: str) -> Logger:
    """The logger of one area: ``get_logger("client")`` → ``yunhu_stream.client``."""
    return Logger(f"yunhu_stream.{area}")


if not structlog.is_configured():
    _DEFAULT_CONFIG = _config_shape()
