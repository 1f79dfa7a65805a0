"""Errors raised while reading an OpenAI-compatible chat completion stream.

::

    YunhuError
    └── LLMError                    reading the model's stream failed (.text: deltas so far)
        ├── LLMConnectionError      no connection, or it failed mid-stream (chained)
        │   └── LLMTimeoutError     connect_timeout or read_timeout passed
        ├── LLMHTTPStatusError      HTTP status >= 400 (.status, .body excerpt, .api_message)
        ├── LLMResponseError        not an event stream, or a chunk that is not JSON
        └── LLMStreamError          the stream itself failed part-way
            ├── LLMProviderError    an error object arrived mid-stream (.error, .code, .type)
            └── LLMIncompleteError  the connection ended without ``data: [DONE]``

The API key never appears in a message, a repr or a body excerpt: any occurrence
of it is replaced with ``***`` before the error is built.
"""

from __future__ import annotations

from typing import Any

from .errors import YunhuError

__all__ = [
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPStatusError",
    "LLMIncompleteError",
    "LLMProviderError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
]


class LLMError(YunhuError):
    """Reading a chat completion stream failed.

    Attributes:
        text: The text deltas received before the failure, joined (``""`` when
            none arrived), so a caller can still show or store what came.
        url: The request URL, without query string.
    """

    def __init__(self, message: str, *, url: str, text: str = "") -> None:
        super().__init__(message, text=text)
        self.url = url


class LLMConnectionError(LLMError):
    """The connection could not be made, or broke while the answer was streaming."""


class LLMTimeoutError(LLMConnectionError):
    """No connection within ``connect_timeout``, or no bytes for ``read_timeout`` seconds."""


class LLMHTTPStatusError(LLMError):
    """The server answered with an HTTP status of 400 or more.

    Attributes:
        status: The HTTP status code.
        body: The first few hundred characters of the response body.
        api_message: ``error.message`` from an OpenAI-style JSON body, if any.
    """

    def __init__(self, *, status: int, body: str, api_message: str | None, url: str) -> None:
        shown = api_message if api_message is not None else repr(body)
        super().__init__(f"{url}: HTTP {status}: {shown}", url=url)
        self.status = status
        self.body = body
        self.api_message = api_message


class LLMResponseError(LLMError):
    """The answer was not a chat completion event stream.

    Raised for a content type other than ``text/event-stream`` (often a JSON
    completion from a server that ignored ``stream: true``), for an event whose
    data is not a JSON object, and for an event larger than the parser's limit.

    Attributes:
        status: The HTTP status code.
        content_type: The response's content type.
        body: An excerpt of the offending body or event data.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int,
        content_type: str,
        body: str,
        text: str = "",
    ) -> None:
        super().__init__(message, url=url, text=text)
        self.status = status
        self.content_type = content_type
        self.body = body


class LLMStreamError(LLMError):
    """The stream started and then failed part-way; ``text`` holds what arrived."""


class LLMProviderError(LLMStreamError):
    """The server sent an error object instead of the next chunk.

    OpenAI-compatible servers report failures after the 200 status as
    ``data: {"error": {"message": ..., "type": ..., "code": ...}}`` (some also
    use ``event: error``).

    Attributes:
        error: The error object as sent (a dict; ``{"message": data}`` when the
            data was not a JSON object).
        code: ``error["code"]`` if present.
        type: ``error["type"]`` if present.
    """

    def __init__(self, error: dict[str, Any], *, url: str, text: str = "") -> None:
        message = error.get("message")
        shown = message if isinstance(message, str) else repr(error)
        super().__init__(
            f"{url}: the model's stream reported an error: {shown}", url=url, text=text
        )
        self.error = error
        self.code = error.get("code")
        self.type = error.get("type")


class LLMIncompleteError(LLMStreamError):
    """The connection ended cleanly but before ``data: [DONE]``: the answer may be cut off."""
