"""The first-chunk policy: a message never opens with a lone "#" or a blank line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunhu_stream._first_chunk import FirstChunk
from yunhu_stream.errors import ConfigurationError

markup = st.text(alphabet=" \n\t#>*_`~-+=|", max_size=12)


class TestMarkupAlone:
    @given(markup)
    def test_nothing_but_markup_is_held_by_every_policy(self, text: str) -> None:
        """Hashes, list markers, fences and blanks alone never open a message."""
        for policy in (FirstChunk(), FirstChunk(min_chars=1), FirstChunk(sentence=True)):
            assert not policy.ready(text, waited=0.0)

    @pytest.mark.parametrize("text", ["#", "## ", "\n", "- ", "1. ", "```", "> ", "**"])
    def test_the_usual_lone_openers(self, text: str) -> None:
        """The openers LLMs stream first, one by one."""
        assert not FirstChunk().ready(text, waited=0.0)

    def test_markup_with_words_goes_at_once_by_default(self) -> None:
        """As soon as a word follows the marker, the default sends."""
        assert FirstChunk().ready("## 标", waited=0.0)
        assert FirstChunk().ready("Hi", waited=0.0)


class TestHolding:
    def test_min_chars(self) -> None:
        """Held below the minimum, sent at it."""
        policy = FirstChunk(min_chars=5)
        assert not policy.ready("你好", waited=0.0)
        assert policy.ready("你好，世界", waited=0.0)

    def test_sentence(self) -> None:
        """Held until a sentence or a line ends."""
        policy = FirstChunk(sentence=True)
        assert not policy.ready("## 一个标题", waited=0.0)
        assert policy.ready("## 一个标题\n", waited=0.0)
        assert policy.ready("好的。然", waited=0.0)
        assert policy.ready("Sure. Th", waited=0.0)
        assert not policy.ready("3.14", waited=0.0)

    def test_the_deadline_releases_whatever_there_is(self) -> None:
        """max_wait passed: sent even if it is only a "#"."""
        policy = FirstChunk(sentence=True, max_wait=0.5)
        assert not policy.ready("#", waited=0.4)
        assert policy.ready("#", waited=0.5)
        assert not policy.ready("", waited=9.0)

    @given(st.text(min_size=1, max_size=20), st.booleans(), st.integers(0, 50))
    def test_the_end_of_the_stream_always_releases_it(
        self, text: str, sentence: bool, min_chars: int
    ) -> None:
        """Closing never keeps text back, whatever the policy."""
        assert FirstChunk(min_chars, sentence).ready(text, waited=0.0, ending=True)


class TestValidation:
    @pytest.mark.parametrize(("kwargs", "match"), [
        ({"min_chars": -1}, "min_chars must be an integer >= 0"),
        ({"min_chars": True}, "min_chars must be an integer >= 0"),
        ({"sentence": "yes"}, "sentence must be True or False"),
        ({"max_wait": -0.1}, r"max_wait must be a number of seconds >= 0, or None"),
        ({"max_wait": float("nan")}, r"max_wait must be a number of seconds >= 0, or None"),
    ])
    def test_bad_options_say_what_is_accepted(self, kwargs: dict[str, object], match: str) -> None:
        """Each bad option raises ConfigurationError (a ValueError) naming it."""
        with pytest.raises(ConfigurationError, match=match):
            FirstChunk(**kwargs)  # type: ignore[arg-type]
