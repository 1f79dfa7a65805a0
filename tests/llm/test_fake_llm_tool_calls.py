"""The fake LLM calls tools the way OpenAI's API does, as agent loops (AstrBot's) expect."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from yunhu_stream.fake_llm import FakeLLM, ToolCall

pytestmark = pytest.mark.anyio

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}}]


def agent_answer(messages: list[dict[str, Any]]) -> str | ToolCall:
    """Call the tool first; answer in words once its result is among the messages."""
    if messages[-1]["role"] == "tool":
        return f"北京{messages[-1]['content']}。"
    return ToolCall("get_weather", {"city": "北京"}, text="我查一下。")


class TestToolCalls:
    async def test_streamed_call_is_assembled_by_the_openai_client(self) -> None:
        """Text deltas first, then one tool call the official client's stream state rebuilds."""
        async with FakeLLM(agent_answer) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-fake")
            stream = await client.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "天气？"}],
                tools=TOOLS, stream=True,  # type: ignore[arg-type]
            )
            state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
            text = []
            async for chunk in stream:
                state.handle_chunk(chunk)
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
            await client.close()
        choice = state.get_final_completion().choices[0]
        assert "".join(text) == "我查一下。" and len(text) > 1
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls or []
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "北京"}

    async def test_the_answer_after_the_tool_result_is_text(self) -> None:
        """A second request holding the tool's result gets the words (finish_reason stop)."""
        async with FakeLLM(agent_answer) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-fake")
            messages: list[Any] = [
                {"role": "user", "content": "天气？"},
                {"role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
            ]
            done = await client.chat.completions.create(model="fake-gpt", messages=messages)
            await client.close()
        assert done.choices[0].message.content == "北京晴。"
        assert done.choices[0].finish_reason == "stop"

    async def test_whole_completion_carries_the_call(self) -> None:
        """Without stream: true the call comes in message.tool_calls, content null."""
        async with FakeLLM(ToolCall("ping")) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-fake")
            done = await client.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": "x"}])
            await client.close()
        message = done.choices[0].message
        assert message.content is None and done.choices[0].finish_reason == "tool_calls"
        assert [c.function.name for c in message.tool_calls or []] == ["ping"]
