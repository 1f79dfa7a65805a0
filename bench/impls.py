"""The four ways of streaming a message that the benchmarks compare.

Each implementation is an async context manager with ``stream(recv_id)``, returning an object with
``await write(text: str)`` and ``await close()``; ``close()`` ends the body, waits for the YunHu
envelope and raises if its ``code`` is not 1.  They all stream to the same URL
``<base_url>/bot/send-stream?token=…&recvId=…&recvType=user&contentType=text``.

* ``floor``  — a hand-written HTTP/1.1 chunked writer on raw asyncio streams: no queue, no task,
  one ``transport.write`` of one HTTP chunk per ``write()``, keep-alive connections reused.
  It is what the machine allows from Python with asyncio.
* ``naive``  — what other libraries do: aiohttp posting an async generator that reads an
  unbounded :class:`asyncio.Queue`; one HTTP chunk per ``write()``.
* ``httpx``  — httpx streaming the same queue-fed async generator, for reference.
* ``ours``   — ``yunhu_stream.Bot(token, base_url=…).stream(…)`` with nothing configured, as a
  user's program runs it (the library is quiet by default: no handler, no structlog setup).
* ``ours_silenced`` — the same in a program that configured structlog to drop info events
  (``structlog.configure(wrapper_class=make_filtering_bound_logger(WARNING))``).

The naive and httpx clients are given an unlimited connection pool so that the comparison is
about the streaming design, not about a default pool size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

TOKEN = "bench-token-not-a-secret"


class StreamHandle(Protocol):
    """What a scenario needs from one stream."""

    async def write(self, text: str) -> None: ...

    async def close(self) -> object: ...


class Impl(Protocol):
    """What a scenario needs from a client."""

    name: str

    async def __aenter__(self) -> Impl: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def stream(self, recv_id: str) -> StreamHandle: ...


def _query(recv_id: str) -> dict[str, str]:
    return {"token": TOKEN, "recvId": recv_id, "recvType": "user", "contentType": "text"}


def _check_envelope(envelope: Any) -> str:
    if not isinstance(envelope, dict) or envelope.get("code") != 1:
        raise RuntimeError(f"server refused the stream: {envelope!r}")
    return str(envelope["data"]["messageInfo"]["msgId"])


class _BaseImpl:
    name = "base"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/bot/send-stream"

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


# --------------------------------------------------------------------------- floor


class FloorImpl(_BaseImpl):
    """Raw asyncio streams, a chunk per write, keep-alive connections kept in a free list."""

    name = "floor"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        parts = urlsplit(self.url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    def head(self, recv_id: str) -> bytes:
        return (
            f"POST {self.path}?{urlencode(_query(recv_id))} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()

    def stream(self, recv_id: str) -> FloorStream:
        return FloorStream(self, recv_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for _, writer in self.idle:
            writer.close()
        for _, writer in self.idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self.idle.clear()


class FloorStream:
    def __init__(self, impl: FloorImpl, recv_id: str) -> None:
        self.impl = impl
        self.recv_id = recv_id
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _open(self) -> asyncio.StreamWriter:
        self.conn = await self.impl.connection()
        self.conn[1].write(self.impl.head(self.recv_id))
        return self.conn[1]

    async def write(self, text: str) -> None:
        writer = self.conn[1] if self.conn is not None else await self._open()
        data = text.encode()
        writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        await writer.drain()

    async def close(self) -> object:
        if self.conn is None:
            await self._open()
        assert self.conn is not None
        reader, writer = self.conn
        try:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.impl.idle.append((reader, writer))
        return _check_envelope(json.loads(body))


# --------------------------------------------------------------------------- naive (aiohttp)


class _QueueBody:
    """An unbounded queue read by an async generator: the design many libraries use."""

    def __init__(self, impl: Any, recv_id: str) -> None:
        self.impl = impl
        self.recv_id = recv_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task[object] | None = None

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item

    async def _post(self) -> object:
        raise NotImplementedError

    async def write(self, text: str) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._post())
        await self.queue.put(text.encode())

    async def close(self) -> object:
        if self.task is None:
            self.task = asyncio.create_task(self._post())
        await self.queue.put(None)
        return await self.task


class NaiveImpl(_BaseImpl):
    """aiohttp posting a queue-fed async generator."""

    name = "naive"

    async def __aenter__(self) -> NaiveImpl:
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.session.close()

    def stream(self, recv_id: str) -> NaiveStream:
        return NaiveStream(self, recv_id)


class NaiveStream(_QueueBody):
    async def _post(self) -> object:
        async with self.impl.session.post(
            self.impl.url,
            params=_query(self.recv_id),
            data=self.body(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        ) as resp:
            return _check_envelope(json.loads(await resp.read()))


# --------------------------------------------------------------------------- httpx


class HttpxImpl(_BaseImpl):
    """httpx streaming a queue-fed async generator."""

    name = "httpx"

    async def __aenter__(self) -> HttpxImpl:
        import httpx

        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=2000),
            timeout=httpx.Timeout(120.0, connect=30.0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.client.aclose()

    def stream(self, recv_id: str) -> HttpxStream:
        return HttpxStream(self, recv_id)


class HttpxStream(_QueueBody):
    async def _post(self) -> object:
        async with self.impl.client.stream(
            "POST",
            self.impl.url,
            params=_query(self.recv_id),
            content=self.body(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        ) as resp:
            return _check_envelope(json.loads(await resp.aread()))


# --------------------------------------------------------------------------- ours


class OursImpl(_BaseImpl):
    """``yunhu_stream.Bot`` with its defaults; streams are returned as-is (no wrapper)."""

    name = "ours"

    def __init__(self, base_url: str, **bot_options: Any) -> None:
        super().__init__(base_url)
        self.bot_options = bot_options

    async def __aenter__(self) -> OursImpl:
        from yunhu_stream import Bot

        self.bot = Bot(TOKEN, base_url=self.base_url, **self.bot_options)
        await self.bot.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.bot.__aexit__(exc_type, exc, tb)

    def stream(self, recv_id: str) -> StreamHandle:
        stream: StreamHandle = self.bot.stream(f"user:{recv_id}")
        return stream


class OursSilencedImpl(OursImpl):
    """Ours in an application that configured structlog to drop info and debug events."""

    name = "ours_silenced"

    async def __aenter__(self) -> OursImpl:
        import logging

        import structlog

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            cache_logger_on_first_use=True,
        )
        return await super().__aenter__()


IMPLS: dict[str, type[_BaseImpl]] = {
    cls.name: cls for cls in (FloorImpl, NaiveImpl, HttpxImpl, OursImpl, OursSilencedImpl)
}
