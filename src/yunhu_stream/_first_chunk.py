"""When a reply's first chunk may go out: so a message does not open with a lone "#".

Pure logic. A :class:`FirstChunk` policy holds the first chunk of a message until the
text has enough in it, or until a deadline; :meth:`FirstChunk.ready` answers for the
text written so far and the time waited. Whatever the policy, a first chunk never goes
out while it holds nothing but blanks and Markdown markers (``#``, ``-``, ``*``, ``>``,
backticks, digits of a list number…), unless the deadline has passed or the stream ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import _validate as validate

__all__ = ["FirstChunk"]

# Blank lines, and Markdown that says nothing on its own: heading hashes, list and quote
# markers, emphasis stars, fences, list numbers.
_ONLY_MARKUP = re.compile(r"^[\s#>*_`~\-+=|]*(?:\d{1,9}[.)])?[\s#>*_`~\-+=|]*$")
_SENTENCE_END = re.compile(r"[。！？!?.…]\s|[。！？…]|\n")


@dataclass(frozen=True)
class FirstChunk:
    """A policy for the first chunk of each message.

    Attributes:
        min_chars: Hold until this many characters are written (0: no minimum).
        sentence: Hold until a sentence or line ends (``。``, ``!``, ``. ``, a newline…).
        max_wait: Seconds after the first write when it goes out anyway (None: never
            by time alone; the end of the stream always releases it).

    The default sends the first write at once, as soon as it is more than markup.
    ``FirstChunk(sentence=True, max_wait=1.0)`` waits for a sentence, at most a second.

    Raises:
        ConfigurationError: a negative ``min_chars``, a ``sentence`` that is not a bool,
            or a ``max_wait`` that is not None or a number of seconds >= 0.
    """

    min_chars: int = 0
    sentence: bool = False
    max_wait: float | None = None

    def __post_init__(self) -> None:
        validate.integer("min_chars", self.min_chars, minimum=0)
        validate.boolean("sentence", self.sentence)
        validate.optional_seconds("max_wait", self.max_wait, zero=True)

    def ready(self, text: str, waited: float, *, ending: bool = False) -> bool:
        """Whether the first chunk of ``text`` may go out now.

        Args:
            text: Everything written to the message so far.
            waited: Seconds since its first write.
            ending: The stream is being closed: nothing more will come.
        """
        if ending:
            return bool(text)
        if self.max_wait is not None and waited >= self.max_wait:
            return bool(text)
        if _ONLY_MARKUP.match(text):
            return False
        if len(text) < self.min_chars:
            return False
        return not self.sentence or _SENTENCE_END.search(text) is not None
