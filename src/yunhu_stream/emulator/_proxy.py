"""Proxy mode: unmodified clients whose YunHu host is a constant talk to the emulator.

Two listeners on loopback, started with the emulator:

- the emulator's app also serves HTTPS, with a certificate for YunHu's API hosts issued
  by a certificate authority made at startup (``trustme``; the ``proxy`` extra);
- an HTTP ``CONNECT`` proxy that tunnels ``chat-go.jwzhd.com:443`` and
  ``chat-web-go.jwzhd.com:443`` to that HTTPS listener. It resolves those names itself:
  no DNS lookup and no connection to any other host ever happens. Any other target
  is refused with ``403``, any other method with ``405``.

A client started with ``HTTPS_PROXY`` pointed at the proxy and ``SSL_CERT_FILE`` at the
CA (``emu.proxy_env``) then reaches the emulator while it believes it talks to YunHu.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

PROXIED_HOSTS = ("chat-go.jwzhd.com", "chat-web-go.jwzhd.com")
"""The hosts the proxy answers for (YunHu's bot API and its web API)."""
HEAD_TIMEOUT = 10.0
MAX_HEAD = 16 * 1024


def _trustme() -> Any:
    try:
        import trustme  # an extra: only proxy mode needs it
    except ImportError as exc:
        raise ImportError(
            "Emulator(proxy=True) needs trustme to make its certificate authority; "
            "install it with: pip install 'yunhu-stream[proxy]'"
        ) from exc
    return trustme


class Interceptor:
    """The CA, the HTTPS listener and the CONNECT proxy of one emulator."""

    def __init__(self, host: str) -> None:
        self._trustme = _trustme()
        self._host = host
        self._ca: Any = None
        self._ssl: ssl.SSLContext | None = None
        self._dir: Path | None = None
        self.tls_port = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tunnels: set[asyncio.StreamWriter] = set()

    @property
    def ca_file(self) -> str | None:
        """The CA certificate (PEM) to trust, while running."""
        return str(self._dir / "ca.pem") if self._dir else None

    @property
    def url(self) -> str:
        """The proxy's URL: ``http://127.0.0.1:PORT``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    async def start(self, runner: web.AppRunner) -> None:
        """Serve ``runner``'s app over TLS too, and start the proxy in front of it."""
        if self._ca is None:  # one CA for the emulator's life: restarts keep it valid
            self._ca = self._trustme.CA(organization_name="yunhu-stream emulator")
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ca.issue_cert(*PROXIED_HOSTS).configure_cert(self._ssl)
        self._dir = Path(tempfile.mkdtemp(prefix="yunhu-emulator-ca-"))
        self._ca.cert_pem.write_to_path(str(self._dir / "ca.pem"))
        site = web.TCPSite(runner, self._host, self.tls_port, ssl_context=self._ssl)
        await site.start()
        self.tls_port = int(runner.addresses[-1][1])  # the site just added is the last
        self._server = await asyncio.start_server(
            self._handle, self._host, self.port, limit=MAX_HEAD
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop the proxy, cut its tunnels, and delete the CA file. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._tunnels):
                writer.close()
            await server.wait_closed()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tunnels.add(writer)
        try:
            await self._tunnel(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError):
            pass  # a client that went away or spoke garbage: nothing to answer
        finally:
            self._tunnels.discard(writer)
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method.upper() != "CONNECT":
            await _refuse(writer, 405, "this proxy only tunnels HTTPS (CONNECT) to YunHu's hosts")
            return
        host, _, port = target.rpartition(":")
        if host.lower() not in PROXIED_HOSTS or port != "443":
            await _refuse(
                writer, 403,
                f"the emulator's proxy only reaches {', '.join(PROXIED_HOSTS)} on port 443; "
                f"{target} is not forwarded anywhere",
            )
            return
        up_reader, up_writer = await asyncio.open_connection(self._host, self.tls_port)
        self._tunnels.add(up_writer)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self._tunnels.discard(up_writer)
            up_writer.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(OSError):
        if sink.can_write_eof():
            sink.write_eof()


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = reason.encode()
    phrase = {403: "Forbidden", 405: "Method Not Allowed"}[status]
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
    await writer.drain()
