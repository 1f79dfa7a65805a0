"""Mentions: the @Name + U+200B text and the at list, built together and delivered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunhu_stream import Bot
from yunhu_stream.emulator import Emulator
from yunhu_stream.mentions import ZWSP, Mentions, mention, strip_mentions

pytestmark = pytest.mark.anyio


class TestBuilding:
    def test_one_mention(self) -> None:
        """mention() writes @Name + U+200B and lists the id."""
        m = mention("小明", "7756242")
        assert m.text == "@小明\u200b"
        assert m.at == ["7756242"]
        assert str(m) == m.text

    def test_integer_ids_become_strings(self) -> None:
        """A numeric user id is accepted and written as a string."""
        assert mention("Bob", 42).at == ["42"]

    def test_text_and_mentions_combine_in_any_order(self) -> None:
        """str + Mentions, Mentions + str and Mentions + Mentions keep text order and ids."""
        m = "Hi " + mention("Alice", "1") + " and " + mention("Bob", "2") + ", welcome!"
        assert isinstance(m, Mentions)
        assert m.text == f"Hi @Alice{ZWSP} and @Bob{ZWSP}, welcome!"
        assert m.at == ["1", "2"]

    def test_repeated_mentions_list_the_id_once(self) -> None:
        """Mentioning the same user twice writes two mentions but one at entry."""
        m = mention("A", "1") + mention("B", "2") + mention("A", "1")
        assert m.text.count("@A\u200b") == 2
        assert m.at == ["1", "2"]

    def test_at_is_a_fresh_list(self) -> None:
        """Changing the returned at list does not change the Mentions."""
        m = mention("A", "1")
        m.at.append("x")
        assert m.at == ["1"]

    def test_empty_mentions(self) -> None:
        """Mentions() is empty text with no ids and can start a sum."""
        assert Mentions() + "plain" == Mentions("plain", ())

    @pytest.mark.parametrize(
        ("name", "user_id", "error", "match"),
        [
            ("", "1", ValueError, "must not be empty"),
            ("  ", "1", ValueError, "must not be empty"),
            ("@Bob", "1", ValueError, "must not start with '@'"),
            ("Bo\u200bb", "1", ValueError, "U\\+200B"),
            ("Bo\nb", "1", ValueError, "line break"),
            (None, "1", TypeError, "name must be str"),
            ("Bob", "", ValueError, "non-empty string without spaces"),
            ("Bob", "1 2", ValueError, "non-empty string without spaces"),
            ("Bob", None, TypeError, "user id must be str or int"),
            ("Bob", True, TypeError, "user id must be str or int"),
            ("Bob", 1.5, TypeError, "user id must be str or int"),
        ],
    )
    def test_bad_input_is_refused(
        self, name: object, user_id: object, error: type[Exception], match: str
    ) -> None:
        """Bad names and ids raise errors saying what is accepted."""
        with pytest.raises(error, match=match):
            mention(name, user_id)  # type: ignore[arg-type]

    def test_adding_other_types_is_a_type_error(self) -> None:
        """Only str and Mentions can be added."""
        with pytest.raises(TypeError):
            _ = mention("A", "1") + 5  # type: ignore[operator]
        with pytest.raises(TypeError):
            _ = 5 + mention("A", "1")  # type: ignore[operator]

    def test_direct_construction_validates(self) -> None:
        """Mentions(text, user_ids) checks the types it is given."""
        with pytest.raises(TypeError, match="tuple"):
            Mentions("x", ["1"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="without spaces"):
            Mentions("x", ("",))


class TestStripping:
    def test_strips_a_leading_bot_mention(self) -> None:
        """The @Bot mention a group message starts with is removed."""
        assert strip_mentions("@流式助手\u200b 总结一下今天的讨论") == "总结一下今天的讨论"

    def test_strips_every_mention(self) -> None:
        """Mentions anywhere in the text are removed."""
        assert strip_mentions("hi @A\u200b and @B C\u200bthere") == "hi and there"

    def test_text_without_mentions_is_only_trimmed(self) -> None:
        """A plain @ without U+200B is not a mention and stays."""
        assert strip_mentions("  mail me @ home  ") == "mail me @ home"

    def test_refuses_non_strings(self) -> None:
        """strip_mentions takes str only."""
        with pytest.raises(TypeError, match="takes a str"):
            strip_mentions(b"@A")  # type: ignore[arg-type]

    @given(
        name=st.text(min_size=1, max_size=20).filter(
            lambda s: s.strip() and not s.startswith("@") and not set(s) & {"\u200b", "\r", "\n"}
        ),
        rest=st.text(max_size=40).filter(lambda s: "\u200b" not in s),
    )
    def test_strip_undoes_a_leading_mention(self, name: str, rest: str) -> None:
        """strip_mentions(mention + " " + text) is the text, trimmed."""
        assert strip_mentions((mention(name, "1") + " " + rest).text) == rest.strip()


class TestDelivery:
    async def test_send_carries_text_and_at(self, emulator: Emulator) -> None:
        """bot.send(to, m.text, at=m.at) stores the mention text and the at list."""
        m = mention("小明", "7756242") + " 你的报告好了"
        async with Bot(emulator.token, base_url=emulator.base_url) as bot:
            await bot.send("group:307149245", m.text, at=m.at)
        [message] = emulator.chat("group", "307149245")
        assert message.text == "@小明\u200b 你的报告好了"
        assert message.at == ["7756242"]

    async def test_stream_attaches_at_when_it_ends(self, emulator: Emulator) -> None:
        """A streamed message gets the at list from the edit that closes it."""
        m = mention("小明", "7756242") + " 这是流式回答"
        async with (
            Bot(emulator.token, base_url=emulator.base_url) as bot,
            bot.stream("group:307149245", at=m.at) as s,
        ):
            await s.write(m.text)
            await s.write("，第二段。")
        [message] = emulator.chat("group", "307149245")
        assert message.streamed
        assert message.text == "@小明\u200b 这是流式回答，第二段。"
        assert message.at == ["7756242"]
