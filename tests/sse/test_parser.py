"""The SSE parser follows the WHATWG EventSource parsing rules, however the bytes are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunhu_stream.sse import SSEEvent, SSEParseError, SSEParser


def parse(*chunks: bytes) -> tuple[list[SSEEvent], SSEParser]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events, parser


def openai_chunk(content: str | None, *, role: bool = False, finish: str | None = None) -> str:
    delta: dict[str, str] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return json.dumps(body, ensure_ascii=False)


# Transcripts shaped like what real servers send: OpenAI (LF, no spaces in JSON
# keys), a proxy with CRLF and keep-alive comments, OpenRouter's processing
# comments, an Anthropic-style typed stream with ids and retry, and a BOM.
OPENAI = "".join(
    f"data: {payload}\n\n"
    for payload in [
        openai_chunk("", role=True),
        openai_chunk("你好"),
        openai_chunk("，世界 🌏"),
        openai_chunk(None, finish="stop"),
        "[DONE]",
    ]
).encode()
CRLF_PROXY = (
    ": keep-alive\r\n\r\n"
    f"data: {openai_chunk('Hé')}\r\n\r\n"
    ":\r\n"
    f"data: {openai_chunk('llo')}\r\n\r\n"
    "data: [DONE]\r\n\r\n"
).encode()
OPENROUTER = (
    ": OPENROUTER PROCESSING\n\n"
    ": OPENROUTER PROCESSING\n\n"
    f"data: {openai_chunk('ok')}\n\n"
    "data: [DONE]\n\n"
).encode()
TYPED = (
    b"retry: 3000\n"
    b'event: message_start\nid: 1\ndata: {"a":1}\n\n'
    b"event: content_block_delta\r\nid: 2\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"event: ping\rdata\r\r"
    b"id\n"
    b"data:no space\n"
    b"data:  two spaces\n\n"
    b"unknown: field\ndata: x\n\n"
)
BOM = b"\xef\xbb\xbf" + b"data: first\n\n"

TRANSCRIPTS = {
    "openai": OPENAI,
    "crlf_proxy": CRLF_PROXY,
    "openrouter": OPENROUTER,
    "typed": TYPED,
    "bom": BOM,
}


class TestFields:
    def test_openai_transcript(self) -> None:
        """An OpenAI stream gives one event per data line, JSON intact, [DONE] last."""
        events, _ = parse(OPENAI)
        assert [e.event for e in events] == ["message"] * 5
        contents = [json.loads(e.data)["choices"][0]["delta"].get("content") for e in events[:4]]
        assert contents == ["", "你好", "，世界 🌏", None]
        assert events[-1].data == "[DONE]"

    def test_comments_and_keepalives_are_ignored(self) -> None:
        """Comment lines, including bare ':' keep-alives, dispatch nothing."""
        events, _ = parse(CRLF_PROXY)
        assert [e.data for e in events][-1] == "[DONE]"
        assert len(events) == 3

    def test_typed_stream(self) -> None:
        """event, id, retry, multi-line data and every line ending combine as the spec says."""
        events, parser = parse(TYPED)
        assert events == [
            SSEEvent(data='{"a":1}', event="message_start", id="1"),
            SSEEvent(data="line one\nline two", event="content_block_delta", id="2"),
            SSEEvent(data="", event="ping", id="2"),
            SSEEvent(data="no space\n two spaces", event="message", id=""),
            SSEEvent(data="x", event="message", id=""),
        ]
        assert parser.retry == 3000
        assert parser.last_event_id == ""

    def test_leading_bom_is_dropped_once(self) -> None:
        """A BOM at the start is not part of the first field name; a second one is."""
        events, _ = parse(BOM + b"\xef\xbb\xbfdata: no\n\ndata: yes\n\n")
        assert [e.data for e in events] == ["first", "yes"]

    def test_event_without_data_is_not_dispatched(self) -> None:
        """A block with only event/id fields dispatches nothing but still sets the id."""
        events, parser = parse(b"event: x\nid: 7\n\ndata: y\n\n")
        assert events == [SSEEvent(data="y", event="message", id="7")]
        assert parser.last_event_id == "7"

    def test_id_with_nul_is_ignored(self) -> None:
        """An id containing NUL leaves the last event id unchanged."""
        events, _ = parse(b"id: a\ndata: 1\n\nid: b\x00c\ndata: 2\n\n")
        assert [e.id for e in events] == ["a", "a"]

    @pytest.mark.parametrize("value", ["", "12a", "-5", "1.5", "  10", "\u0661\u0662"])
    def test_invalid_retry_is_ignored(self, value: str) -> None:
        """retry must be ASCII digits only; anything else is ignored."""
        _, parser = parse(f"retry: 100\nretry:{value}\ndata: x\n\n".encode())
        assert parser.retry == 100

    def test_unterminated_event_is_discarded(self) -> None:
        """An event the stream ends before its blank line is dropped and reported as pending."""
        events, parser = parse(b"data: complete\n\ndata: cut off")
        assert [e.data for e in events] == ["complete"]
        assert parser.pending

    def test_invalid_utf8_becomes_replacement_character(self) -> None:
        """Bytes that are not UTF-8 decode to U+FFFD instead of failing."""
        events, _ = parse(b"data: a\xffb\n\n")
        assert events[0].data == "a\ufffdb"

    def test_carriage_return_then_linefeed_in_next_read_is_one_line_end(self) -> None:
        """A CR ending one read and an LF starting the next make a single line end."""
        events, _ = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
        assert events == [SSEEvent(data="a\nb")]

    def test_lone_carriage_returns_end_lines(self) -> None:
        """Old-Mac CR-only line ends work, including CR CR as the blank line."""
        events, _ = parse(b"data: a\rdata: b\r\r")
        assert events == [SSEEvent(data="a\nb")]


class TestLimitsAndMisuse:
    def test_oversized_line_raises(self) -> None:
        """A line longer than max_event_chars raises SSEParseError instead of growing forever."""
        parser = SSEParser(max_event_chars=100)
        parser.feed(b"data: " + b"x" * 50)
        with pytest.raises(SSEParseError, match="max_event_chars=100"):
            parser.feed(b"x" * 60)

    def test_oversized_multiline_event_raises(self) -> None:
        """Many short data lines in one event count toward the same limit."""
        parser = SSEParser(max_event_chars=100)
        with pytest.raises(SSEParseError):
            parser.feed(b"data: 0123456789\n" * 20)

    @pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
    def test_bad_limit_is_rejected(self, bad: object) -> None:
        """max_event_chars must be a positive int."""
        with pytest.raises(ValueError, match="max_event_chars must be an integer >= 1"):
            SSEParser(max_event_chars=bad)  # type: ignore[arg-type]

    def test_feed_rejects_str(self) -> None:
        """feed() takes bytes; a str is a programming error, named in the message."""
        with pytest.raises(TypeError, match="not str"):
            SSEParser().feed("data: x\n\n")  # type: ignore[arg-type]

    def test_feed_after_close_raises(self) -> None:
        """Feeding a closed parser is an error, and close() is idempotent."""
        parser = SSEParser()
        parser.close()
        assert parser.close() == []
        with pytest.raises(RuntimeError, match="after close"):
            parser.feed(b"data: x\n\n")


class TestSplitInvariance:
    @pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
    def test_every_single_split_point(self, name: str) -> None:
        """Splitting a transcript in two at any byte gives the same events and state."""
        blob = TRANSCRIPTS[name]
        expected, whole = parse(blob)
        assert expected
        for i in range(len(blob) + 1):
            events, parser = parse(blob[:i], blob[i:])
            assert events == expected, f"split at byte {i}"
            assert (parser.retry, parser.last_event_id) == (whole.retry, whole.last_event_id)

    @pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
    def test_byte_by_byte(self, name: str) -> None:
        """Feeding one byte at a time (UTF-8 split inside every character) changes nothing."""
        blob = TRANSCRIPTS[name]
        expected, _ = parse(blob)
        events, _ = parse(*(blob[i : i + 1] for i in range(len(blob))))
        assert events == expected

    @given(data=st.data())
    @settings(max_examples=300, deadline=None)
    def test_random_multi_splits(self, data: st.DataObject) -> None:
        """Any number of random cut points over any transcript give the same events."""
        name = data.draw(st.sampled_from(sorted(TRANSCRIPTS)))
        blob = TRANSCRIPTS[name]
        cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=12)))
        chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
        assert parse(*chunks)[0] == parse(blob)[0]


# Generated streams: fields, comments and values (with arbitrary Unicode) joined
# with randomly chosen line endings, compared with the events they must give.
_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=12,
)
_ending = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def generated_stream(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    out: list[str] = []
    expected: list[SSEEvent] = []
    last_id = ""
    for _ in range(draw(st.integers(0, 6))):
        event_type = draw(st.none() | st.text(alphabet="abcxyz_", min_size=1, max_size=6))
        event_id = draw(st.none() | st.text(alphabet="0123456789ab", max_size=4))
        datas = draw(st.lists(_value, max_size=3))
        lines: list[str] = []
        if draw(st.booleans()):
            lines.append(":" + draw(_value))
        if event_type is not None:
            lines.append(f"event: {event_type}")
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        for value in datas:
            space = draw(st.sampled_from(["", " "]))
            # A value that itself starts with a space keeps it only after the one stripped.
            lines.append(
                f"data:{space}{value}" if space or not value.startswith(" ") else f"data: {value}"
            )
        for line in lines:
            out.append(line + draw(_ending))
        # After a CR, an LF would join it into one CRLF instead of making a blank line.
        out.append(
            draw(
                _ending.filter(
                    lambda e: not (out and out[-1].endswith("\r") and e.startswith("\n"))
                )
            )
        )
        if datas:
            expected.append(
                SSEEvent(data="\n".join(datas), event=event_type or "message", id=last_id)
            )
    return "".join(out).encode(), expected


class TestGeneratedStreams:
    @given(stream=generated_stream(), data=st.data())
    @settings(max_examples=300, deadline=None)
    def test_generated_stream_parses_in_any_split(
        self, stream: tuple[bytes, list[SSEEvent]], data: st.DataObject
    ) -> None:
        """A generated stream gives exactly its events, whole and in random pieces."""
        blob, expected = stream
        assert parse(blob)[0] == expected
        cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
        chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
        assert parse(*chunks)[0] == expected
