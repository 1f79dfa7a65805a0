"""Markdown-safe rollover: where a long reply may end one message and start the next.

``plan_split`` is pure; these tests drive it the way a rolling-over stream would: plan
the message, cut it (adding the closing fence), start the next one with the reopened
block, repeat. Properties over generated Markdown check what must always hold; the
examples pin the ranking (paragraph, line, list, heading, sentence, table, code, hard).
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunhu_stream._markdown import Block, Fence, Kind, Split, plan_split
from yunhu_stream.errors import ConfigurationError

# -- driving it as a stream would --------------------------------------------------------


def roll(text: bytes, limit: int, *, growing: bool = False) -> list[tuple[bytes, Split | None]]:
    """Cut ``text`` into messages of at most ``limit`` bytes: [(message as sent, split)].

    ``growing`` plans as text arrives (a byte-wise growing buffer, taking the first split
    offered, as an eager stream does); otherwise with the whole text at hand.
    """
    out: list[tuple[bytes, Split | None]] = []
    start, carry = 0, Block()
    while start < len(text):
        split = None
        if growing:
            for size in range(start + 1, len(text) + 1):
                split = plan_split(text[:size], start, limit, carry=carry, earliest=start)
                if split is not None:
                    break
        else:
            split = plan_split(text, start, limit, carry=carry, earliest=start)
        if split is None:  # the rest fits: the last message
            out.append((carry.reopen + text[start:], None))
            break
        assert split.at > start, "no progress"
        out.append((carry.reopen + text[start:split.at] + split.close, split))
        start, carry = split.at, split.carry
    return out


FENCE_LINE = re.compile(rb"^ {0,3}(`{3,}|~{3,})(.*)$")
DELIMITER_ROW = re.compile(rb"^ *\|? *:?-+:? *(\| *:?-+:? *)+\|? *$")


def open_fence_at_end(message: bytes) -> bytes | None:
    """An independent, simple fence tracker: the fence still open at the end, if any."""
    fence: bytes | None = None
    for line in message.split(b"\n"):
        match = FENCE_LINE.match(line)
        if not match:
            continue
        if fence is None:
            fence = match.group(1)
        elif match.group(1)[:1] == fence[:1] and len(match.group(1)) >= len(fence) \
                and not match.group(2).strip():
            fence = None
    return fence


# -- generated Markdown ------------------------------------------------------------------

words = st.sampled_from(["流式", "回答", "the", "model", "writes", "云湖", "code", "**bold**",
                         "`x`", "消息", "第二", "long", "😀", "a|b"])
sentence = st.tuples(st.lists(words, min_size=1, max_size=12).map(" ".join),
                     st.sampled_from(["。", ". ", "！", "? ", ""])).map("".join)
paragraph = st.lists(sentence, min_size=1, max_size=6).map("".join)
heading = st.tuples(st.integers(1, 4), sentence).map(lambda t: "#" * t[0] + " " + t[1])
list_block = st.lists(sentence, min_size=1, max_size=8).map(
    lambda items: "\n".join(f"- {item}" for item in items))
code_line = st.lists(st.sampled_from(["x = 1", "print(x)", "# 注释", "if x:", "    y()",
                                      "return 'a. b'", "| not a table |"]),
                     min_size=0, max_size=30).map("\n".join)
code_block = st.tuples(st.sampled_from(["```", "````", "~~~"]),
                       st.sampled_from(["", "python", "js", "text"]), code_line).map(
    lambda t: f"{t[0]}{t[1]}\n{t[2]}\n{t[0]}" if t[2] else f"{t[0]}{t[1]}\n{t[0]}")
table = st.lists(st.tuples(words, words), min_size=1, max_size=12).map(
    lambda rows: "| 名称 | 值 |\n| --- | ---: |\n"
    + "\n".join(f"| {a.replace('|', '/')} | {b.replace('|', '/')} |" for a, b in rows))
block = st.one_of(paragraph, heading, list_block, code_block, table)
markdown = st.lists(block, min_size=1, max_size=12).map("\n\n".join).map(str.encode)
limits = st.integers(64, 600)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(markdown, limits)
    def test_no_message_exceeds_the_limit_and_nothing_is_lost(
        self, text: bytes, limit: int
    ) -> None:
        """Every message fits; without what the cuts add, they are the text, in order."""
        messages = roll(text, limit)
        assert all(len(m) <= limit for m, _ in messages)
        rebuilt = b""
        carry = Block()
        for message, split in messages:
            body = message[len(carry.reopen):]
            if split is not None:
                body = body[: len(body) - len(split.close)]
                carry = split.carry
            rebuilt += body
        assert rebuilt == text

    @settings(max_examples=300, deadline=None)
    @given(markdown, limits)
    def test_every_message_closes_the_fences_it_opens(self, text: bytes, limit: int) -> None:
        """A code block open at a cut is closed in that message and reopened, with the same
        marker and info string, at the start of the next."""
        messages = roll(text, limit)
        for (message, split), following in itertools.pairwise(messages):
            assert open_fence_at_end(message) is None, message
            assert split is not None
            if split.carry.fence is not None:
                opening = following[0].split(b"\n", 1)[0]
                assert opening == split.carry.fence.marker + split.carry.fence.info

    @settings(max_examples=300, deadline=None)
    @given(markdown, limits)
    def test_cuts_fall_between_lines_of_code_tables_and_headings(
        self, text: bytes, limit: int
    ) -> None:
        """Short of a HARD cut, a split is a line end, or a sentence end in plain prose:
        never inside a code line, table row or heading, never under a table header."""
        start = 0
        for _, split in roll(text, limit):
            if split is None:
                break
            begun, start = start, split.at
            if split.kind is Kind.HARD:
                continue
            line_start = max(begun, text.rfind(b"\n", 0, split.at - 1) + 1)
            line_end = text.find(b"\n", split.at - 1)
            line = text[line_start:line_end if line_end >= 0 else len(text)]
            if split.kind is Kind.SENTENCE:
                assert b"|" not in line and not line.lstrip().startswith((b"#", b"```", b"~~~"))
                assert split.carry == Block()
            else:
                assert text[split.at - 1:split.at] == b"\n"
            rest = text[split.at:].split(b"\n", 1)[0]
            assert not DELIMITER_ROW.match(rest)

    @settings(max_examples=100, deadline=None)
    @given(markdown, limits)
    def test_planning_while_the_text_arrives_is_just_as_safe(
        self, text: bytes, limit: int
    ) -> None:
        """Taking the first split offered as the text grows still fits, loses nothing and
        leaves no fence open."""
        messages = roll(text, limit, growing=True)
        assert all(len(m) <= limit for m, _ in messages)
        assert all(open_fence_at_end(m) is None for m, s in messages if s is not None)

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=800).map(str.encode), limits)
    def test_any_text_at_all_rolls_over_within_the_limit(self, text: bytes, limit: int) -> None:
        """Arbitrary Unicode (not Markdown) still splits at UTF-8 boundaries within the limit."""
        messages = roll(text, limit)
        assert all(len(m) <= limit for m, _ in messages)
        for message, _ in messages:
            message.decode("utf-8")  # never cut inside a character


# -- the ranking, by example ---------------------------------------------------------------


def plan(text: str, limit: int = 100, **kwargs: object) -> Split | None:
    return plan_split(text.encode(), 0, limit, **kwargs)  # type: ignore[arg-type]


class TestRanking:
    def test_a_paragraph_end_beats_a_later_line_end(self) -> None:
        """In the window, a blank line wins over line ends after it."""
        text = "x" * 76 + "\n\n" + "y" * 5 + "\n" + "z" * 5 + "\n" + "w" * 30
        split = plan(text)
        assert split is not None and (split.kind, split.at) == (Kind.PARAGRAPH, 78)

    def test_the_latest_point_of_the_best_kind_wins(self) -> None:
        """Two line ends in the window: the later one (a fuller message)."""
        text = "x" * 79 + "\n" + "y" * 9 + "\n" + "z" * 40
        split = plan(text)
        assert split is not None and (split.kind, split.at) == (Kind.LINE, 90)

    def test_a_list_stays_whole_when_a_line_before_it_can_end_the_message(self) -> None:
        """A line end before the list wins over a cut between its items."""
        text = "x" * 76 + "\n- one\n- two\n- three\n" + "z" * 40
        split = plan(text)
        assert split is not None and (split.kind, split.at) == (Kind.LINE, 77)
        text = "x" * 76 + "\n\n- one\n- two\n- three\n" + "z" * 40
        split = plan(text)
        assert split is not None and (split.kind, split.at) == (Kind.PARAGRAPH, 78)
        text = "- item\n" * 14  # nothing but the list: between its items
        split = plan(text)
        assert split is not None and split.kind is Kind.LIST

    def test_a_heading_is_not_left_at_the_end_of_a_message(self) -> None:
        """A cut before the heading wins over one between the heading and its text."""
        text = "x" * 76 + "\n\n## 标题\n" + "y" * 60
        split = plan(text)
        assert split is not None and (split.kind, split.at) == (Kind.PARAGRAPH, 78)

    def test_a_sentence_end_when_no_line_ends_in_the_window(self) -> None:
        """Inside one long paragraph line, the latest sentence end."""
        text = "这是一句话。" * 8 + "x" * 60
        split = plan(text)
        assert split is not None and split.kind is Kind.SENTENCE
        assert text.encode()[:split.at].decode().endswith("。")

    def test_a_table_cut_repeats_the_header_in_the_next_message(self) -> None:
        """Between rows the table goes on in the next message under its own header."""
        head = "| a | b |\n| --- | --- |\n"
        text = head + "".join(f"| {i:02} | 值值 |\n" for i in range(12))
        split = plan(text, 120)
        assert split is not None and split.kind is Kind.TABLE_ROW
        assert split.reopen == head.encode() and split.close == b""

    def test_a_table_header_and_its_delimiter_row_stay_together(self) -> None:
        """The line end under a table header is never a split."""
        text = "y" * 70 + "\n" + "| 名称 | 值 |\n| --- | --- |\n| a | b |\n" + "z" * 40
        split = plan(text)
        assert split is not None and split.at != 71 + len("| 名称 | 值 |\n".encode())

    def test_a_code_block_open_at_the_cut_is_closed_and_reopened(self) -> None:
        """Only code lines in the window: close the fence here, reopen ```python next."""
        text = "```python\n" + "print('x')\n" * 20 + "```\n"
        split = plan(text)
        assert split is not None and split.kind is Kind.CODE_LINE
        assert split.close == b"```" and split.reopen == b"```python\n"
        assert split.at + len(split.close) <= 100
        follow = plan_split(text.encode(), split.at, 100, carry=split.carry)
        assert follow is not None and follow.carry.fence == Fence(b"```", b"python")

    def test_the_reopened_fence_counts_against_the_next_message(self) -> None:
        """A message that starts with a reopened fence has that much less room."""
        carry = Block(fence=Fence(b"```", b"python"))
        text = b"print('x')\n" * 20
        split = plan_split(text, 0, 100, carry=carry)
        assert split is not None
        assert len(carry.reopen) + split.at + len(split.close) <= 100

    def test_a_hard_cut_inside_code_still_closes_the_fence(self) -> None:
        """One enormous code line: cut at the allowance, on its own line close the fence."""
        text = "```\n" + "x" * 300 + "\n```\n"
        split = plan(text)
        assert split is not None and split.kind is Kind.HARD
        assert split.close == b"\n```" and split.at + len(split.close) == 100
        assert split.reopen == b"```\n"


class TestWaiting:
    def test_nothing_to_split_and_still_fitting_means_wait(self) -> None:
        """No point in the window yet and the text fits: None (more text may bring one)."""
        assert plan("x" * 90) is None
        assert plan("short") is None

    def test_over_the_allowance_a_split_is_always_given(self) -> None:
        """Past the limit with no good point: HARD, at a character boundary."""
        split = plan("字" * 40)
        assert split is not None and split.kind is Kind.HARD
        assert "字" * 40 != "" and split.at % 3 == 0 and split.at <= 100

    def test_bytes_already_sent_are_not_given_back(self) -> None:
        """A point before ``earliest`` is never chosen."""
        text = "x" * 79 + "\n" + "y" * 40
        assert plan(text, earliest=85).kind is Kind.HARD  # type: ignore[union-attr]

    def test_limit_must_leave_room_to_roll_over(self) -> None:
        """Allowances under 64 bytes are refused, naming the limit."""
        with pytest.raises(ConfigurationError, match="limit must be an integer >= 64, not 10"):
            plan("x", 10)
