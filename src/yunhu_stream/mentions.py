"""Mentions: the ``@Name`` + U+200B text and the ``at`` list YunHu needs, built together.

YunHu renders a mention when the text holds ``@Name`` followed by a zero-width
space (U+200B) *and* the user's id is in the message's ``at`` list. Building the
two separately invites them to drift apart; :func:`mention` builds both::

    m = mention("小明", "7756242") + " 你的报告好了"
    await bot.send(to, m.text, at=m.at)

    async with bot.stream(to, at=m.at) as s:   # the ids are attached when the stream ends
        await s.write(m.text)
        await s.write("……")

Texts and mentions combine with ``+`` in any order; the ``at`` list keeps each
id once, in the order first mentioned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._exceptions import ConfigurationError

__all__ = ["ZWSP", "Mentions", "mention", "strip_mentions"]

ZWSP = "\u200b"
"""The zero-width space that ends a mention's name."""

# A mention as clients send it: "@", a name without line breaks, the zero-width space.
_MENTION = re.compile(r"@[^\u200b\r\n]{1,64}?\u200b[ \t]?")


@dataclass(frozen=True, slots=True)
class Mentions:
    """Text with mentions in it, and the ids of the users mentioned.

    Build one with :func:`mention` and ``+``; use ``m.text`` as the message text
    and ``m.at`` as the ``at=`` argument.

    Attributes:
        text: The text, each mention written as ``@Name`` + U+200B.
        user_ids: The mentioned user ids, each once, in order of first mention.
    """

    text: str = ""
    user_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Mentions.text must be str, not {type(self.text).__name__}")
        if not isinstance(self.user_ids, tuple):
            raise TypeError("Mentions.user_ids must be a tuple of user id strings")
        for user_id in self.user_ids:
            _check_user_id(user_id)

    @property
    def at(self) -> list[str]:
        """The ``at`` list for ``bot.send``/``bot.stream``: a new list each time."""
        return list(self.user_ids)

    def __add__(self, other: str | Mentions) -> Mentions:
        if isinstance(other, str):
            return Mentions(self.text + other, self.user_ids)
        if isinstance(other, Mentions):
            return Mentions(self.text + other.text, _merge(self.user_ids, other.user_ids))
        return NotImplemented

    def __radd__(self, other: str) -> Mentions:
        if isinstance(other, str):
            return Mentions(other + self.text, self.user_ids)
        return NotImplemented

    def __str__(self) -> str:
        return self.text


def mention(name: str, user_id: str | int) -> Mentions:
    """Mention one user: ``@name`` + U+200B in the text, ``user_id`` in ``at``.

    Args:
        name: The name shown after ``@`` (usually the user's nickname), without
            the ``@``.
        user_id: The user's YunHu id.

    Raises:
        TypeError: ``name`` is not a str, or ``user_id`` is neither str nor int.
        ValueError: ``name`` is empty, starts with ``@``, or holds a line break or
            U+200B; ``user_id`` is empty or holds whitespace.
    """
    if not isinstance(name, str):
        raise TypeError(f"mention name must be str, not {type(name).__name__}")
    if not name.strip():
        raise ConfigurationError("mention name must not be empty")
    if name.startswith("@"):
        raise ConfigurationError(
            f"mention name {name!r} must not start with '@' (it is added for you)"
        )
    if ZWSP in name or "\n" in name or "\r" in name:
        raise ConfigurationError(f"mention name {name!r} must not hold a line break or U+200B")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    return Mentions(f"@{name}{ZWSP}", (_check_user_id(user_id),))


def strip_mentions(text: str) -> str:
    """Remove every ``@Name`` + U+200B mention from ``text`` and trim the ends.

    Useful on incoming messages: ``strip_mentions("@Bot\\u200b hello")`` is ``"hello"``.
    Text without mentions is returned trimmed and otherwise unchanged.

    Raises:
        TypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"strip_mentions() takes a str, not {type(text).__name__}")
    return _MENTION.sub("", text).strip()


def _check_user_id(user_id: object) -> str:
    if not isinstance(user_id, str):
        raise TypeError(f"user id must be str or int, not {type(user_id).__name__}")
    if not user_id or any(ch.isspace() for ch in user_id) or ZWSP in user_id:
        raise ConfigurationError(
            f"user id must be a non-empty string without spaces, not {user_id!r}"
        )
    return user_id


def _merge(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(uid for uid in dict.fromkeys(second) if uid not in first)
