"""``yunhu-stream emulator --proxy`` prints the HTTPS_PROXY and SSL_CERT_FILE values that
send a client with YunHu's fixed host to it, and serves through that proxy."""

from __future__ import annotations

import asyncio
import signal
import ssl

import aiohttp
import pytest

from tests.cli.test_cli import WAIT, cli_env, finish, spawn

pytestmark = pytest.mark.anyio


class TestEmulatorProxyCommand:
    async def test_prints_the_proxy_settings_and_serves_through_them(self) -> None:
        """The banner's HTTPS_PROXY/SSL_CERT_FILE work: a send to chat-go.jwzhd.com through
        them lands in the emulator, whose message list then shows it."""
        proc = await spawn("emulator", "--port", "0", "--token", "demo-token", "--proxy",
                           env=cli_env())
        assert proc.stdout is not None
        banner: list[str] = []
        while not any("Ctrl-C" in line for line in banner):
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line, "the emulator exited early"
            banner.append(line.decode())
        export = next(line for line in banner if "HTTPS_PROXY=" in line).split()
        settings = dict(word.split("=", 1) for word in export if "=" in word)
        trusted = ssl.create_default_context(cafile=settings["SSL_CERT_FILE"])
        api = "https://chat-go.jwzhd.com/open-apis/v1/bot"
        async with aiohttp.ClientSession() as session:
            body = {"recvId": "1", "recvType": "group", "contentType": "text",
                    "content": {"text": "via the proxy"}}
            async with session.post(f"{api}/send?token=demo-token", json=body,
                                    proxy=settings["HTTPS_PROXY"], ssl=trusted) as resp:
                assert (await resp.json())["code"] == 1
            query = {"token": "demo-token", "chat-id": "1", "chat-type": "group", "before": "1"}
            async with session.get(f"{api}/messages", params=query,
                                   proxy=settings["HTTPS_PROXY"], ssl=trusted) as resp:
                [item] = (await resp.json())["data"]["list"]
        assert item["content"]["text"] == "via the proxy"
        proc.send_signal(signal.SIGINT)
        result = await finish(proc)
        assert result.rc == 0, result.stderr
