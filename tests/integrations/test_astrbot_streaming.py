"""The AstrBot adapter, answering: AstrBot's streamed replies as YunHu messages, for real.

AstrBot 4.14.6 runs as a child process (tests/integrations/_astrbot.py). Its LLM stage
talks to the fake LLM (streaming on, a weather tool for the agent loop); the probe
plugin's ``/stream_chain KIND`` streams chosen message chains. ``reply_with_mention``
is on, so replies in groups start by mentioning the sender.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import pytest

from tests import _browser as browser
from tests._browser import save_screenshot, wait_for_js
from tests.core.test_markdown_rollover import open_fence_at_end
from tests.integrations._astrbot import (
    BOT_ID,
    AstrBot,
    last_user_text,
    require_astrbot,
    running_astrbot,
)
from tests.integrations._frameworks import new_id
from yunhu_stream.emulator import StoredMessage, StreamRecord
from yunhu_stream.fake_llm import ToolCall
from yunhu_stream.mentions import ZWSP, mention
from yunhu_stream.testing import message_event

pytestmark = pytest.mark.anyio

require_astrbot()

ANSWER = "这是一个流式的回答，一个字一个字地出现在聊天里。"
WEATHER_FIRST, WEATHER_AFTER = "我查一下天气。", "北京今天晴，25 度。"
LONG = ("\n\n".join(f"第 {i} 段：" + "长回答的内容会越过一条消息的上限，" * 3 for i in range(3))
        + "\n\n```python\n" + "".join(f"print('第 {i} 行')\n" for i in range(30)) + "```\n\n"
        + "代码之后的结语。")
ROLLOVER = 256
BUTTONS = [[{"text": "再来一次", "actionType": 3, "value": "again"}]]
FRIEND_ID = "5546917"  # mentioned by the probe's late_mention chain
chromium_driver = browser.chromium_driver  # the shared fixture, made visible here

# The live page's hooks (emulator/static/app.js): article.message[data-msg-id] with
# data-streaming, and its .message-body.
PAGE_MESSAGE_JS = """const el = document.querySelector(
  'article.message[data-msg-id="' + arguments[0] + '"]');
if (!el) return null;
const m = {text: el.querySelector('.message-body').textContent, streaming: el.dataset.streaming};
return (%s) ? m : null;"""


def answer(messages: list[dict[str, Any]]) -> str | ToolCall:
    """The fake LLM: an agent step with a tool call for weather, a long text, or ANSWER."""
    if messages[-1].get("role") == "tool":
        return WEATHER_AFTER
    prompt = last_user_text(messages)
    if "天气" in prompt:
        return ToolCall("get_weather", {"city": "北京"}, text=WEATHER_FIRST)
    return LONG if "长文" in prompt else ANSWER


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def astrbot(anyio_backend: str, tmp_path_factory: pytest.TempPathFactory,
                  ) -> AsyncIterator[AstrBot]:
    async with running_astrbot(
        tmp_path_factory.mktemp("astrbot_streaming"), answer,
        platforms={"yunhu_long": {"yunhu_max_message_bytes": ROLLOVER}},
        config={"platform_settings": {"reply_with_mention": True}},
    ) as running:
        yield running


async def finished(astrbot: AstrBot, chat: str, count: int = 1, *,
                   last: Callable[[StoredMessage], bool] = lambda m: True,
                   ) -> list[StoredMessage]:
    """The chat's messages once ``count`` are there, none streaming, and the last one
    passes ``last`` (a closing edit comes after the stream ended: wait for what it adds)."""
    def check() -> list[StoredMessage] | None:
        messages = astrbot.emu.chat(chat)
        done = (len(messages) >= count and not any(m.streaming for m in messages)
                and last(messages[-1]))
        return messages if done else None
    return await astrbot.emu.wait_until(check, what=f"{count} finished messages in {chat}")


def streams_to(astrbot: AstrBot, user: str) -> list[StreamRecord]:
    return [r for r in astrbot.emu.streams if r.recv_id == user]


async def ask(astrbot: AstrBot, text: str, *, platform: str = "yunhu") -> str:
    """A private message from a new user; returns the user's chat."""
    user = new_id()
    await astrbot.send(message_event(text, chat=f"user:{user}"), platform=platform)
    return user


class TestLLMReplies:
    async def test_the_llm_answer_streams_into_one_message_while_it_is_written(
        self, astrbot: AstrBot
    ) -> None:
        """AstrBot's LLM stage streams the answer: one send-stream whose chunks arrive while
        the model still writes (the chat shows part of it, still streaming)."""
        user = await ask(astrbot, "讲点什么")
        partial = await astrbot.emu.wait_for_message(
            "user", user, lambda m: m.streaming and 0 < len(m.text) < len(ANSWER))
        assert ANSWER.startswith(partial.text)
        [message] = await finished(astrbot, f"user:{user}")
        assert message.streamed and message.text == ANSWER
        [record] = streams_to(astrbot, user)
        assert record.completed and record.code == 1 and record.content_type == "markdown"
        assert len(record.chunks) >= 3
        assert record.chunks[-1].t - record.chunks[0].t > 0

    async def test_an_agent_tool_call_splits_the_reply_into_two_messages(
        self, astrbot: AstrBot
    ) -> None:
        """The agent streams text, calls a tool (AstrBot yields a break), then streams the
        answer: two streamed messages, in order."""
        user = await ask(astrbot, "北京天气怎么样")
        first, second = await finished(astrbot, f"user:{user}", count=2)
        assert (first.text, second.text) == (WEATHER_FIRST, WEATHER_AFTER)
        assert first.streamed and second.streamed
        assert [r.completed for r in streams_to(astrbot, user)] == [True, True]
        tool_results = [m for r in astrbot.llm.requests for m in r["messages"]
                        if m.get("role") == "tool"]
        assert any("北京：晴" in str(m.get("content")) for m in tool_results)

    async def test_a_stream_cut_off_mid_answer_is_finished_by_edit(
        self, astrbot: AstrBot
    ) -> None:
        """The connection drops after a few characters; the adapter's Bot finds the partial
        message and completes it by edit: one message, the whole answer, no duplicate."""
        fault = astrbot.emu.faults.drop_after(9)  # three CJK characters in
        user = await ask(astrbot, "断线也要完整")
        await fault.wait_hit()
        [message] = await finished(astrbot, f"user:{user}", last=lambda m: m.text == ANSWER)
        assert message.edits >= 1
        assert streams_to(astrbot, user)[0].aborted
        await astrbot.child.wait_for_line(lambda line: "stream_recovering" in line,
                                          what="the recovery log event")

    async def test_a_long_answer_rolls_over_into_several_messages(
        self, astrbot: AstrBot
    ) -> None:
        """With yunhu_max_message_bytes set, a long answer continues in new messages, each
        within the limit; its code block is closed in each message and reopened in the next."""
        user = await ask(astrbot, "写一篇长文", platform="yunhu_long")
        await astrbot.emu.wait_until(
            lambda: bool(astrbot.emu.chat("user", user))
            and astrbot.emu.chat("user", user)[-1].text.endswith("代码之后的结语。")
            and not any(m.streaming for m in astrbot.emu.chat("user", user)),
            what="the whole long answer")
        messages = astrbot.emu.chat("user", user)
        assert len(messages) >= 4 and all(m.streamed for m in messages)
        assert all(len(m.text.encode()) <= ROLLOVER for m in messages)
        assert all(open_fence_at_end(m.text.encode()) is None for m in messages)
        reopened = [m.text for m in messages if m.text.startswith("```python\nprint(")]
        assert reopened  # a message that starts inside the code block reopens it
        shown = "".join(m.text for m in messages)
        assert all(f"print('第 {i} 行')" in shown for i in range(30))

    async def test_replies_in_groups_mention_the_sender_when_astrbot_is_set_to(
        self, astrbot: AstrBot
    ) -> None:
        """reply_with_mention (which AstrBot skips for streamed replies) is applied: the
        streamed reply starts with the sender's mention and carries their id in at."""
        group = new_id()
        body = message_event(mention("流式助手", BOT_ID).text + " 讲点什么",
                             chat=f"group:{group}", at=[BOT_ID], sender_nickname="小明")
        await astrbot.send(body)
        [message] = await finished(astrbot, f"group:{group}", last=lambda m: bool(m.at))
        assert message.text == f"@小明{ZWSP}\n{ANSWER}"
        assert message.at == [body["event"]["sender"]["senderId"]] and message.streamed


class TestChainsFromPlugins:
    async def test_a_mention_before_the_text_arrives_with_its_at_list(
        self, astrbot: AstrBot
    ) -> None:
        """An At in the streamed chain is written as @name + U+200B, its id in at."""
        user = await ask(astrbot, "/stream_chain mention")
        [message] = await finished(astrbot, f"user:{user}", last=lambda m: bool(m.at))
        assert message.text == f"@小明{ZWSP} 你好，这是点你名的回答。"
        assert message.at == [user] and message.streamed

    async def test_a_mention_after_text_started_still_gets_its_id(
        self, astrbot: AstrBot
    ) -> None:
        """An At arriving mid-message is written in place; its id rides the closing edit."""
        user = await ask(astrbot, "/stream_chain late_mention")
        [message] = await finished(astrbot, f"user:{user}", last=lambda m: bool(m.at))
        assert message.text == f"先说一句，@小红{ZWSP} 请看。"
        assert message.at == [FRIEND_ID]

    async def test_a_quote_in_the_answer_is_sent_whole_and_quoted(
        self, astrbot: AstrBot
    ) -> None:
        """YunHu cannot quote a streamed message: a Reply makes that part a bot/send
        with parentId, sent when it is complete."""
        user = new_id()
        body = message_event("/stream_chain quote", chat=f"user:{user}")
        await astrbot.send(body)
        [message] = await finished(astrbot, f"user:{user}")
        quoted = body["event"]["message"]["msgId"]
        assert (message.text, message.parent_id) == ("引用你的回答。", quoted)
        assert not message.streamed and streams_to(astrbot, user) == []

    async def test_an_image_in_the_answer_is_uploaded_and_sent(
        self, astrbot: AstrBot
    ) -> None:
        """An Image ends the streamed text, is uploaded with image/upload and sent as its
        own image message by key; the text after it streams in a new message."""
        user = await ask(astrbot, "/stream_chain image")
        messages = await finished(astrbot, f"user:{user}", 3, last=lambda m: "图后" in m.text)
        assert [m.content_type for m in messages] == ["markdown", "image", "markdown"]
        assert (messages[0].text, messages[2].text) == ("看图：", "图后的文字。")
        key = messages[1].extra["imageKey"]
        upload = astrbot.emu.uploads[key]
        assert upload.kind == "image" and upload.data.startswith(b"\x89PNG")

    async def test_buttons_go_on_the_last_message_after_the_stream(
        self, astrbot: AstrBot
    ) -> None:
        """Buttons a plugin set on the event arrive by one edit once the text has streamed."""
        user = await ask(astrbot, "/stream_chain buttons")
        [message] = await finished(astrbot, f"user:{user}", last=lambda m: bool(m.buttons))
        assert (message.text, message.buttons) == ("带按钮的回答。", BUTTONS)
        assert message.streamed and message.edits == 1

    async def test_a_break_from_a_plugin_starts_the_next_message(
        self, astrbot: AstrBot
    ) -> None:
        """A break chain ends the streamed message; the text after it is a second one."""
        user = await ask(astrbot, "/stream_chain break")
        first, second = await finished(astrbot, f"user:{user}", count=2)
        assert (first.text, second.text) == ("第一条，还是第一条。", "第二条。")
        assert len(streams_to(astrbot, user)) == 2

    async def test_whole_sends_share_the_platforms_rate_limiter(self, astrbot: AstrBot) -> None:
        """Twelve sends in a row stay under YunHu's 10 per second (the emulator enforces
        it): none is refused with 1007, all arrive in order."""
        user = await ask(astrbot, "/burst 12")
        messages = await finished(astrbot, f"user:{user}", count=12)
        assert [m.text for m in messages] == [f"第 {i} 条" for i in range(12)]
        assert astrbot.emu.rate_limited == 0


@pytest.mark.browser
class TestLivePage:
    async def test_the_reply_grows_on_the_emulators_live_page(
        self, astrbot: AstrBot, chromium_driver: Any
    ) -> None:
        """The emulator's page, open in Chromium, shows AstrBot's reply streaming (part of
        the text, marked streaming) and then complete."""
        driver = chromium_driver
        astrbot.llm.delay = 0.2  # a slow model: the page has seconds to show the partial text
        try:
            user = await ask(astrbot, "在页面上看")
            message = await astrbot.emu.wait_for_message("user", user)

            def load() -> None:
                driver.get("about:blank")
                driver.get(f"{astrbot.emu.url}#user:{user}")
                wait_for_js(driver, "return document.getElementById('status').dataset.state"
                                    " === 'open'")

            await anyio.to_thread.run_sync(load)

            def seen(condition: str) -> dict[str, str]:
                script = PAGE_MESSAGE_JS % condition
                return wait_for_js(driver, f"return (function() {{ {script} }}).apply(null, "
                                           f"[{message.msg_id!r}])")

            growing = await anyio.to_thread.run_sync(
                seen, f"m.streaming === 'true' && m.text.length > 0 "
                      f"&& m.text.length < {len(ANSWER)}")
            assert ANSWER.startswith(growing["text"])
            done = await anyio.to_thread.run_sync(seen, "m.streaming === 'false'")
            assert done["text"] == ANSWER
            save_screenshot(driver, "astrbot_reply_on_live_page")
        finally:
            astrbot.llm.delay = 0.02
