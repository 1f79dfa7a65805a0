"""The public surface: what `import yunhu_stream` and its public modules promise."""

from __future__ import annotations

import importlib

import pytest

import yunhu_stream

PUBLIC_MODULES = ["yunhu_stream", "yunhu_stream.errors", "yunhu_stream.emulator",
                  "yunhu_stream.events", "yunhu_stream.app", "yunhu_stream.mentions",
                  "yunhu_stream.llm", "yunhu_stream.sse", "yunhu_stream.testing"]


def isort_key(name: str) -> tuple[int, str]:
    """isort order, as ruff's RUF022 keeps __all__: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    """Every public module lists its names in a sorted __all__, and each of them exists."""
    module = importlib.import_module(name)
    names = list(module.__all__)
    if name == "yunhu_stream.testing":  # the fixture is appended only when pytest is present
        names.remove("emulator")
    assert names == sorted(names, key=isort_key)
    assert len(set(names)) == len(names)
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []


def test_every_error_derives_from_the_base() -> None:
    """Every exception class errors.py exports is a YunhuError, so one except catches all."""
    from yunhu_stream import errors

    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert classes and all(issubclass(c, errors.YunhuError) for c in classes)


def test_core_names() -> None:
    """The names other work depends on are exported from the package root."""
    for name in ("Bot", "Recipient", "MessageInfo", "Streamer", "errors"):
        assert name in yunhu_stream.__all__
