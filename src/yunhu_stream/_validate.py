"""Checks for option and argument values: each names the option, the value and what is accepted.

Every check raises :class:`~yunhu_stream.errors.ConfigurationError` (a ``ValueError``)
with the message ``"<name> must be <accepted>, not <value>"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

from ._exceptions import ConfigurationError

T = TypeVar("T")


def fail(name: str, accepted: str, value: object) -> ConfigurationError:
    """The error for ``name=value`` when ``accepted`` describes what is allowed."""
    return ConfigurationError(f"{name} must be {accepted}, not {value!r}")


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def seconds(name: str, value: object, *, zero: bool = False) -> float:
    """A finite number of seconds, > 0 (or >= 0 with ``zero=True``)."""
    if not _is_number(value) or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        accepted = "a number of seconds >= 0" if zero else "a positive number of seconds"
        raise fail(name, accepted, value)
    return float(value)  # type: ignore[arg-type]


def optional_seconds(name: str, value: object, *, zero: bool = False) -> float | None:
    """:func:`seconds`, or ``None``."""
    if value is None:
        return None
    if not _is_number(value) or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        bound = ">= 0" if zero else "> 0"
        raise fail(name, f"a number of seconds {bound}, or None", value)
    return float(value)  # type: ignore[arg-type]


def positive_number(name: str, value: object, *, allow_none: bool = False) -> float | None:
    """A finite number > 0 (a rate, a size factor), or ``None`` when allowed."""
    if value is None and allow_none:
        return None
    if not _is_number(value) or value <= 0:  # type: ignore[operator]
        raise fail(name, "a positive number" + (" or None" if allow_none else ""), value)
    return float(value)  # type: ignore[arg-type]


def integer(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An ``int`` (not a bool) within ``[minimum, maximum]``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise fail(name, f"an integer {bound}", value)
    return value


def optional_integer(name: str, value: object, *, minimum: int) -> int | None:
    """:func:`integer`, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(name, f"an integer >= {minimum}, or None", value)
    return value


def port(name: str, value: object) -> int:
    """A TCP port number (0 picks a free one)."""
    return integer(name, value, minimum=0, maximum=65535)


def boolean(name: str, value: object) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise fail(name, "True or False", value)
    return value


def choice(name: str, value: T, accepted: Iterable[T]) -> T:
    """One of ``accepted``."""
    options = tuple(accepted)
    if isinstance(value, bool) or value not in options:
        raise fail(name, "one of " + ", ".join(map(repr, options)), value)
    return value


def text(name: str, value: object, *, empty: bool = False) -> str:
    """A ``str`` (non-empty unless ``empty=True``)."""
    if not isinstance(value, str) or (not value and not empty):
        raise fail(name, "a string" if empty else "a non-empty string", value)
    return value


def encodable(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def identifier(name: str, value: object) -> str:
    """A non-empty id string without surrounding whitespace (message, user, chat ids)
    that UTF-8 can carry (no lone surrogate)."""
    if not isinstance(value, str) or not value or value.strip() != value:
        raise fail(name, "a non-empty id string without surrounding spaces", value)
    if not encodable(value):
        raise fail(name, "an id string UTF-8 can encode (no lone surrogates)", value)
    return value


def optional_identifier(name: str, value: object) -> str | None:
    """:func:`identifier`, or ``None``."""
    return None if value is None else identifier(name, value)
