"""Helpers shared by the streamer and fault tests."""

from __future__ import annotations

import asyncio

from yunhu_stream.emulator import StreamRecord


def http_chunks(record: StreamRecord) -> list[bytes]:
    """The request's HTTP chunks, reassembled from the pieces the server read."""
    out, current = [], b""
    for piece in record.chunks:
        current += piece.data
        if piece.http_chunk_end:
            out.append(current)
            current = b""
    return out


def no_client_tasks() -> bool:
    """No client-side task is left: only the test runner's and aiohttp servers' remain."""
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()
                and not any(name in repr(t) for name in ("web_protocol", "_call_in_runner_task"))]
    return not leftover
