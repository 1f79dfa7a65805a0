"""Every error yunhu-stream raises, as one tree.

::

    YunhuError
    ├── ConfigurationError          (also ValueError) no token, bad base URL, a bad option
    │                               or argument value: names it, what was given, what is accepted
    ├── ClosedError                 you closed it, then used it again
    │   ├── BotClosedError          a request through a Bot after aclose()
    │   └── StreamClosedError       (also StreamError) a write after close() or abort()
    ├── StreamError                 a stream cannot take the call
    │   ├── StreamClosedError
    │   ├── WouldBlockError         write_nowait() with the buffer full
    │   └── StreamBrokenError       the other side went away mid-stream (carries .text)
    ├── TransportError              the network failed; chained from the aiohttp/OS error
    │   ├── ConnectError            no connection (refused, DNS, TLS): nothing was sent
    │   │   └── ConnectTimeoutError no connection within connect_timeout
    │   └── ResponseTimeoutError    no response within response_timeout after the body ended
    ├── HTTPStatusError             HTTP status >= 300 (status, body excerpt)
    ├── InvalidResponseError        a body that is not the JSON envelope (status, body excerpt)
    ├── APIError                    the envelope's code was not 1 (code, msg, endpoint)
    │   ├── InvalidParameterError   1002
    │   ├── UnauthorizedError       1003
    │   ├── BotBannedError          1004
    │   ├── ChatBannedError         1005
    │   └── RateLimitedError        1007 (retry_after, when known)
    ├── EventParseError             (also ValueError) a webhook body that is not a YunHu
    │                               event; names the bad field (yunhu_stream.events)
    ├── WebhookError                the emulator could not deliver a user's event to the
    │                               bot's webhook (.delivery; yunhu_stream.emulator)
    ├── FrameError                  (also ValueError) a WebSocket chat frame that is not
    │                               the protocol's; names the field (yunhu_stream.wschat)
    ├── FrameRefusedError           the WebSocket chat server refused a frame (.reason)
    ├── SSEParseError               (also ValueError) a malformed or oversized
    │                               event stream (yunhu_stream.sse)
    └── LLMError                    reading a model's stream failed (yunhu_stream.llm;
        ├── LLMConnectionError      .text holds the deltas so far)
        │   └── LLMTimeoutError
        ├── LLMHTTPStatusError
        ├── LLMResponseError
        └── LLMStreamError
            ├── LLMProviderError    an error object arrived mid-stream
            └── LLMIncompleteError  the stream ended without [DONE]

Every class is defined in one private module and shown here (and in
``yunhu_stream.events``, ``.sse``, ``.llm`` and ``.wschat`` for their own branches), so
``except yunhu_stream.errors.YunhuError`` catches everything the library raises.

Every error carries ``text``: the transcript of the stream it ended (for LLM
errors, the deltas received), so that nothing the caller wrote is lost when a
stream fails. It is ``""`` for errors that did not end a stream.

Bad arguments raise :class:`ConfigurationError` (a ``ValueError``) naming the
argument, the value given and what is accepted; a value of the wrong kind where
the library takes text (``write(42)``) raises ``TypeError``, as Python does.

The bot token never appears in a message or repr: URLs are shown with
``token=***``.
"""

from __future__ import annotations

from ._exceptions import (
    APIError,
    BotBannedError,
    BotClosedError,
    ChatBannedError,
    ClosedError,
    ConfigurationError,
    ConnectError,
    ConnectTimeoutError,
    EventParseError,
    FrameError,
    FrameRefusedError,
    HTTPStatusError,
    InvalidParameterError,
    InvalidResponseError,
    LLMConnectionError,
    LLMError,
    LLMHTTPStatusError,
    LLMIncompleteError,
    LLMProviderError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    RateLimitedError,
    ResponseTimeoutError,
    SSEParseError,
    StreamBrokenError,
    StreamClosedError,
    StreamError,
    TransportError,
    UnauthorizedError,
    WebhookError,
    WouldBlockError,
    YunhuError,
    api_error,
)
from ._public import publish

__all__ = [
    "APIError",
    "BotBannedError",
    "BotClosedError",
    "ChatBannedError",
    "ClosedError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "EventParseError",
    "FrameError",
    "FrameRefusedError",
    "HTTPStatusError",
    "InvalidParameterError",
    "InvalidResponseError",
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPStatusError",
    "LLMIncompleteError",
    "LLMProviderError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
    "RateLimitedError",
    "ResponseTimeoutError",
    "SSEParseError",
    "StreamBrokenError",
    "StreamClosedError",
    "StreamError",
    "TransportError",
    "UnauthorizedError",
    "WebhookError",
    "WouldBlockError",
    "YunhuError",
    "api_error",
]

publish(globals(), __all__)
