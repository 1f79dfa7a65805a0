"""Text deltas out of chat completion chunks: JSON dicts and the ``openai`` package's objects."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterable, Mapping
from typing import Any

from .._exceptions import LLMProviderError

__all__ = ["delta_of_chunk", "deltas_from"]


def delta_of_chunk(obj: Mapping[str, Any], *, url: str, parts: list[str]) -> str | None:
    """``choices[0].delta.content`` of a ``chat.completion.chunk`` dict, or None.

    Raises:
        LLMProviderError: the dict carries an ``error`` (``parts`` give its ``text``).
    """
    error = obj.get("error")
    if error:
        raise LLMProviderError(
            error if isinstance(error, dict) else {"message": str(error)},
            url=url,
            text="".join(parts),
        )
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else None


def deltas_from(source: AsyncIterable[Any]) -> AsyncGenerator[str, None]:
    """Yield the text deltas of a chat completion stream you already have.

    Accepts an async iterable of:

    * ``str`` — passed through (empty strings skipped);
    * objects with ``.choices[0].delta.content`` — the ``openai`` package's
      ``ChatCompletionChunk`` (from ``await client.chat.completions.create(...,
      stream=True)``). This is duck typing: ``openai`` is not a dependency;
    * dicts shaped like ``chat.completion.chunk`` JSON; one with an ``error``
      key raises :class:`LLMProviderError`.

    The source is closed (``aclose()``, or an async ``close()`` as on
    ``openai.AsyncStream``) when the generator ends, however it ends.

    Raises:
        TypeError: at call time if ``source`` is not an async iterable; while
            iterating, for an item of none of the accepted kinds.
    """
    if not isinstance(source, AsyncIterable):
        raise TypeError(
            f"deltas_from() takes an async iterable (e.g. an openai AsyncStream), "
            f"not {type(source).__name__}"
        )
    return _deltas_from(source)


async def _deltas_from(source: AsyncIterable[Any]) -> AsyncGenerator[str, None]:
    iterator = aiter(source)
    parts: list[str] = []
    try:
        async for item in iterator:
            if isinstance(item, str):
                delta: str | None = item
            elif isinstance(item, Mapping):
                delta = delta_of_chunk(item, url="deltas_from()", parts=parts)
            elif hasattr(item, "choices"):
                delta = _delta_of_object(item)
            else:
                raise TypeError(
                    "deltas_from() items must be str, chat.completion.chunk dicts or objects "
                    f"with .choices (openai ChatCompletionChunk), not {type(item).__name__}"
                )
            if delta:
                parts.append(delta)
                yield delta
    finally:
        closed: set[int] = set()
        for obj in (iterator, source):
            if id(obj) in closed:
                continue
            closed.add(id(obj))
            closer = getattr(obj, "aclose", None) or getattr(obj, "close", None)
            if closer is not None and inspect.iscoroutinefunction(closer):
                await closer()


def _delta_of_object(chunk: Any) -> str | None:
    choices = chunk.choices
    if not choices:
        return None
    delta = getattr(choices[0], "delta", None)
    content = getattr(delta, "content", None)
    return content if isinstance(content, str) else None
