"""Self-check of bench/server.py's HTTP/1.1 parser: random bodies, random read splits.

Run: ``.venv/bin/python bench/check_server.py`` (prints ``ok``; exits 1 on the first mismatch).
The benchmark's correctness rests on this parser: every run compares the server's byte count and
CRC-32 with what the client wrote, so a parser bug would show up as errors in every run — this
check pins it down directly, including chunk extensions, pipelined requests and one-byte reads.
"""

from __future__ import annotations

import random
import sys
import zlib
from typing import Any, cast

import server


class FakeTransport:
    """Collects what the server writes; the parser under test never touches a socket."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def trial(rng: random.Random) -> None:
    store = server.Store()
    conn = server.Connection(store)
    transport = FakeTransport()
    conn.connection_made(cast(Any, transport))
    bodies, wire = [], b""
    for req in range(rng.randint(1, 3)):
        sizes = [rng.choice([1, 5, 20, 300, 70_000]) for _ in range(rng.randint(0, 30))]
        pieces = [rng.randbytes(size) for size in sizes]
        bodies.append(b"".join(pieces))
        wire += (
            b"POST /bench/t/open-apis/v1/bot/send-stream?recvId=r%d&recvType=user HTTP/1.1\r\n"
            b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n" % req
        )
        for piece in pieces:
            ext = b";x=1" if rng.random() < 0.05 else b""
            wire += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
        wire += b"0\r\n\r\n"
    pos = 0
    while pos < len(wire):
        step = rng.choice([1, 2, 3, 7, 50, 1000, 100_000])
        conn.data_received(wire[pos : pos + step])
        pos += step
    records = store.by_tag["t"]
    assert len(records) == len(bodies), (len(records), len(bodies))
    for record, body in zip(records, bodies, strict=True):
        assert record["bytes"] == len(body), (record["bytes"], len(body))
        assert record["crc"] == zlib.crc32(body)
        assert not body or record["events"][-1][1] == len(body)
    answers = sum(out.startswith(b"HTTP/1.1 200") for out in transport.out)
    assert answers == len(bodies), (answers, len(bodies))


def main() -> int:
    rng = random.Random(20240601)
    for _ in range(300):
        try:
            trial(rng)
        except AssertionError as exc:
            print(f"server parser mismatch: {exc!r}", file=sys.stderr)
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
