"""Run mutmut on the core and print ``mutation score: N%`` (``make mutate``).

Usage: ``python tests/mutation_score.py [MODULE ...]`` where MODULE is a core module
name such as ``_retry`` (default: every module of ``[tool.mutmut] only_mutate``);
``python tests/mutation_score.py --score [MODULE ...]`` prints the last run's score again
(after ``EQUIVALENT`` changed) without running anything.
The score is killed / (killed + survived), a mutant no selected test runs ("no tests")
counting as survived, leaving out the mutants docs/testing.md lists as equivalent
(``EQUIVALENT`` below, each with its reason there).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from collections import Counter

EQUIVALENT: frozenset[str] = frozenset({
    # `wait > 0` -> `>= 0` and `wait <= 0` -> `< 0`: differ only when a float wait is exactly 0.
    "yunhu_stream._ratelimit.xǁRateLimiterǁacquire__mutmut_4",
    "yunhu_stream._ratelimit.xǁRateLimiterǁacquire__mutmut_9",
    # The idle wait's `left > 0` -> `>= 0` and `<` -> `<=`: the same, for float times.
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_wait_or_close__mutmut_10",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_wait_or_close__mutmut_20",
    # `pos > 0` -> `>= 0`: data is valid UTF-8, so index 0 starts a character.
    "yunhu_stream._buffer.x_utf8_floor__mutmut_3",
    # `cut < message_start` -> `<=`: the current message starts on a character.
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_drop_delivered__mutmut_9",
    # `size <= soft` -> `<`: at size == soft the window [soft, size) is empty.
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_30",
    # rfind bounds: the condition already requires an occurrence inside [lo, hi), so the
    # last one before hi is it (47); with none inside, the value is <= 2 < lo (54, 55).
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_47",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_54",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_55",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_58",
    # The condition tests for an occurrence in [lo, hi) whatever the spelling (find, > 0,
    # >= 1: lo >= 48, as max_message >= 64); a default of +1 or -2, or best >= lo, cannot
    # pass lo either (59-64).
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_59",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_60",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_61",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_62",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_63",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_64",
    # `size > hard` -> `>=`: at size == hard the split is hard, now or at the next byte.
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_66",
    # sent_text decodes whole chunks, which end on characters, so the error handler
    # ("ignore", dropped or misspelt) never runs; "UTF-8" names the same codec.
    "yunhu_stream._buffer.xǁTranscriptBufferǁsent_text__mutmut_10",
    "yunhu_stream._buffer.xǁTranscriptBufferǁsent_text__mutmut_15",
    "yunhu_stream._buffer.xǁTranscriptBufferǁsent_text__mutmut_16",
    "yunhu_stream._buffer.xǁTranscriptBufferǁsent_text__mutmut_17",
    # read_capped's fast path (one read() when a Content-Length within the limit and no
    # encoding) only saves the loop: taking the loop instead (length None, `<` for `<=`)
    # reads the same bytes; aiohttp's headers ignore case; the loop's piece size is free.
    "yunhu_stream._transport.x_read_capped__mutmut_1",
    "yunhu_stream._transport.x_read_capped__mutmut_5",
    "yunhu_stream._transport.x_read_capped__mutmut_9",
    "yunhu_stream._transport.x_read_capped__mutmut_10",
    "yunhu_stream._transport.x_read_capped__mutmut_16",
    "yunhu_stream._transport.x_read_capped__mutmut_17",
    # parse_envelope: "UTF-8" names the same codec; "" is no more a dict than None is.
    "yunhu_stream._transport.x_parse_envelope__mutmut_12",
    "yunhu_stream._transport.x_parse_envelope__mutmut_25",
    # Transport.call: json.dumps escapes only for a truthy ensure_ascii (None is not); a
    # body of exactly 1 MiB sent from a BytesIO or as bytes is the same request; aiohttp
    # follows redirects only when allow_redirects is truthy (None is not).
    "yunhu_stream._transport.xǁTransportǁcall__mutmut_6",
    "yunhu_stream._transport.xǁTransportǁcall__mutmut_14",
    "yunhu_stream._transport.xǁTransportǁcall__mutmut_28",
    "yunhu_stream._transport.xǁTransportǁpost_stream__mutmut_10",  # allow_redirects=None
    # Delivery._write_body: a gap split needs `taken > message_start`, and `>=` cannot
    # differ: a message's body starts only once the message has text, and waits for
    # writes only after it took some.
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_36",
    # The body's stop signal when its attempt is over: aiohttp's body-writer task raises
    # it and the transport drops it unread, so its message (None, misspelt) is not seen;
    # the body's first chunk (a body starts with text) sets the quiet time before
    # anything reads the starting value (None); `>` for `>=` on float times.
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_5",
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_9",
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_10",
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_11",
    "yunhu_stream._delivery.xǁDeliveryǁ_write_body__mutmut_35",
    # BodySink: `_started = None` is read for its truth only; starting it True cannot
    # matter, as a body's first step always sends a non-empty chunk (the message's text
    # or its reopened head), which sets it before a write-through can ask ready().
    "yunhu_stream._transport.xǁBodySinkǁ__init____mutmut_2",
    "yunhu_stream._transport.xǁBodySinkǁ__init____mutmut_3",
    # Delivery.run's stream key starts as "" only to have a value: it is read only with
    # a shared registry, which replaces it first.
    "yunhu_stream._delivery.xǁDeliveryǁrun__mutmut_11",
    # _StreamPayload hands aiohttp no value (None for the writer): aiohttp reads a
    # payload's value only through write() and decode(), which it overrides.
    "yunhu_stream._transport.xǁ_StreamPayloadǁ__init____mutmut_1",
    # TranscriptBuffer._choose_split (Markdown): the early return only saves calling the
    # planner, which itself waits for the last quarter of the allowance; a lower bar
    # (`<`, `/`, `/ 3`, `// 5`, or a later message's start added) calls it sooner, to
    # the same answer.
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_4",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_5",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_6",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_7",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ_choose_split__mutmut_9",
    # TranscriptBuffer: None for False in flags read only for their truth (take's and
    # deliver's head/tail due, next_message's unbounded); take's `<` for `<=`: a chunk of
    # exactly CHUNK_CAP ends at utf8_floor(start + CHUNK_CAP), which is that same end;
    # append's room for the fast path computed smaller (`+ taken`, `/ 2` on an integer
    # compare, `// 3`, `- 2`): the writes it leaves out take the general path, which
    # appends and wakes the same.
    "yunhu_stream._buffer.xǁTranscriptBufferǁtake__mutmut_1",
    "yunhu_stream._buffer.xǁTranscriptBufferǁtake__mutmut_19",
    "yunhu_stream._buffer.xǁTranscriptBufferǁtake__mutmut_23",
    "yunhu_stream._buffer.xǁTranscriptBufferǁdeliver__mutmut_10",
    "yunhu_stream._buffer.xǁTranscriptBufferǁdeliver__mutmut_15",
    "yunhu_stream._buffer.xǁTranscriptBufferǁnext_message__mutmut_8",
    "yunhu_stream._buffer.xǁTranscriptBufferǁappend__mutmut_19",
    "yunhu_stream._buffer.xǁTranscriptBufferǁappend__mutmut_34",
    "yunhu_stream._buffer.xǁTranscriptBufferǁappend__mutmut_35",
    "yunhu_stream._buffer.xǁTranscriptBufferǁappend__mutmut_36",
    # Streamer.write's re-check after a wait encodes "" only to check the state; any
    # other text is checked the same and its bytes thrown away.
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_36",
    # ws_connect's cast() does nothing at run time, whatever type it names.
    "yunhu_stream._transport.x_ws_connect__mutmut_10",
    "yunhu_stream._transport.x_ws_connect__mutmut_15",
    "yunhu_stream._transport.x_ws_connect__mutmut_16",
    # failure_kind's "other" is compared with nothing: any other value builds the same
    # TransportError.
    "yunhu_stream._transport.x_failure_kind__mutmut_10",
    "yunhu_stream._transport.x_failure_kind__mutmut_11",
    # Streamer: leaving out the warning's stacklevel=1 (the default); `_closed_by_idle =
    # None` and abort's `eof = None` (only their truth is read); "UTF-8" names the codec.
    "yunhu_stream._streamer.xǁStreamerǁ__del____mutmut_27",
    "yunhu_stream._streamer.xǁStreamerǁ__init____mutmut_11",
    "yunhu_stream._streamer.xǁStreamerǁabort__mutmut_3",
    "yunhu_stream._streamer.xǁStreamerǁ_encode__mutmut_12",
    # Recovery.finish: `edited = -2` (any size >= 0 passes `size > edited` alike); `<` for
    # `<=` (the stream itself is always in api.streams, never in the set it waits for);
    # `>` for `>=` on float times; `/` for `//` (an integer size passes the same bound).
    "yunhu_stream._recovery.xǁRecoveryǁfinish__mutmut_19",
    "yunhu_stream._recovery.xǁRecoveryǁfinish__mutmut_27",
    "yunhu_stream._recovery.xǁRecoveryǁfinish__mutmut_36",
    "yunhu_stream._recovery.xǁRecoveryǁfinish__mutmut_39",
    # Delivery.__init__: starting values that each attempt (or message) sets before
    # anything reads them: error_traceback (read only with error, set with it), the
    # attempt's start time, body-ended and late flags, slot, live attempt, sink and
    # quiet time (set by _post_stream and _write_body before the body or its timer run;
    # _write_through runs only while that body waits), and the last message's text
    # (set after every message, read by _decorate only once there is one).
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_14",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_23",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_24",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_25",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_26",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_27",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_29",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_30",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_31",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_32",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_33",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_34",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_35",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_36",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_38",
    "yunhu_stream._delivery.xǁDeliveryǁ__init____mutmut_39",
    # _post_stream: None for False in the body-ended and late flags (only their truth is
    # read); after the attempt, _waiting is read by nothing (_end_body runs only while the
    # body is live, the timer is cancelled) and a live attempt of None stops the old
    # body as 0 does (no attempt is None).
    "yunhu_stream._delivery.xǁDeliveryǁ_post_stream__mutmut_14",
    "yunhu_stream._delivery.xǁDeliveryǁ_post_stream__mutmut_27",
    "yunhu_stream._delivery.xǁDeliveryǁ_post_stream__mutmut_49",
    "yunhu_stream._delivery.xǁDeliveryǁ_post_stream__mutmut_50",
    # A failure's kind is compared with "terminal", "probe" and "mid" only: any other
    # value ("early" misspelt, None) takes the early path; `budget or` treats "" as None.
    "yunhu_stream._delivery.xǁDeliveryǁ_classify__mutmut_3",
    "yunhu_stream._delivery.xǁDeliveryǁ_classify__mutmut_4",
    "yunhu_stream._delivery.xǁDeliveryǁ_classify__mutmut_19",
    "yunhu_stream._delivery.xǁDeliveryǁ_classify__mutmut_20",
    "yunhu_stream._delivery.xǁDeliveryǁ_deliver_message__mutmut_2",
    "yunhu_stream._delivery.xǁDeliveryǁ_deliver_message__mutmut_19",
    "yunhu_stream._delivery.xǁDeliveryǁ_deliver_message__mutmut_20",
    "yunhu_stream._delivery.xǁDeliveryǁ_deliver_message__mutmut_21",
    # TranscriptBuffer.__init__: None for False in flags read only for their truth
    # (aborted, unbounded, head/tail due); a tail of None before any split (read only once
    # a split sets it, or as bool()); a first idle-seen time of None (`not` resets it at
    # the first wait, as it does 0.0).
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_13",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_17",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_22",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_24",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_26",
    "yunhu_stream._buffer.xǁTranscriptBufferǁ__init____mutmut_36",
    # Transport: `_closed = None` (only its truth is read); leaving out `total=None`
    # (aiohttp's ClientTimeout defaults total to None); TCPConnector(limit=None) (aiohttp
    # checks `if self._limit`, so None is no limit, as 0 is).
    "yunhu_stream._transport.xǁTransportǁ__init____mutmut_7",
    "yunhu_stream._transport.xǁTransportǁ__init____mutmut_12",
    "yunhu_stream._transport.xǁTransportǁ__init____mutmut_17",
    "yunhu_stream._transport.xǁTransportǁsession__mutmut_13",
    "yunhu_stream._transport.xǁTransportǁsession__mutmut_16",
    # Streamer.write's two fast paths are shortcuts: a stricter condition (`1 <`, `<`,
    # `+ taken`, `and unbounded`, or no str check) sends the write down the general path,
    # which checks, appends and counts the same; `_closed_by_idle = None` is read for its
    # truth only.
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_2",
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_6",
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_8",
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_22",
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_24",
    "yunhu_stream._streamer.xǁStreamerǁwrite__mutmut_25",
    "yunhu_stream._streamer.xǁStreamerǁ_raise_if_failed__mutmut_3",
    # The default arguments of _StreamPayload.decode, which refuses whatever they are.
    "yunhu_stream._transport.xǁ_StreamPayloadǁdecode__mutmut_1",
    "yunhu_stream._transport.xǁ_StreamPayloadǁdecode__mutmut_2",
    "yunhu_stream._transport.xǁ_StreamPayloadǁdecode__mutmut_3",
    "yunhu_stream._transport.xǁ_StreamPayloadǁdecode__mutmut_4",
})
"""Mutant names shown equivalent (they cannot change behaviour); see docs/testing.md."""


# mutmut's own entry point, not `python -m mutmut` (its trampolines import mutmut.__main__,
# which must not be the running __main__), on a pytest that dropped Node._nodeid
# (mutmut 3.6 reads it).
_MUTMUT = """
import _pytest.nodes
if not hasattr(_pytest.nodes.Node, "_nodeid"):
    _pytest.nodes.Node._nodeid = property(lambda node: node.nodeid)
from mutmut.__main__ import cli
cli()
"""


def _statuses(mutmut: list[str], patterns: list[str]) -> dict[str, str]:
    """Every mutant's status from ``mutmut results``, for names matching ``patterns``."""
    out = subprocess.run([*mutmut, "results", "--all", "true"], capture_output=True,
                         text=True, check=True).stdout
    status: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"\s*(yunhu_stream\.\S+): (.+)$", line)
        if match and any(fnmatch.fnmatchcase(match[1], p) for p in patterns):
            status[match[1]] = match[2].strip()
    return status


def main(modules: list[str]) -> int:
    mutmut = [sys.executable, "-c", _MUTMUT]
    if modules[:1] == ["--score"]:  # the last run's score, EQUIVALENT as it is now
        return report(mutmut, _patterns(modules[1:]))
    # The selected tests mostly wait on loopback timers: 8 mutants per core keep both
    # cores busy here (see docs/testing.md for the runs this was measured by).
    children = int(os.environ.get("MUTATE_CHILDREN") or 8 * (os.cpu_count() or 1))
    patterns = _patterns(modules)
    # mutmut has no generate-only command: a name that matches no mutant makes `run` stop
    # right after generating the mutants and timing the tests (it then fails on purpose).
    # Knowing every name, the second run tests each mutant but the equivalent ones, which
    # would only survive (and a survivor runs every test that reaches it: the slowest kind).
    first = subprocess.run([*mutmut, "run", "yunhu_stream.no-such-mutant"],
                           capture_output=True, text=True, check=False)
    names = sorted(n for n in _statuses(mutmut, patterns) if n not in EQUIVALENT)
    if not names:
        print(first.stdout[-4000:], first.stderr[-4000:], sep="\n")
        print("mutmut generated no mutants (its output is above)")
        return 1
    subprocess.run([*mutmut, "run", "--max-children", str(children), *names], check=False)
    return report(mutmut, patterns)


def _patterns(modules: list[str]) -> list[str]:
    names = [f"yunhu_stream.{m.removesuffix('.py').split('/')[-1]}.*" for m in modules]
    return names or ["yunhu_stream.*"]


def report(mutmut: list[str], patterns: list[str]) -> int:
    """Print the survivors, the counts and the score of the mutants ``patterns`` match."""
    status = {n: s for n, s in _statuses(mutmut, patterns).items() if n not in EQUIVALENT}
    counts = Counter(status.values())
    # A mutant no selected test even runs is not killed: it counts as a survivor.
    survived = sorted(n for n, s in status.items() if s in ("survived", "no tests"))
    for name in survived:
        print(f"{status[name]}: {name}")
    killed = counts["killed"] + counts["timeout"]
    print(f"mutants: {dict(counts)}")
    total = killed + len(survived)
    print(f"mutation score: {100 * killed / total:.1f}%" if total else "mutation score: n/a")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
