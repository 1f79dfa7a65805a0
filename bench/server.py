"""A minimal YunHu ``bot/send-stream`` receiver for the benchmarks, run as its own process.

It is deliberately not the project's emulator: it is a raw :class:`asyncio.Protocol` so that
the server adds as little cost as possible, and it records *when* each byte arrives.

Wire behaviour:

* ``POST <prefix>/bench/<tag>/open-apis/v1/bot/send-stream?recvId=…&recvType=…`` with a
  chunked (or ``Content-Length``) body.  The body is parsed as it arrives; at its end the server
  answers the YunHu envelope
  ``{"code":1,"msg":"success","data":{"messageInfo":{"msgId":…,"recvId":…,"recvType":…}}}``
  and keeps the connection alive (HTTP/1.1).
* A ``recvId`` of the form ``stall<ms>-<anything>`` makes the server stop reading that connection
  for ``<ms>`` milliseconds right after the request head (the kernel buffers fill, then the
  client feels backpressure).
* ``GET /_bench/stats?tag=T[&events=1]`` answers JSON with one record per finished stream of tag
  ``T``; ``POST /_bench/reset?tag=T`` forgets them.

Per stream it records, with :func:`time.monotonic` (``CLOCK_MONOTONIC``, shared by every process
on Linux, so the harness can compare it with client-side timestamps): when the head was parsed,
when the first body byte was read, when the body ended, the byte and chunk counts, a CRC-32 of the
body, and — with ``events=1`` — every read as ``[time, cumulative body bytes]``.

Run: ``python bench/server.py [--uvloop]``; it prints ``{"port": N}`` on its first stdout line and
exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import threading
import zlib
from time import monotonic
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

_HEAD, _SIZE, _DATA, _DATA_CRLF, _TRAILER, _CLBODY, _STALLED = range(7)
_MSG_IDS = itertools.count(1)


class Store:
    """Finished-stream records, grouped by tag."""

    def __init__(self) -> None:
        self.by_tag: dict[str, list[dict[str, Any]]] = {}

    def add(self, tag: str, record: dict[str, Any]) -> None:
        self.by_tag.setdefault(tag, []).append(record)


class Connection(asyncio.Protocol):
    """One client connection: parses requests back to back (keep-alive)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.transport: asyncio.Transport | None = None
        self.state = _HEAD
        self.pending = b""
        self.remaining = 0
        self._reset_stream()

    def _reset_stream(self) -> None:
        self.tag = ""
        self.query: dict[str, str] = {}
        self.t_head = 0.0
        self.t_first: float | None = None
        self.nbytes = 0
        self.nchunks = 0
        self.crc = 0
        self.events: list[tuple[float, int]] = []
        self.dirty = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self.pending:
            data = self.pending + data
            self.pending = b""
        self._feed(data, now)
        if self.dirty:
            self._mark(now)

    def _mark(self, now: float) -> None:
        """Record one read of body bytes: ``(time, cumulative bytes)``."""
        if self.t_first is None:
            self.t_first = now
        self.events.append((now, self.nbytes))
        self.dirty = False

    def _feed(self, data: bytes, now: float) -> None:
        pos = 0
        n = len(data)
        view = memoryview(data)
        while pos < n:
            state = self.state
            if state in (_DATA, _CLBODY):
                take = min(self.remaining, n - pos)
                self.crc = zlib.crc32(view[pos : pos + take], self.crc)
                self.nbytes += take
                self.dirty = True
                self.remaining -= take
                pos += take
                if self.remaining == 0:
                    if state == _DATA:
                        self.nchunks += 1
                        self.state = _DATA_CRLF
                    else:
                        self._finish(now)
            elif state == _SIZE:
                # Fast path: whole small chunks back to back (the floor's 100,000 writes of 20 B
                # arrive this way), parsed in one tight loop so that the server stays faster
                # than any client it measures.
                pos = self._whole_chunks(data, view, pos, n)
                if pos >= n:
                    break
                end = data.find(b"\r\n", pos)
                if end < 0:
                    self.pending = data[pos:]
                    return
                size = int(data[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if size == 0:
                    self.state = _TRAILER
                else:
                    self.remaining = size
                    self.state = _DATA
            elif state == _DATA_CRLF:
                if n - pos < 2:
                    self.pending = data[pos:]
                    return
                if data[pos : pos + 2] != b"\r\n":
                    self._bad(b"chunk data not followed by CRLF")
                    return
                pos += 2
                self.state = _SIZE
            elif state == _TRAILER:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    self.pending = data[pos:]
                    return
                line_empty = end == pos
                pos = end + 2
                if line_empty:
                    self._finish(now)
            elif state == _HEAD:
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    self.pending = data[pos:]
                    return
                head = data[pos:end]
                pos = end + 4
                self._on_head(head, now)
            else:  # _STALLED: keep everything until reading resumes
                self.pending = data[pos:]
                return

    def _whole_chunks(self, data: bytes, view: memoryview, pos: int, n: int) -> int:
        """Consume every complete, non-final chunk from ``pos``; return where parsing stopped."""
        find, crc32 = data.find, zlib.crc32
        crc, nbytes, nchunks = self.crc, self.nbytes, self.nchunks
        while True:
            end = find(b"\r\n", pos)
            if end < 0:
                break
            try:
                size = int(data[pos:end], 16)
            except ValueError:  # a chunk extension: leave it to the general parser
                break
            start = end + 2
            stop = start + size
            if size == 0 or stop + 2 > n or data[stop : stop + 2] != b"\r\n":
                break
            crc = crc32(view[start:stop], crc)
            nbytes += size
            nchunks += 1
            pos = stop + 2
        if nbytes != self.nbytes:
            self.crc, self.nbytes, self.nchunks = crc, nbytes, nchunks
            self.dirty = True
        return pos

    def _on_head(self, head: bytes, now: float) -> None:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            self._bad(b"bad request line")
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.keep_alive = headers.get("connection", "").lower() != "close"
        url = urlsplit(target)
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/_bench/"):
            self._control(method, url.path, self.query)
            return
        parts = url.path.split("/")
        if not url.path.endswith("/bot/send-stream") or "bench" not in parts:
            self._respond(404, {"code": -1, "msg": f"no route {url.path}", "data": None})
            self.keep_alive = False
            self._close_if_done()
            return
        self.tag = parts[parts.index("bench") + 1]
        self.t_head = now
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = _SIZE
        else:
            self.remaining = int(headers.get("content-length", "0"))
            self.state = _CLBODY
            if self.remaining == 0:
                self._finish(now)
                return
        recv_id = self.query.get("recvId", "")
        if recv_id.startswith("stall"):
            stall_ms = int(recv_id[5:].split("-", 1)[0])
            resume_state = self.state
            self.state = _STALLED
            assert self.transport is not None
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(stall_ms / 1000, self._resume, resume_state)

    def _resume(self, state: int) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.state = state
        self.transport.resume_reading()
        data, self.pending = self.pending, b""
        if data:
            self.data_received(data)

    def _finish(self, now: float) -> None:
        if self.dirty:
            self._mark(now)
        record = {
            "recv_id": self.query.get("recvId", ""),
            "t_head": self.t_head,
            "t_first": self.t_first if self.t_first is not None else now,
            "t_end": now,
            "bytes": self.nbytes,
            "chunks": self.nchunks,
            "crc": self.crc,
            "reads": len(self.events),
            "events": self.events,
        }
        self.store.add(self.tag, record)
        info = {
            "msgId": f"bench-{next(_MSG_IDS)}",
            "recvId": self.query.get("recvId", ""),
            "recvType": self.query.get("recvType", "user"),
        }
        self._respond(200, {"code": 1, "msg": "success", "data": {"messageInfo": info}})
        self._reset_stream_keep_conn()
        self._close_if_done()

    def _reset_stream_keep_conn(self) -> None:
        keep = self.keep_alive
        self._reset_stream()
        self.keep_alive = keep
        self.state = _HEAD

    def _control(self, method: str, path: str, query: dict[str, str]) -> None:
        tag = query.get("tag", "")
        if path == "/_bench/stats":
            records = self.store.by_tag.get(tag, [])
            if query.get("events") != "1":
                records = [{k: v for k, v in r.items() if k != "events"} for r in records]
            self._respond(200, {"tag": tag, "streams": records})
        elif path == "/_bench/reset" and method == "POST":
            self.store.by_tag.pop(tag, None)
            self._respond(200, {"tag": tag, "reset": True})
        else:
            self._respond(404, {"error": f"unknown control path {path}"})
        self.state = _HEAD
        self._close_if_done()

    def _respond(self, status: int, payload: dict[str, Any]) -> None:
        assert self.transport is not None
        body = json.dumps(payload, separators=(",", ":")).encode()
        reason = b"OK" if status == 200 else b"Not Found"
        head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
            status,
            reason,
            len(body),
        )
        self.transport.write(head + body)

    def _bad(self, why: bytes) -> None:
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(why), why)
        )
        self.transport.close()

    def _close_if_done(self) -> None:
        if not self.keep_alive and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    """Serve until stdin reaches EOF (the harness exits or closes it)."""
    loop = asyncio.get_running_loop()
    store = Store()
    server = await loop.create_server(lambda: Connection(store), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound}), flush=True)
    done = asyncio.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=wait_stdin, daemon=True).start()
    async with server:
        await done.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run the server on uvloop")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
