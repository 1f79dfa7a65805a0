"""The webhook against hostile bodies: malformed, deep, huge, compressed and mutated events."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests._paths import FIXTURES
from tests.app._webhook import GROUP, StartApp, body, echo, finished, post
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio


_DEEP = b'{"header": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
_GROUP_TEXT = json.loads((FIXTURES / "message_group_text.json").read_bytes())


def _mutated(path: str, value: object) -> bytes:
    data = json.loads(json.dumps(_GROUP_TEXT))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return json.dumps(data).encode()


class TestHostileBodies:
    @pytest.mark.parametrize(
        ("data", "error"),
        [
            (b"", "body: not valid JSON"),
            (b"not json at all", "body: not valid JSON"),
            (b"\xff\xfe\x00{", "body: not UTF-8"),
            (b"[1, 2, 3]", "body: expected a JSON object, got array"),
            (b"[" + body("message_group_text.json") + b"]", "body: expected a JSON object"),
            (b'"message.receive.normal"', "body: expected a JSON object, got string"),
            (b"{}", "header: missing"),
            (b'{"header": {"eventId": "x"}}', "header.eventType: missing"),
            (_DEEP, "body: JSON nested too deeply"),
            (_mutated("header.eventTime", "yesterday"), "header.eventTime: expected an integer"),
            (_mutated("event.sender", []), "event.sender: expected an object, got array"),
            (_mutated("event.chat.chatId", None), "event.chat.chatId: missing"),
            (_mutated("header.eventId", {"$ne": None}), "header.eventId: expected a string"),
        ],
    )
    async def test_bodies_that_are_not_events_get_400(
        self,
        start_app: StartApp,
        client: aiohttp.ClientSession,
        emulator: Emulator,
        data: bytes,
        error: str,
    ) -> None:
        """Non-JSON, non-UTF-8, non-object, deeply nested or mistyped bodies get a 400."""
        app, url = await start_app(echo)
        with capture_logs() as logs:
            status, answer = await post(client, url, data)
        assert status == 400
        assert answer["ok"] is False
        assert answer["error"].startswith(error)
        [line] = [e for e in logs if e["event"] == "webhook_rejected"]
        assert line["status"] == 400
        assert line["log_level"] == "warning"
        assert app.stats.rejected == 1
        # The app is unharmed: a real event still gets its reply.
        await post(client, url, body("message_group_text.json"))
        assert (await emulator.wait_for_message(GROUP, predicate=finished)).text == "echo: 早上好"

    async def test_declared_too_large_body_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A body whose Content-Length exceeds max_body_bytes gets 413."""
        app, url = await start_app(echo, max_body_bytes=4096)
        padded = json.loads(body("message_group_text.json"))
        padded["padding"] = "x" * 100_000
        status, answer = await post(client, url, json.dumps(padded).encode())
        assert status == 413
        assert answer == {"ok": False, "error": "body larger than 4096 bytes"}
        assert app.stats.rejected == 1

    async def test_chunked_endless_body_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A chunked body with no Content-Length is cut off once it passes the limit."""
        app, url = await start_app(echo, max_body_bytes=4096)

        async def endless() -> AsyncIterator[bytes]:
            yield b'{"header": "'
            for _ in range(64):
                yield b"x" * 16_384

        status, _ = await post(client, url, endless())
        assert status == 413
        assert app.stats.rejected == 1

    async def test_gzip_bomb_gets_413(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A small gzip body that inflates past the limit is refused, not inflated whole."""
        app, url = await start_app(echo, max_body_bytes=64 * 1024)
        bomb = gzip.compress(b'{"header": "' + b" " * 8_000_000 + b'"}')
        assert len(bomb) < 64 * 1024
        status, _ = await post(client, url, bomb, headers={"Content-Encoding": "gzip"})
        assert status == 413
        assert app.stats.rejected == 1

    async def test_corrupt_compressed_body_gets_400(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """A body that claims gzip but is not gzip gets a 400, not a server error."""
        app, url = await start_app(echo)
        status, answer = await post(
            client, url, b"definitely not gzip", headers={"Content-Encoding": "gzip"}
        )
        assert status == 400
        assert answer["error"].startswith("body could not be read")
        assert app.stats.rejected == 1

    async def test_only_post_is_served(
        self, start_app: StartApp, client: aiohttp.ClientSession
    ) -> None:
        """GET on the webhook path is 405."""
        _, url = await start_app(echo)
        async with client.get(url) as resp:
            assert resp.status == 405

    async def test_content_type_is_not_required(
        self, start_app: StartApp, client: aiohttp.ClientSession, emulator: Emulator
    ) -> None:
        """A real event is accepted whatever Content-Type header it carries."""
        _, url = await start_app(echo)
        status, _ = await post(
            client, url, body("message_group_text.json"), headers={"Content-Type": "text/plain"}
        )
        assert status == 200
        assert (await emulator.wait_for_message(GROUP, predicate=finished)).text
