"""Token streams from OpenAI-compatible chat completion APIs, without a vendor SDK.

::

    from yunhu_stream.llm import openai_chat_deltas

    deltas = openai_chat_deltas(
        base_url="https://api.openai.com/v1", api_key=key, model="gpt-4o-mini",
        messages=[{"role": "user", "content": "你好"}],
    )
    async with bot.stream("user:7058262") as s:
        await s.pipe(deltas)

:func:`openai_chat_deltas` speaks the wire protocol over aiohttp (any server with
``POST {base_url}/chat/completions`` and ``stream: true``: OpenAI, DeepSeek,
Qwen/DashScope compatible mode, vLLM, Ollama, llama.cpp, OpenRouter...).
:func:`deltas_from` turns a stream you already have (the ``openai`` package's
``AsyncStream``, or dicts) into the same plain text deltas.

Errors derive from :class:`LLMError` (see the tree in ``_llm_errors``), and every
one carries ``.text``: the deltas received before it.
"""

from __future__ import annotations

from .._exceptions import (
    LLMConnectionError,
    LLMError,
    LLMHTTPStatusError,
    LLMIncompleteError,
    LLMProviderError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
)
from .._public import publish
from ._chunks import deltas_from
from ._openai import openai_chat_deltas

__all__ = [
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPStatusError",
    "LLMIncompleteError",
    "LLMProviderError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
    "deltas_from",
    "openai_chat_deltas",
]

publish(globals(), __all__)
