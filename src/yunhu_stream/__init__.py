"""yunhu-stream: stream chat messages into YunHu as they are produced."""

from __future__ import annotations

from ._types import MessageInfo, Recipient
from ._version import __version__

__all__ = ["MessageInfo", "Recipient", "__version__"]
