"""Validation of what goes into a message's ``content`` object (text, buttons, mentions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import ConfigurationError

Buttons = Sequence[Sequence[Mapping[str, Any]]]
"""Rows of buttons: ``[[{"text": "Docs", "actionType": 1, "url": "https://…"}], …]``."""

_ACTIONS = {1: "url", 2: "value", 3: "value"}


def _check_encodable(value: object, name: str) -> None:
    """Refuse now what could not be sent later: text UTF-8 cannot carry (lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"{name} cannot be encoded as UTF-8 (lone surrogate at index {exc.start} "
            "of its JSON form); use valid Unicode text"
        ) from None


def check_buttons(buttons: object) -> list[list[dict[str, Any]]] | None:
    """Validate ``buttons`` and return a JSON-ready copy (``None`` stays ``None``).

    Raises:
        ConfigurationError: naming the button and what is wrong with it.
    """
    if buttons is None:
        return None
    if isinstance(buttons, (str, bytes, Mapping)) or not isinstance(buttons, Sequence):
        raise ConfigurationError(
            "buttons must be a list of rows, each a list of button dicts, "
            f"or a flat list of button dicts (one row), not {type(buttons).__name__}"
        )
    if buttons and all(isinstance(b, Mapping) for b in buttons):
        buttons = [buttons]  # a flat list is one row, as YunHu accepts it
    rows: list[list[dict[str, Any]]] = []
    for r, row in enumerate(buttons):
        if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Sequence):
            raise ConfigurationError(f"buttons[{r}] must be a list of button dicts")
        out: list[dict[str, Any]] = []
        for c, button in enumerate(row):
            where = f"buttons[{r}][{c}]"
            if not isinstance(button, Mapping):
                raise ConfigurationError(f"{where} must be a dict with 'text' and 'actionType'")
            text, action = button.get("text"), button.get("actionType")
            if not isinstance(text, str) or not text:
                raise ConfigurationError(f"{where}['text'] must be a non-empty string")
            if action not in _ACTIONS or isinstance(action, bool):
                raise ConfigurationError(
                    f"{where}['actionType'] must be 1 (open url), 2 (copy value) "
                    f"or 3 (report value), not {action!r}"
                )
            needed = _ACTIONS[action]
            if not isinstance(button.get(needed), str):
                raise ConfigurationError(
                    f"{where} with actionType {action} needs a string {needed!r}"
                )
            out.append(dict(button))
        rows.append(out)
    _check_encodable(rows, "buttons")
    return rows


def check_at(at: object) -> list[str] | None:
    """Validate a list of mentioned user ids (``None`` stays ``None``).

    Raises:
        ConfigurationError: when ``at`` is not a list of non-empty strings.
    """
    if at is None:
        return None
    if isinstance(at, (str, bytes)) or not isinstance(at, Sequence):
        raise ConfigurationError(f"at must be a list of user id strings, not {type(at).__name__}")
    if not all(isinstance(u, str) and u for u in at):
        raise ConfigurationError("at must be a list of non-empty user id strings")
    _check_encodable(list(at), "at")
    return list(at)


def check_text(text: object, name: str = "text") -> str:
    """Return ``text`` if it is a ``str`` that encodes as UTF-8.

    Raises:
        TypeError: not a str.
        ConfigurationError: it holds lone surrogates, which UTF-8 cannot carry.
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"{name} cannot be encoded as UTF-8 (lone surrogate at index {exc.start})"
        ) from None
    return text


def content(
    text: str, buttons: list[list[dict[str, Any]]] | None, at: list[str] | None
) -> dict[str, Any]:
    """The ``content`` object of bot/send and bot/edit."""
    body: dict[str, Any] = {"text": text}
    if buttons:
        body["buttons"] = buttons
    if at:
        body["at"] = at
    return body
