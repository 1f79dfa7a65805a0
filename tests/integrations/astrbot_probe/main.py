"""The tests' AstrBot plugin: reports each event it sees, and answers probe commands.

Every event is printed as one ``PROBE {json}`` line (what AstrBot's pipeline saw); the
commands stream or send chosen message chains, so that the tests can check what the
adapter makes of each kind of component:

``/stream_chain KIND``  stream the chains of CHAINS[KIND] (see below)
``/burst N``            send N whole messages one after another
``get_weather``         an LLM tool (for the agent loop's ``break``)
"""

import base64
import json
import os

import astrbot.api.message_components as Comp
from astrbot.api.event import (
    AstrMessageEvent,
    MessageChain,
    MessageEventResult,
    ResultContentType,
    filter,
)
from astrbot.api.star import Context, Star

BUTTONS = [[{"text": "再来一次", "actionType": 3, "value": "again"}]]
FRIEND_ID = "5546917"
# A 1x1 PNG, written to disk for the image chain.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _component(comp):
    data = {"type": type(comp).__name__}
    fields = ("text", "qq", "name", "sender_id", "message_str", "url", "file")
    if isinstance(comp, Comp.Reply):
        fields = ("id", *fields)  # other components' ids are AstrBot's defaults
    for field in fields:
        value = getattr(comp, field, None)
        if value not in (None, "", 0):
            data[field] = str(value)
    return data


def _describe(event):
    obj = event.message_obj
    return {
        "platform": event.get_platform_name(),
        "platform_id": event.get_platform_id(),
        "streaming": event.platform_meta.support_streaming_message,
        "type": obj.type.value,
        "session_id": event.session_id,
        "group_id": obj.group_id,
        "sender": obj.sender.user_id,
        "nickname": obj.sender.nickname,
        "self_id": obj.self_id,
        "message_id": obj.message_id,
        "message_str": event.message_str,
        "components": [_component(c) for c in obj.message],
        "woken": event.is_at_or_wake_command,
        "yunhu_event_type": event.get_extra("yunhu_event_type"),
    }


def _image(event):
    path = os.path.join(os.getcwd(), "data", "temp", "pixel.png")
    with open(path, "wb") as f:
        f.write(PIXEL)
    return Comp.Image.fromFileSystem(path)


CHAINS = {
    "mention": lambda e: [[Comp.At(qq=e.get_sender_id(), name=e.get_sender_name())],
                          [Comp.Plain(" 你好，")], [Comp.Plain("这是点你名的回答。")]],
    "late_mention": lambda e: [[Comp.Plain("先说一句，")],
                               [Comp.At(qq=FRIEND_ID, name="小红"), Comp.Plain(" 请看。")]],
    "quote": lambda e: [[Comp.Reply(id=e.message_obj.message_id)],
                        [Comp.Plain("引用你的")], [Comp.Plain("回答。")]],
    "buttons": lambda e: [[Comp.Plain("带按钮的")], [Comp.Plain("回答。")]],
    "break": lambda e: [[Comp.Plain("第一条，")], [Comp.Plain("还是第一条。")], "break",
                        [Comp.Plain("第二条。")]],
    "image": lambda e: [[Comp.Plain("看图：")], [_image(e)], [Comp.Plain("图后的文字。")]],
    "file": lambda e: [[Comp.File(name="notes.txt", file=_image(e).path)]],
}


class Probe(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.event_message_type(filter.EventMessageType.ALL, priority=100)
    async def report(self, event: AstrMessageEvent):
        print("PROBE " + json.dumps(_describe(event), ensure_ascii=False), flush=True)

    @filter.command("stream_chain")
    async def stream_chain(self, event: AstrMessageEvent, kind: str):
        if kind == "buttons":
            event.set_buttons(BUTTONS)
        chains = CHAINS[kind](event)

        async def deltas():
            for parts in chains:
                yield MessageChain(type="break") if parts == "break" else MessageChain(parts)

        yield (MessageEventResult().set_async_stream(deltas())
               .set_result_content_type(ResultContentType.STREAMING_RESULT))

    @filter.command("burst")
    async def burst(self, event: AstrMessageEvent, count: int):
        for i in range(count):
            await event.send(MessageChain().message(f"第 {i} 条"))
        event.stop_event()

    @filter.llm_tool(name="get_weather")
    async def get_weather(self, event: AstrMessageEvent, city: str):
        """Look up today's weather of a city.

        Args:
            city(string): the city's name
        """
        return f"{city}：晴，25 度"
