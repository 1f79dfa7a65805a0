"""The fake OpenAI-compatible LLM server, under its original import path.

It lives in :mod:`yunhu_stream.testing.fake_llm`; this module keeps
``from yunhu_stream.fake_llm import FakeLLM`` and
``python -m yunhu_stream.fake_llm --port 8000`` working.
"""

from __future__ import annotations

from .testing.fake_llm import (
    DEFAULT_ANSWER,
    FAULTS,
    Answer,
    FakeLLM,
    Fault,
    ToolCall,
    main,
    tokenize,
)

__all__ = ["DEFAULT_ANSWER", "FAULTS", "Answer", "FakeLLM", "Fault", "ToolCall", "main", "tokenize"]

if __name__ == "__main__":
    main()
