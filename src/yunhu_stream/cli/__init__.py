"""The ``yunhu-stream`` command: ``send``, ``emulator`` and ``demo`` (see docs/cli.md).

This is an application, so unlike the library it configures logging: warnings to
stderr by default, ``-v`` for info, ``-vv`` for debug. The bot token never reaches
stdout or stderr (it is redacted from every log line).
"""

from __future__ import annotations

from .._public import publish
from ._common import ExitCode
from ._main import build_parser, main

__all__ = ["ExitCode", "build_parser", "main"]

publish(globals(), __all__)
