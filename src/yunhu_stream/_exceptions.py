"""Every exception class of the library; ``errors`` draws the tree and re-exports them.

One module so that no other module needs a runtime import of another to raise or
catch: the core, events, SSE and LLM code all import from here, and nothing here
imports back.
"""

from __future__ import annotations

from typing import Any


class YunhuError(Exception):
    """Base of every error raised by yunhu-stream.

    Attributes:
        text: The transcript of the stream (or model answer) this error ended:
            everything the caller wrote, so nothing is lost. ``""`` for errors
            that did not end a stream.
    """

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only arguments, so rebuild from the attributes:
        # errors then survive pickling (worker processes, task queues).
        return (_rebuild, (type(self), self.args, self.__dict__))


class ConfigurationError(YunhuError, ValueError):
    """A Bot or stream was configured with a missing or invalid value."""


class ClosedError(YunhuError):
    """Something you closed (a stream, a Bot) was used again."""


class BotClosedError(ClosedError):
    """The Bot was closed (``aclose()``) and then asked to make a request."""


class StreamError(YunhuError):
    """A stream cannot carry out the call in its current state."""


class StreamClosedError(StreamError, ClosedError):
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

    def __init__(self, message: str, *, endpoint: str, text: str = "") -> None:
        super().__init__(message, text=text)
        self.endpoint = endpoint


class ConnectError(TransportError):
    """No connection could be made (refused, DNS, TLS): nothing of the request was sent."""


class ConnectTimeoutError(ConnectError):
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
        self, *, status: int, body: str, endpoint: str, text: str = ""
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
        self, *, status: int, body: str, endpoint: str, text: str = ""
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

    def __init__(self, *, code: int, msg: str, endpoint: str, text: str = "") -> None:
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
        text: str = "",
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


def api_error(code: int, msg: str, endpoint: str, *, text: str = "") -> APIError:
    """Build the APIError subclass documented for ``code`` (plain APIError otherwise)."""
    return _BY_CODE.get(code, APIError)(code=code, msg=msg, endpoint=endpoint, text=text)


class EventParseError(YunhuError, ValueError):
    """A webhook body is not a YunHu event.

    The message names the field and what was wrong, e.g.
    ``event.sender.senderId: missing``.

    Attributes:
        path: Dotted path of the offending field (``"body"`` for the body itself).
        reason: What was wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WebhookError(YunhuError):
    """The emulator could not deliver a user's event to the bot's webhook: the bot was not
    reachable, or answered with an HTTP status >= 300.

    Attributes:
        delivery: The emulator's record of what was sent and what came back
            (``yunhu_stream.emulator.Delivery``).
    """

    def __init__(self, message: str, *, delivery: Any) -> None:
        super().__init__(message)
        self.delivery = delivery


class FrameError(YunhuError, ValueError):
    """A WebSocket chat frame that is not the protocol's (not JSON, not an object, a bad
    field); the message names the field, what it held and what is accepted
    (``yunhu_stream.wschat``)."""


class FrameRefusedError(YunhuError):
    """The WebSocket chat server refused a frame with an error frame.

    Attributes:
        reason: The server's reason, as it gave it.
    """

    def __init__(self, reason: str, *, text: str = "") -> None:
        super().__init__(f"the chat server refused the frame: {reason}", text=text)
        self.reason = reason


class SSEParseError(YunhuError, ValueError):
    """An event or line grew past the parser's ``max_event_chars`` limit."""


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


def _rebuild(cls: type[YunhuError], args: tuple[Any, ...], state: dict[str, Any]) -> YunhuError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
