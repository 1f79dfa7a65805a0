"""``openai_chat_deltas``: an OpenAI-compatible chat completion stream over aiohttp."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from .. import _transport as transport
from .. import _validate as validate
from .._exceptions import (
    ConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMHTTPStatusError,
    LLMIncompleteError,
    LLMProviderError,
    LLMResponseError,
    LLMTimeoutError,
)
from .._log import get_logger
from ..sse._parse import DEFAULT_MAX_EVENT_CHARS, SSEEvent, SSEParseError, SSEParser
from ._chunks import delta_of_chunk

log = get_logger("llm")

_RESERVED = ("model", "messages", "stream")
_EXCERPT = 500
_SECRET_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")


def openai_chat_deltas(
    *,
    base_url: str,
    api_key: str | None,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    session: aiohttp.ClientSession | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float | None = 120.0,
    headers: Mapping[str, str] | None = None,
    max_event_chars: int = DEFAULT_MAX_EVENT_CHARS,
    **extra_params: Any,
) -> AsyncGenerator[str, None]:
    """Stream a chat completion and yield its text deltas.

    Arguments are checked at once; the request starts on the first iteration.
    Deltas are ``choices[0].delta.content`` of each chunk; chunks without text
    (the role-only first chunk, the ``finish_reason`` chunk, usage chunks) are
    skipped. Iteration ends at ``data: [DONE]``. Closing the generator early
    (``aclose()``, ``break`` inside ``aclosing``) closes the connection.

    Args:
        base_url: The API root, e.g. ``"https://api.openai.com/v1"``;
            ``/chat/completions`` is appended unless already there.
        api_key: Sent as ``Authorization: Bearer``; ``None`` sends no header
            (local servers). Never logged or shown in errors.
        model: The model name.
        messages: The chat messages, e.g. ``[{"role": "user", "content": "hi"}]``.
        session: An aiohttp session to use (left open); by default a private
            one is made and closed when the generator ends.
        connect_timeout: Seconds allowed to connect.
        read_timeout: Seconds allowed between two reads of the body (a stalled
            model), or ``None`` for no limit.
        headers: Extra request headers (e.g. ``{"api-key": ...}`` for Azure).
        max_event_chars: Largest single SSE event accepted.
        **extra_params: Further JSON body fields (``temperature``, ``max_tokens``,
            ``stream_options``...). ``model``, ``messages`` and ``stream`` are
            set by this function and refused here.

    Returns:
        An async generator of non-empty ``str`` deltas.

    Raises:
        ConfigurationError: at call time, for an invalid argument.
        LLMError: while iterating; see the module's error tree.
    """
    url = _check_base_url(base_url)
    if api_key is not None and (
        not isinstance(api_key, str) or not api_key or any(c.isspace() for c in api_key)
    ):
        raise ConfigurationError("api_key must be None or a non-empty string without whitespace")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a non-empty string, not {model!r}")
    _check_messages(messages)
    if session is not None and not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError(
            f"session must be an aiohttp.ClientSession or None, not {type(session).__name__}"
        )
    if headers is not None and (
        not isinstance(headers, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        or any("\r" in v or "\n" in v for v in headers.values())
    ):
        raise ConfigurationError("headers must be a mapping of str to str without line breaks")
    validate.seconds("connect_timeout", connect_timeout)
    validate.optional_seconds("read_timeout", read_timeout)
    reserved = sorted(set(extra_params) & set(_RESERVED))
    if reserved:
        raise ConfigurationError(
            f"{', '.join(reserved)} cannot be passed as extra parameters: "
            "openai_chat_deltas sets model, messages and stream itself"
        )
    body = {"model": model, "messages": list(messages), **extra_params, "stream": True}
    try:
        payload = json.dumps(body, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"messages and extra parameters must be JSON: {exc}") from exc
    request_headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        **(headers or {}),
    }
    if api_key is not None:
        request_headers["Authorization"] = f"Bearer {api_key}"
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
    request = _Request(url, payload, request_headers, timeout, api_key, model, max_event_chars)
    return _stream(request, session)


class _Request:
    """Everything one streamed completion needs; its repr hides the headers."""

    def __init__(
        self,
        url: URL,
        payload: bytes,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
        api_key: str | None,
        model: str,
        max_event_chars: int,
    ) -> None:
        self.url = url
        self.shown_url = str(url.with_query(None).with_fragment(None).with_user(None))
        self.payload = payload
        self.headers = headers
        self.timeout = timeout
        self.secrets = [api_key] if api_key else []
        self.secrets += [
            value
            for name, value in headers.items()
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS) and len(value) >= 4
        ]
        self.model = model
        self.max_event_chars = max_event_chars

    def __repr__(self) -> str:
        return f"<_Request {self.shown_url} model={self.model!r}>"

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


async def _stream(
    request: _Request, session: aiohttp.ClientSession | None
) -> AsyncGenerator[str, None]:
    own = session is None
    client = aiohttp.ClientSession() if session is None else session
    started = time.monotonic()
    parts: list[str] = []
    url = request.shown_url
    log.debug("llm_stream_started", url=url, model=request.model)
    try:
        async with transport.request(
            client, "POST", request.url, endpoint=url, secrets=request.secrets,
            error=_network_error(url), data=request.payload, headers=request.headers,
            timeout=request.timeout,
        ) as resp:
            await _check_response(resp, request)
            parser = SSEParser(max_event_chars=request.max_event_chars)
            async for chunk in resp.content.iter_any():
                for event in parser.feed(chunk):
                    if event.data == "[DONE]":
                        log.info(
                            "llm_stream_finished",
                            model=request.model,
                            deltas=len(parts),
                            chars=_chars(parts),
                            duration_ms=round((time.monotonic() - started) * 1000, 3),
                        )
                        return
                    delta = _delta_of_event(event, request, resp, parts)
                    if delta:
                        parts.append(delta)
                        yield delta
            parser.close()
            raise LLMIncompleteError(
                f"{url}: the connection ended before 'data: [DONE]'"
                + (" in the middle of an event" if parser.pending else ""),
                url=url,
                text="".join(parts),
            )
    except LLMError as exc:
        exc.text = "".join(parts)
        log.warning("llm_stream_failed", url=url, error=type(exc).__name__, chars=len(exc.text))
        raise
    except SSEParseError as exc:
        raise LLMResponseError(
            f"{url}: {exc}",
            url=url,
            status=200,
            content_type="text/event-stream",
            body="",
            text="".join(parts),
        ) from exc
    finally:
        if own:
            await client.close()


def _network_error(url: str) -> transport.ErrorFactory:
    def build(kind: transport.FailureKind, detail: str) -> LLMError:
        if kind in ("connect_timeout", "response_timeout"):
            return LLMTimeoutError(f"{url}: timed out ({detail})", url=url)
        return LLMConnectionError(f"{url}: connection failed ({detail})", url=url)

    return build


async def _check_response(resp: aiohttp.ClientResponse, request: _Request) -> None:
    url = request.shown_url
    if resp.status >= 400:
        raw = await resp.content.read(4 * _EXCERPT)
        body = request.redact(raw.decode("utf-8", "replace"))
        api_message = None
        try:
            error = json.loads(body).get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                api_message = error["message"]
            elif isinstance(error, str):
                api_message = error
        except (ValueError, AttributeError):
            pass
        raise LLMHTTPStatusError(
            status=resp.status, body=body[:_EXCERPT], api_message=api_message, url=url
        )
    if resp.content_type != "text/event-stream":
        raw = await resp.content.read(4 * _EXCERPT)
        body = request.redact(raw.decode("utf-8", "replace"))[:_EXCERPT]
        raise LLMResponseError(
            f"{url}: expected a text/event-stream answer, got {resp.content_type!r}: {body!r}",
            url=url,
            status=resp.status,
            content_type=resp.content_type,
            body=body,
        )


def _delta_of_event(
    event: SSEEvent, request: _Request, resp: aiohttp.ClientResponse, parts: list[str]
) -> str | None:
    url = request.shown_url
    try:
        obj = json.loads(event.data)
    except ValueError:
        obj = None
    if event.event == "error":
        error = obj.get("error", obj) if isinstance(obj, dict) else None
        raise LLMProviderError(
            error if isinstance(error, dict) else {"message": request.redact(event.data)},
            url=url,
            text="".join(parts),
        )
    if not isinstance(obj, dict):
        if event.event != "message":
            return None  # a typed side event (e.g. "ping") that is not part of the answer
        body = request.redact(event.data[:_EXCERPT])
        raise LLMResponseError(
            f"{url}: an event's data is not a JSON object: {body!r}",
            url=url,
            status=resp.status,
            content_type=resp.content_type,
            body=body,
        )
    return delta_of_chunk(obj, url=url, parts=parts)


def _chars(parts: list[str]) -> int:
    return sum(map(len, parts))


def _check_base_url(base_url: object) -> URL:
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, not {type(base_url).__name__}")
    try:
        url = URL(base_url)
    except ValueError as exc:
        raise ConfigurationError(f"base_url is not a URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            "base_url must be an http:// or https:// URL such as 'https://api.openai.com/v1'"
        )
    path = url.path.rstrip("/")
    if path.endswith("/chat/completions"):
        return url.with_path(path).with_query(url.query)
    return url.with_path(path + "/chat/completions").with_query(url.query)


def _check_messages(messages: object) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ConfigurationError(
            "messages must be a non-empty list of dicts like {'role': 'user', 'content': 'hi'}"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise ConfigurationError(
                f"messages[{i}] must be a dict with a 'role' string, not {message!r}"
            )
