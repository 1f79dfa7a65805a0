"""Echo bot on the built-in webhook app: streams a reply to every message it receives.

Run it for real (point the bot's webhook URL at http://<host>:8080/yunhu)::

    YUNHU_TOKEN=... python examples/echo_bot.py --port 8080

Run it offline: ``--demo`` starts the YunHu emulator, posts one sample webhook event
to the bot, prints the streamed reply the emulator received, and exits::

    python examples/echo_bot.py --demo
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import logging

import aiohttp

from yunhu_stream import Bot
from yunhu_stream.app import BotApp
from yunhu_stream.events import FollowEvent, MessageEvent
from yunhu_stream.mentions import mention, strip_mentions
from yunhu_stream.testing import message_event

# A group message as YunHu would POST it (yunhu_stream.testing builds the envelope).
SAMPLE_EVENT = message_event(
    "@EchoBot\u200b streaming makes long answers feel fast",
    chat="group:307149245", sender_id="7756242", sender_nickname="小明",
    event_id="demo-0001", msg_id="demo-msg-0001",
)


def build_app(token: str | None = None, base_url: str | None = None) -> BotApp:
    """The bot: one handler per kind of event it answers."""
    app = BotApp(token, base_url=base_url)

    @app.on_message()
    async def echo(event: MessageEvent, bot: Bot) -> None:
        said = strip_mentions(event.text) or f"[{event.message.content_type}]"
        # In a group, address the sender; in a private chat there is no one else.
        greeting = mention(event.sender.nickname or event.sender.id, event.sender.id) + " "
        at = greeting.at if event.is_group else None
        async with bot.stream(to=event, at=at) as s:
            if event.is_group:
                await s.write(greeting.text)
            await s.write("you said: ")
            for word in said.split(" "):
                await s.write(word + " ")
                await asyncio.sleep(0.05)  # stand-in for a model producing tokens

    @app.on_command("help")
    async def help_(event: MessageEvent, bot: Bot) -> None:
        await bot.send(event, "Send me anything and I will stream it back.")

    @app.on_event("bot.followed")
    async def welcome(event: FollowEvent, bot: Bot) -> None:
        await bot.send(event, f"Thanks for following, {event.nickname or 'friend'}!")

    return app


async def demo() -> None:
    """Run the bot against the emulator, post one sample event, print the reply."""
    from yunhu_stream.emulator import Emulator

    async with Emulator() as emu:
        app = build_app(emu.token, emu.base_url)
        url = await app.start()
        try:
            async with aiohttp.ClientSession() as http, http.post(url, json=SAMPLE_EVENT) as resp:
                print(f"webhook {url} answered {resp.status}: {await resp.json()}")
            # Show the reply growing in the chat, chunk by chunk, as the emulator reads it.
            stream = await emu.wait_for_stream()
            print("the emulator receives: ", end="", flush=True)
            decoder = codecs.getincrementaldecoder("utf-8")()  # a chunk may split a character
            shown = 0

            def more_or_done() -> bool:
                return len(stream.chunks) > shown or stream.done

            while True:
                await emu.wait_until(more_or_done)
                for chunk in stream.chunks[shown:]:
                    print(f"[{decoder.decode(chunk.data)}]", end="", flush=True)
                shown = len(stream.chunks)
                if stream.done:
                    break
            print()
        finally:
            await app.stop()  # lets the handler finish (the closing edit adds the mention)
        [reply] = emu.chat("group", "307149245")
        print(f"final message in group 307149245: {reply.text!r}, at={reply.at}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run offline against the emulator")
    parser.add_argument("--host", default="0.0.0.0", help="address to serve on")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.demo:
        asyncio.run(demo())
    else:
        logging.basicConfig(level=logging.INFO)  # a deployment wants the library's events
        build_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
