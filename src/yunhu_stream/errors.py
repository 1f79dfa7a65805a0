"""Every error yunhu-stream raises, as one tree.

::

    YunhuError
    ├── ConfigurationError          (also ValueError) no token, bad base URL, bad option
    ├── StreamError                 a stream cannot take the call
    │   ├── StreamClosedError       you closed or aborted it, then used it again
    │   ├── WouldBlockError         write_nowait() with the buffer full
    │   └── StreamBrokenError       the other side went away mid-stream (carries .text)
    ├── TransportError              the network failed; chained from the aiohttp/OS error
    │   ├── ConnectTimeoutError     no connection within connect_timeout
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

The last three branches live beside the code that raises them and are
re-exported here, so ``except yunhu_stream.errors.YunhuError`` catches all.

Every error may carry ``text``: the transcript of the stream it ended, so that
nothing the caller wrote is lost when a stream fails. It is ``None`` for errors
that did not come from a stream.

The bot token never appears in a message or repr: URLs are shown with
``token=***``.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "BotBannedError",
    "ChatBannedError",
    "ConfigurationError",
    "ConnectTimeoutError",
    "EventParseError",
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
    "WouldBlockError",
    "YunhuError",
    "api_error",
]


class YunhuError(Exception):
    """Base of every error raised by yunhu-stream.

    Attributes:
        text: The full transcript of the stream this error ended, or ``None``.
    """

    text: str | None = None

    def __init__(self, message: str, *, text: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if text is not None:
            self.text = text


class ConfigurationError(YunhuError, ValueError):
    """A Bot or stream was configured with a missing or invalid value."""


class StreamError(YunhuError):
    """A stream cannot carry out the call in its current state."""


class StreamClosedError(StreamError):
    """The stream was closed or aborted by its owner and then used again."""


class WouldBlockError(StreamError):
    """``write_nowait()`` was called while the stream's buffer was full."""


class StreamBrokenError(StreamError):
    """The stream failed part-way; ``text`` holds everything that was written."""


class TransportError(YunhuError):
    """The network failed (connection refused, reset, DNS, TLS, timeout).

    Attributes:
        endpoint: The API endpoint being called, e.g. ``"bot/send-stream"``.
    """

    def __init__(self, message: str, *, endpoint: str, text: str | None = None) -> None:
        super().__init__(message, text=text)
        self.endpoint = endpoint


class ConnectTimeoutError(TransportError):
    """No connection to the server could be made within ``connect_timeout``."""


class ResponseTimeoutError(TransportError):
    """The server sent no response within ``response_timeout`` after the body ended."""


class HTTPStatusError(YunhuError):
    """The server answered with an HTTP status of 300 or more (redirects are not followed).

    Attributes:
        status: The HTTP status code.
        body: The first few hundred characters of the response body.
        endpoint: The API endpoint being called.
    """

    def __init__(
        self, *, status: int, body: str, endpoint: str, text: str | None = None
    ) -> None:
        super().__init__(f"{endpoint}: HTTP {status}: {body!r}", text=text)
        self.status = status
        self.body = body
        self.endpoint = endpoint


class InvalidResponseError(YunhuError):
    """The server's answer was not the JSON envelope ``{"code", "msg", "data"}``.

    Attributes:
        status: The HTTP status code.
        body: The first few hundred characters of the response body.
        endpoint: The API endpoint being called.
    """

    def __init__(
        self, *, status: int, body: str, endpoint: str, text: str | None = None
    ) -> None:
        super().__init__(
            f"{endpoint}: HTTP {status} with a body that is not the JSON envelope: {body!r}",
            text=text,
        )
        self.status = status
        self.body = body
        self.endpoint = endpoint


class APIError(YunhuError):
    """YunHu answered with a code other than 1.

    Attributes:
        code: The envelope's ``code``.
        msg: The envelope's ``msg`` (or ``message``).
        endpoint: The API endpoint being called.
    """

    def __init__(self, *, code: int, msg: str, endpoint: str, text: str | None = None) -> None:
        super().__init__(f"{endpoint}: code {code}: {msg}", text=text)
        self.code = code
        self.msg = msg
        self.endpoint = endpoint


class InvalidParameterError(APIError):
    """Code 1002: a parameter was missing or invalid (also: empty content)."""


class UnauthorizedError(APIError):
    """Code 1003: bad token, or the user is not the bot's friend."""


class BotBannedError(APIError):
    """Code 1004: the bot is banned."""


class ChatBannedError(APIError):
    """Code 1005: the chat is banned."""


class RateLimitedError(APIError):
    """Code 1007: over the frequency limit.

    Attributes:
        retry_after: Seconds to wait before retrying, when known, else ``None``.
    """

    def __init__(
        self,
        *,
        code: int,
        msg: str,
        endpoint: str,
        text: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code=code, msg=msg, endpoint=endpoint, text=text)
        self.retry_after = retry_after


_BY_CODE: dict[int, type[APIError]] = {
    1002: InvalidParameterError,
    1003: UnauthorizedError,
    1004: BotBannedError,
    1005: ChatBannedError,
    1007: RateLimitedError,
}


def api_error(code: int, msg: str, endpoint: str, *, text: str | None = None) -> APIError:
    """Build the APIError subclass documented for ``code`` (plain APIError otherwise)."""
    return _BY_CODE.get(code, APIError)(code=code, msg=msg, endpoint=endpoint, text=text)


from ._event_models import EventParseError  # noqa: E402 - they subclass YunhuError above
from ._llm_errors import (  # noqa: E402
    LLMConnectionError,
    LLMError,
    LLMHTTPStatusError,
    LLMIncompleteError,
    LLMProviderError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
)
from ._sse_parse import SSEParseError  # noqa: E402
