"""Proxy mode: an HTTPS proxy for YunHu's hosts in front of the emulator, so a client whose
base URL is a constant runs unmodified. Everything stays on loopback: the proxy resolves
YunHu's host names itself and refuses every other target."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

# The seed document's curl command (seeds/yunhu-send-stream-api.md), word for word; the
# tests add only --proxy and --cacert, and give the file it sends (the seed's is a path
# on its author's machine) as the @file of --data-binary.
SEED_CURL = [
    "curl", "--location",
    "https://chat-go.jwzhd.com/open-apis/v1/bot/send-stream?token=xxxx&recvId=7058262"
    "&recvType=user&contentType=text",
    "--header", "Transfer-Encoding: chunked",
    "--header", "Content-Type: text/plain",
    "--data-binary",
]
SEED_FILE = "@/Users/feng/Downloads/1.txt"


def need_curl() -> str:
    curl = shutil.which("curl")
    if curl is None:
        if os.environ.get("CI"):
            raise RuntimeError("the proxy tests need curl (Debian package curl)")
        pytest.skip("curl is not installed")
    return curl


async def connect_via(proxy_url: str, target: str) -> bytes:
    """Send ``CONNECT target`` to the proxy and return its status line."""
    host, port = proxy_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()


class TestSeedCurl:
    async def test_the_seed_curl_command_streams_a_file_into_a_chat(self, tmp_path: Path) -> None:
        """The documented curl example, with only --proxy and --cacert added, streams the
        file chunked into the user's chat and prints the documented answer."""
        need_curl()
        text = "".join(f"Message {i}" for i in range(15)) + "\n流式消息\n"
        data = tmp_path / "1.txt"
        data.write_text(text, encoding="utf-8")
        async with Emulator(token="xxxx", proxy=True) as emu:  # the seed's token
            argv = [*SEED_CURL, SEED_FILE.replace("/Users/feng/Downloads/1.txt", str(data))]
            proc = await asyncio.create_subprocess_exec(
                *argv, "--silent", "--show-error",
                "--proxy", emu.proxy_url or "", "--cacert", emu.ca_file or "",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            answer = json.loads(out)
            [message] = emu.chat("user", "7058262")
            [record] = emu.streams
        assert answer["code"] == 1 and answer["msg"] == "success"
        assert answer["data"]["messageInfo"] == {
            "msgId": message.msg_id, "recvId": "7058262", "recvType": "user"}
        assert message.text == text and message.streamed
        assert record.completed and record.body == text.encode()


class TestOnlyYunHu:
    async def test_other_hosts_and_ports_are_refused_without_connecting(self) -> None:
        """CONNECT to any other host or port is 403: the proxy never dials out."""
        async with Emulator(proxy=True) as emu:
            assert emu.proxy_url is not None
            for target in ("example.com:443", "chat-go.jwzhd.com:80", "127.0.0.1:443"):
                assert (await connect_via(emu.proxy_url, target)).startswith(b"HTTP/1.1 403")
            ok = await connect_via(emu.proxy_url, "chat-web-go.jwzhd.com:443")
        assert ok == b"HTTP/1.1 200 Connection established\r\n"

    async def test_plain_http_proxying_is_refused(self) -> None:
        """Only CONNECT is served; an absolute-form GET is 405."""
        async with Emulator(proxy=True) as emu, aiohttp.ClientSession() as session:
            resp = await session.get("http://chat-go.jwzhd.com/", proxy=emu.proxy_url)
            resp.release()
            assert resp.status == 405

    async def test_both_hosts_reach_the_emulator_and_trust_only_its_ca(self) -> None:
        """Through the proxy, chat-go serves the bot API and chat-web-go the web API; the
        certificate verifies against emu.ca_file and not against the system's roots."""
        async with Emulator(proxy=True) as emu, aiohttp.ClientSession() as session:
            trusted = ssl.create_default_context(cafile=emu.ca_file)
            url = f"https://chat-go.jwzhd.com/open-apis/v1/bot/send?token={emu.token}"
            body = {"recvId": "1", "recvType": "user", "contentType": "text",
                    "content": {"text": "via proxy"}}
            async with session.post(url, json=body, proxy=emu.proxy_url, ssl=trusted) as resp:
                assert (await resp.json())["code"] == 1
            info = "https://chat-web-go.jwzhd.com/v1/bot/bot-info"
            async with session.post(info, json={"botId": emu.bot_id}, proxy=emu.proxy_url,
                                    ssl=trusted) as resp:
                assert (await resp.json())["data"]["bot"]["botId"] == emu.bot_id
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(url, json=body, proxy=emu.proxy_url)
            assert [m.text for m in emu.chat("user", "1")] == ["via proxy"]


class TestLifecycle:
    async def test_env_names_the_proxy_and_the_ca_and_restart_keeps_them(self) -> None:
        """proxy_env gives HTTPS_PROXY and SSL_CERT_FILE (and REQUESTS_CA_BUNDLE, NO_PROXY);
        a restart keeps the ports and the CA; close removes the CA file."""
        emu = Emulator(proxy=True)
        with pytest.raises(RuntimeError, match="proxy_env"):
            _ = emu.proxy_env
        await emu.start()
        try:
            env = emu.proxy_env
            assert env["HTTPS_PROXY"] == emu.proxy_url and env["SSL_CERT_FILE"] == emu.ca_file
            assert env["REQUESTS_CA_BUNDLE"] == emu.ca_file and "127.0.0.1" in env["NO_PROXY"]
            pem = Path(env["SSL_CERT_FILE"]).read_text()
            await emu.restart()
            assert emu.proxy_url == env["HTTPS_PROXY"]
            assert Path(emu.ca_file or "").read_text() == pem
            assert (await connect_via(env["HTTPS_PROXY"], "chat-go.jwzhd.com:443")).startswith(
                b"HTTP/1.1 200")
        finally:
            await emu.close()
        assert not Path(env["SSL_CERT_FILE"]).exists()
        assert emu.proxy_url is None

    def test_without_trustme_the_error_names_the_extra(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """proxy=True without trustme installed says how to install it."""
        monkeypatch.setitem(sys.modules, "trustme", None)
        with pytest.raises(ImportError, match=r"yunhu-stream\[proxy\]"):
            Emulator(proxy=True)
