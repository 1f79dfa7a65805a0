"""``yunhu-stream send --wschat`` and ``yunhu-stream wschat-server``, run for real."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import pytest

from tests.cli.test_cli import WAIT, cli_env, finish, spawn, write
from tests.wschat.conftest import Raw, frames_until, is_final
from yunhu_stream.wschat import WsChat, WsChatServer, WsMessage

pytestmark = pytest.mark.anyio


def wschat_args(server: WsChatServer, *extra: str, to: str = "user:bob") -> list[str]:
    return ["send", "--wschat", server.url, "--to", to, "--app-key", "demo-key",
            "--app-secret", "demo-secret", "--user-id", "bot", *extra]


class TestSendToAWebSocketChat:
    async def test_lines_arrive_as_stream_frames_then_the_whole_text(
        self, server: WsChatServer, raw: Raw
    ) -> None:
        bob = await raw("bob")
        proc = await spawn(*wschat_args(server), env=cli_env())
        await write(proc, "第一行\n".encode())
        first = (await asyncio.wait_for(frames_until(bob, lambda f: True), WAIT))[0]
        assert (first["msgType"], first["msg"]["content"]) == ("stream", "第一行\n")
        await write(proc, b"second line\n")
        result = await finish(proc)
        assert result.rc == 0, result.stderr
        final = (await frames_until(bob, is_final))[-1]
        assert final["msg"]["content"] == "第一行\nsecond line\n"
        assert final["source"] == "bot"
        printed = json.loads(result.stdout)
        assert printed["msgId"] == final["msg"]["msgId"] and printed["recvId"] == "bob"
        assert "demo-secret" not in result.stderr

    async def test_a_token_from_the_environment_works(
        self, server: WsChatServer, raw: Raw
    ) -> None:
        bob = await raw("bob")
        env = {**cli_env(), "YUNHU_WSCHAT_TOKEN": server.issue_token("bot")}
        result = await finish(await spawn("send", "--wschat", server.url, "--to", "user:bob",
                                          env=env), b"hi\n")
        assert result.rc == 0, result.stderr
        assert (await frames_until(bob, is_final))[-1]["msg"]["content"] == "hi\n"

    async def test_no_token_exits_3_and_says_where_one_comes_from(
        self, server: WsChatServer
    ) -> None:
        result = await finish(await spawn("send", "--wschat", server.url, "--to", "user:b",
                                          env=cli_env()), b"hi\n")
        assert result.rc == 3
        assert "YUNHU_WSCHAT_TOKEN" in result.stderr

    async def test_a_wrong_secret_exits_4_without_showing_it(self, server: WsChatServer) -> None:
        args = wschat_args(server)
        args[args.index("demo-secret")] = "wrong-secret-42"
        result = await finish(await spawn(*args, env=cli_env()), b"hi\n")
        assert result.rc == 4, result.stderr
        assert "wrong-secret-42" not in result.stderr + result.stdout


class TestWsChatServerCommand:
    async def test_it_serves_until_ctrl_c(self) -> None:
        proc = await spawn("wschat-server", "--port", "0", env=cli_env())
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        base = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert base, line
        token = await WsChat.fetch_token(base.group(0), app_key="demo-key",
                                         app_secret="demo-secret", user_id="a")
        url = base.group(0).replace("http://", "ws://") + "/chat"
        async with WsChat(url, token=token) as a:
            info = await a.send("user:a", "to myself")  # acked by the server
            assert info.msg_id
            events = a.events()
            got = asyncio.ensure_future(anext(events))
            await asyncio.sleep(0)
            b_token = await WsChat.fetch_token(base.group(0), app_key="demo-key",
                                               app_secret="demo-secret", user_id="b")
            async with WsChat(url, token=b_token) as b:
                await b.send("user:a", "hello a")
                message = await asyncio.wait_for(got, WAIT)
                assert isinstance(message, WsMessage) and message.source == "b"
        proc.send_signal(signal.SIGINT)
        result = await finish(proc)
        assert result.rc == 0
        assert "wschat server stopped" in result.stdout
