"""The public surface: what `import yunhu_stream` and its public modules promise."""

from __future__ import annotations

import importlib
import pickle
import types
from pathlib import Path

import pytest

import yunhu_stream

# Every name each public module exported before the package was split into subpackages
# (commit 276f1bd). A name may be added; none may go away.
PUBLISHED: dict[str, set[str]] = {
    "yunhu_stream": {
        "Bot", "DEFAULT_BASE_URL", "FirstChunk", "MessageInfo", "PipeResult", "Recipient",
        "StreamState", "StreamStatistics", "Streamer", "__version__", "errors"
    },
    "yunhu_stream.errors": {
        "APIError", "BotBannedError", "ChatBannedError", "ConfigurationError",
        "ConnectTimeoutError", "EventParseError", "HTTPStatusError",
        "InvalidParameterError", "InvalidResponseError", "LLMConnectionError", "LLMError",
        "LLMHTTPStatusError", "LLMIncompleteError", "LLMProviderError", "LLMResponseError",
        "LLMStreamError", "LLMTimeoutError", "RateLimitedError", "ResponseTimeoutError",
        "SSEParseError", "StreamBrokenError", "StreamClosedError", "StreamError",
        "TransportError", "UnauthorizedError", "WouldBlockError", "YunhuError", "api_error"
    },
    "yunhu_stream.emulator": {
        "Chunk", "ENDPOINTS", "Emulator", "Fault", "Faults", "RequestRecord", "STREAM_TIP",
        "StoredMessage", "StreamRecord"
    },
    "yunhu_stream.events": {
        "BOT_FOLLOWED", "BOT_UNFOLLOWED", "BUTTON_REPORT_INLINE", "ButtonReportEvent",
        "Chat", "Event", "EventParseError", "FollowEvent", "GROUP_JOIN", "GROUP_LEAVE",
        "GroupMemberEvent", "KNOWN_EVENT_TYPES", "MESSAGE_INSTRUCTION", "MESSAGE_NORMAL",
        "Message", "MessageEvent", "SHORTCUT_MENU", "Sender", "ShortcutMenuEvent",
        "UnknownEvent", "parse_event"
    },
    "yunhu_stream.app": {
        "BOT_KEY", "BotApp", "DISPATCHER_KEY", "DispatchOutcome", "Dispatcher",
        "DispatcherStatistics", "EventHandler", "MessageHandler", "setup"
    },
    "yunhu_stream.mentions": {
        "Mentions", "ZWSP", "mention", "strip_mentions"
    },
    "yunhu_stream.llm": {
        "LLMConnectionError", "LLMError", "LLMHTTPStatusError", "LLMIncompleteError",
        "LLMProviderError", "LLMResponseError", "LLMStreamError", "LLMTimeoutError",
        "deltas_from", "openai_chat_deltas"
    },
    "yunhu_stream.sse": {
        "SSEEvent", "SSEParseError", "SSEParser", "TeeIterator", "format_event",
        "sse_response", "tee"
    },
    "yunhu_stream.wschat": {
        "Frame", "FrameError", "FrameRefusedError", "WsChat", "WsChatApp", "WsChatServer",
        "WsErrorEvent", "WsEvent", "WsMessage", "WsStreamPiece", "parse_frame"
    },
    "yunhu_stream.testing": {
        "DEFAULT_AVATAR_URL", "DEFAULT_BOT_ID", "DEFAULT_CHAT", "DEFAULT_USER_ID",
        "INCOMING_CONTENT_TYPES", "button_event", "emulator", "follow_event", "menu_event",
        "message_event"
    },
    "yunhu_stream.fake_llm": {
        "Answer", "DEFAULT_ANSWER", "FAULTS", "FakeLLM", "Fault", "ToolCall", "tokenize"
    },
    "yunhu_stream.cli": {
        "ExitCode", "build_parser", "main"
    },
    "yunhu_stream.integrations.nonebot_emulator": {
        "EmulatorAdapter"
    },
    "yunhu_stream.redis": {
        "RedisStore", "SharedBot"
    },
    "yunhu_stream.integrations.astrbot_emulator": {
        "PLATFORM_ID", "PROVIDER_ID", "READY_MARKER", "main", "prepare_root"
    },
}
PUBLIC_MODULES = sorted(PUBLISHED)

# Modules that import a framework (an extra): on a leg without it, they are skipped.
NEEDS = {"yunhu_stream.integrations.nonebot_emulator": "nonebot",
         "yunhu_stream.redis": "redis"}


def import_public(name: str) -> types.ModuleType:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name} needs the {NEEDS[name]} extra")
    return importlib.import_module(name)


def isort_key(name: str) -> tuple[int, str]:
    """isort order, as ruff's RUF022 keeps __all__: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    """Every public module lists its names in a sorted __all__, and each of them exists."""
    module = import_public(name)
    names = list(module.__all__)
    if name == "yunhu_stream.testing":  # the fixture is appended only when pytest is present
        names.remove("emulator")
    assert names == sorted(names, key=isort_key)
    assert len(set(names)) == len(names)
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_no_published_name_went_away(name: str) -> None:
    """__all__ of each public module is what it was, or more."""
    module = import_public(name)
    assert PUBLISHED[name] - set(module.__all__) == set()


def _defined_objects(module: types.ModuleType) -> list[tuple[str, object]]:
    return [
        (n, obj) for n in module.__all__
        if callable(obj := getattr(module, n))
        and getattr(obj, "__module__", "").startswith("yunhu_stream")
    ]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_says_its_public_module(name: str) -> None:
    """Each class and function names a public module where it can be imported from.

    ``yunhu_stream.Bot.__module__`` is ``"yunhu_stream"``, not the private module it is
    written in, so reprs, tracebacks and pickles show the path users import.
    """
    module = import_public(name)
    for attr, obj in _defined_objects(module):
        home = obj.__module__  # type: ignore[attr-defined]
        assert not any(part.startswith("_") for part in home.split(".")), (attr, home)
        assert getattr(importlib.import_module(home), attr) is obj, (attr, home)


def test_errors_pickle_through_their_public_module() -> None:
    """An error survives pickling (worker processes, task queues) with its data."""
    from yunhu_stream import errors

    error = errors.HTTPStatusError(status=502, body="bad gateway", endpoint="bot/send")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.HTTPStatusError
    assert copy.status == 502


def test_every_error_derives_from_the_base() -> None:
    """Every exception class errors.py exports is a YunhuError, so one except catches all."""
    from yunhu_stream import errors

    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert classes and all(issubclass(c, errors.YunhuError) for c in classes)


def test_closed_errors_share_one_base() -> None:
    """A closed Bot and a closed stream both raise a ClosedError (anyio's vocabulary)."""
    from yunhu_stream import errors

    assert issubclass(errors.BotClosedError, errors.ClosedError)
    assert issubclass(errors.StreamClosedError, errors.ClosedError)
    assert issubclass(errors.StreamClosedError, errors.StreamError)


def test_core_names() -> None:
    """The names other work depends on are exported from the package root."""
    for name in ("Bot", "Recipient", "MessageInfo", "Streamer", "errors"):
        assert name in yunhu_stream.__all__


def _documented_imports() -> set[tuple[str, str]]:
    """(module, name) for every `from yunhu_stream… import name` in the docs and examples."""
    import ast
    import re

    from tests._paths import EXAMPLES, ROOT

    found: set[tuple[str, str]] = set()
    texts = [p.read_text(encoding="utf-8") for p in [ROOT / "README.md",
                                                     *sorted((ROOT / "docs").glob("*.md"))]]
    for text in texts:  # code blocks and inline code alike
        pattern = r"from (yunhu_stream[\w.]*) import (?:\(([^)]*)\)|([\w, ]+))"
        for match in re.finditer(pattern, text):
            for name in re.split(r"[,\s]+", (match.group(2) or match.group(3)).strip()):
                if name and name.isidentifier():
                    found.add((match.group(1), name))
    for path in sorted(EXAMPLES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yunhu_stream"):
                found.update((node.module, a.name) for a in node.names)  # type: ignore[misc]
    return found


# These need a running framework (or an extra) to import; their names are checked in
# their source.
_FRAMEWORK_MODULES = {"yunhu_stream.integrations.nonebot", "yunhu_stream.integrations.erispulse",
                      "yunhu_stream.integrations.astrbot",
                      "yunhu_stream.integrations.nonebot_emulator",
                      "yunhu_stream.redis"}  # the redis extra: absent on the oldest-Python leg


def test_every_import_in_the_docs_and_examples_works() -> None:
    """Each `from yunhu_stream… import X` shown in README, docs/ and examples/ resolves."""
    import ast
    import importlib.util

    imports = _documented_imports()
    assert len(imports) > 20  # the scan found the docs
    broken = []
    for module, name in sorted(imports):
        if module in _FRAMEWORK_MODULES:
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin is not None
            tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
            defined = {n.name for n in ast.walk(tree)
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            defined |= {a.asname or a.name for n in ast.walk(tree)  # a package re-exports
                        if isinstance(n, ast.ImportFrom) for a in n.names}
            ok = name in defined
        else:
            mod = importlib.import_module(module)
            ok = hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}") is not None
        if not ok:
            broken.append(f"from {module} import {name}")
    assert broken == []
