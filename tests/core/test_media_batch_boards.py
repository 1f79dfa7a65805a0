"""The Bot's batch send, uploads, media sends by key, boards and flat button lists, against
the emulator; bad input and refusals are typed errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
MiB = 1024 * 1024


class TestUploadsAndMediaSends:
    async def test_path_bytes_and_file_object_give_keys_a_send_can_carry(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Each source kind uploads; the key sends the media; the emulator holds the bytes."""
        path = tmp_path / "pic.png"
        path.write_bytes(PNG)
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            image = await bot.upload_image(path)
            video = await bot.upload_video(b"\x00\x00\x00\x18ftypmp42" + bytes(8))
            file = await bot.upload_file(io.BytesIO(b"notes"))
            sent = [await bot.send("user:1", key, content_type=kind)
                    for kind, key in (("image", image), ("video", video), ("file", file))]
        assert [(u.kind, u.filename) for u in (emulator.uploads[k] for k in (image, video, file))
                ] == [("image", "pic.png"), ("video", "video.bin"), ("file", "file.bin")]
        assert emulator.uploads[image].data == PNG
        messages = emulator.chat("user", "1")
        assert [m.msg_id for m in messages] == [info.msg_id for info in sent]
        assert [m.content_type for m in messages] == ["image", "video", "file"]
        assert messages[0]["content"]["imageKey"] == image

    async def test_over_the_limit_or_empty_is_refused_before_any_request(
        self, emulator: Emulator
    ) -> None:
        """An image over 10 MB, an empty file or a text stream are ConfigurationErrors."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            with pytest.raises(errors.ConfigurationError, match="10 MB"):
                await bot.upload_image(b"x" * (10 * MiB + 1))
            with pytest.raises(errors.ConfigurationError, match="empty"):
                await bot.upload_file(b"")
            with pytest.raises(errors.ConfigurationError, match="binary mode"):
                await bot.upload_file(io.StringIO("text"))
            with pytest.raises(errors.ConfigurationError, match="path, bytes"):
                await bot.upload_video(42)  # type: ignore[arg-type]
        assert emulator.requests == []

    async def test_an_unknown_key_is_an_api_error_in_strict_mode(self) -> None:
        """YunHu's -1 for media it cannot fetch arrives as APIError with its code."""
        async with Emulator(strict=True) as emu, Bot(emu.token, base_url=emu.base_url) as bot:
            emu.add_user("1")
            with pytest.raises(errors.APIError) as caught:
                await bot.send("user:1", "no-such-key", content_type="image")
        assert caught.value.code == -1


class TestBatchSend:
    async def test_one_message_per_chat_and_their_infos(self, emulator: Emulator) -> None:
        """batch_send returns the created messages, in the order of successList."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            infos = await bot.batch_send(["1", "2"], "**hi**", content_type="markdown",
                                         buttons=[{"text": "ok", "actionType": 2, "value": "v"}])
        assert [(i.recv_id, i.recv_type) for i in infos] == [("1", "user"), ("2", "user")]
        for info in infos:
            [message] = emulator.chat("user", info.recv_id)
            assert (message.msg_id, message.text) == (info.msg_id, "**hi**")
            assert message.buttons == [[{"text": "ok", "actionType": 2, "value": "v"}]]

    async def test_users_who_did_not_add_the_bot_are_left_out(self) -> None:
        """In strict mode only the reachable chats come back."""
        async with Emulator(strict=True) as emu, Bot(emu.token, base_url=emu.base_url) as bot:
            emu.add_user("fan")
            infos = await bot.batch_send(["fan", "stranger"], "hi")
        assert [i.recv_id for i in infos] == ["fan"]

    @pytest.mark.parametrize("to", [[], "1", ["1", ""], None])
    async def test_bad_targets_are_configuration_errors(
        self, emulator: Emulator, to: object
    ) -> None:
        """to must be a non-empty list of ids."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            with pytest.raises(errors.ConfigurationError):
                await bot.batch_send(to, "hi")  # type: ignore[arg-type]


class TestBoardsAndButtons:
    async def test_chat_member_and_everyone_boards_then_dismissed(
        self, emulator: Emulator
    ) -> None:
        """set_board for a chat, one member and everyone; dismiss_board removes them."""
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.set_board("group:g", "chat board", content_type="markdown")
            await bot.set_board("group:g", "yours", member="u1", expire_at=4102444800)
            await bot.set_board(None, "for all")
            assert emulator.board("group:g", "u1").content == "yours"  # type: ignore[union-attr]
            assert emulator.board("group:g", "u2").content == "chat board"  # type: ignore[union-attr]
            await bot.dismiss_board("group:g", member="u1")
            await bot.dismiss_board(None)
            with pytest.raises(errors.ConfigurationError, match="member needs a chat"):
                await bot.set_board(None, "x", member="u1")
        assert [(b.scope, b.content) for b in emulator.boards] == [("chat", "chat board")]

    async def test_buttons_may_be_a_flat_list(self, emulator: Emulator) -> None:
        """A flat list of buttons is sent as one row, as YunHu accepts both shapes."""
        row = [{"text": "a", "actionType": 3, "value": "a"},
               {"text": "b", "actionType": 3, "value": "b"}]
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.send("group:g", "pick", buttons=row)
        assert emulator.chat("group", "g")[0].buttons == [row]
