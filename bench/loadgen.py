"""Post YunHu message events to a webhook at a fixed rate, on loopback; print the send times.

Usage: ``python bench/loadgen.py URL RATE COUNT``.  Event ``i`` comes from user ``wh{i}`` (so
its reply streams to ``recvId=wh{i}``).  Requests go out on a pool of keep-alive connections
(raw asyncio, one request in flight per connection), each at its scheduled time
``t0 + i / RATE``; the time just before it is written is recorded (``time.monotonic``, the
clock the bench server stamps reads with).  Prints one JSON object: ``{"sent": {id: t}}``
and ``{"failed": n}`` (non-200 answers or broken connections).
"""

from __future__ import annotations

import asyncio
import json
import sys
from time import monotonic
from urllib.parse import urlsplit

from yunhu_stream.testing import message_event

CONNECTIONS = 32


async def main(url: str, rate: float, count: int) -> dict[str, object]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    host, port, path = parts.hostname, parts.port, parts.path or "/"
    bodies = [
        json.dumps(message_event("hi", chat=f"user:wh{i}", event_id=f"ev{i}")).encode()
        for i in range(count)
    ]
    sent: dict[str, float] = {}
    failed = 0
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    async def worker() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, port)
        while (i := await queue.get()) is not None:
            body = bodies[i]
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            sent[f"wh{i}"] = monotonic()
            writer.write(head.encode() + body)
            try:
                status = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in status.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if b" 200 " not in status.split(b"\r\n", 1)[0]:
                    failed += 1
            except (OSError, asyncio.IncompleteReadError):
                failed += 1
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(CONNECTIONS)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return {"sent": sent, "failed": failed}


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
    json.dump(result, sys.stdout)
