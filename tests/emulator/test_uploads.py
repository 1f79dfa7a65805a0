"""``image/upload``, ``video/upload`` and ``file/upload``: multipart in, a key out, and a
later ``bot/send`` of that content type that carries the key."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest

from tests.emulator._http import get_messages, post_json
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
MiB = 1024 * 1024
KINDS = [("image", "imageKey", 10 * MiB), ("video", "videoKey", 20 * MiB),
         ("file", "fileKey", 20 * MiB)]


async def upload(session: aiohttp.ClientSession, emu: Emulator, kind: str, data: bytes,
                 *, field: str | None = None, filename: str = "a.bin") -> dict[str, Any]:
    form = aiohttp.FormData()
    # a file object: aiohttp's FormData refuses large bytes values
    form.add_field(field or kind, io.BytesIO(data), filename=filename,
                   content_type="application/x-test")
    async with session.post(f"{emu.base_url}/{kind}/upload?token={emu.token}",
                            data=form) as resp:
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


class TestUpload:
    @pytest.mark.parametrize(("kind", "key_field", "_limit"), KINDS)
    async def test_key_is_answered_and_the_bytes_are_kept(
        self, emu: Emulator, session: aiohttp.ClientSession, kind: str, key_field: str,
        _limit: int,
    ) -> None:
        """The answer is ``data.{imageKey|videoKey|fileKey}``; emu.uploads holds the bytes."""
        answer = await upload(session, emu, kind, PNG, filename="pic.png")
        assert answer["code"] == 1 and set(answer["data"]) == {key_field}
        stored = emu.uploads[answer["data"][key_field]]
        assert (stored.kind, stored.data, stored.filename, stored.mime) == (
            kind, PNG, "pic.png", "application/x-test")

    @pytest.mark.parametrize(("kind", "_key_field", "limit"), KINDS)
    async def test_the_documented_limit_holds_and_one_byte_more_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession, kind: str, _key_field: str,
        limit: int,
    ) -> None:
        """Exactly the limit (10 MB image, 20 MB video and file) is accepted, one byte more
        is answered 1002 naming the limit, and nothing is stored."""
        assert (await upload(session, emu, kind, b"x" * limit))["code"] == 1
        over = await upload(session, emu, kind, b"x" * (limit + 1))
        assert over["code"] == 1002 and f"{limit // MiB}MB" in over["msg"]
        assert len(emu.uploads) == 1

    async def test_wrong_field_empty_file_or_not_multipart_is_1002(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """The part must be named after the kind, hold bytes, and come as multipart."""
        assert (await upload(session, emu, "image", PNG, field="file"))["code"] == 1002
        assert (await upload(session, emu, "image", b""))["code"] == 1002
        answer = await post_json(session, emu, "image/upload", {"image": "x"})
        assert answer["code"] == 1002 and "multipart" in answer["msg"]
        assert emu.uploads == {}

    async def test_the_token_is_checked(
        self, emu: Emulator, session: aiohttp.ClientSession
    ) -> None:
        """An upload without the token is 1003 and stores nothing."""
        form = aiohttp.FormData()
        form.add_field("image", PNG, filename="a.png")
        async with session.post(f"{emu.base_url}/image/upload?token=no", data=form) as resp:
            assert (await resp.json())["code"] == 1003
        assert emu.uploads == {}


class TestSendByKey:
    @pytest.mark.parametrize(("kind", "key_field", "_limit"), KINDS)
    async def test_a_send_carries_the_key_and_the_list_shows_the_media(
        self, emu: Emulator, session: aiohttp.ClientSession, kind: str, key_field: str,
        _limit: int,
    ) -> None:
        """``bot/send`` with ``content: {KEY: key}`` shows the upload; the message list item
        carries the key and a URL where the emulator serves the bytes."""
        key = (await upload(session, emu, kind, PNG, filename="x.png"))["data"][key_field]
        answer = await post_json(session, emu, "send", {
            "recvId": "1", "recvType": "user", "contentType": kind, "content": {key_field: key}})
        assert answer["code"] == 1
        [item] = (await get_messages(session, emu, **{"chat-id": "1", "chat-type": "user",
                                                       "before": "1"}))["data"]["list"]
        assert item["contentType"] == kind and item["content"][key_field] == key
        url = item["content"][f"{kind}Url"]
        async with session.get(url) as resp:
            assert (resp.status, await resp.read()) == (200, PNG)

    async def test_an_unknown_key_is_refused_only_in_strict_mode(
        self, session: aiohttp.ClientSession
    ) -> None:
        """In strict mode a key never uploaded is -1 "图片获取失败"; else it is kept as given."""
        send = {"recvId": "1", "recvType": "user", "contentType": "image",
                "content": {"imageKey": "never-uploaded"}}
        async with Emulator() as emu:
            assert (await post_json(session, emu, "send", send))["code"] == 1
            assert emu.chat("user", "1")[0]["content"] == {"imageKey": "never-uploaded"}
        async with Emulator(strict=True) as emu:
            emu.add_user("1")
            answer = await post_json(session, emu, "send", send)
            assert answer["code"] == -1 and answer["msg"].startswith("图片获取失败")

    async def test_a_key_of_another_kind_is_not_that_media(
        self, session: aiohttp.ClientSession
    ) -> None:
        """An image key sent as a file is not the file (strict mode refuses it)."""
        async with Emulator(strict=True) as emu:
            emu.add_user("1")
            key = (await upload(session, emu, "image", PNG))["data"]["imageKey"]
            answer = await post_json(session, emu, "send", {
                "recvId": "1", "recvType": "user", "contentType": "file",
                "content": {"fileKey": key}})
            assert answer["code"] == -1
