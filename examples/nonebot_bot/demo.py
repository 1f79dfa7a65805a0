"""See the NoneBot2 example stream a reply, with no YunHu account: one command.

    python examples/nonebot_bot/demo.py ["your message"]

It starts yunhu-stream's emulator (a local YunHu API), runs ``bot.py`` against
it, POSTs one group message to the bot's webhook as YunHu would, prints the
reply's chunks as the emulator receives them, and stops the bot. Exit status 0
means the reply arrived in the group, streamed in more than one chunk.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp

from yunhu_stream.emulator import Emulator
from yunhu_stream.testing import message_event

HERE = Path(__file__).resolve().parent
APP_ID = "12345678"
GROUP = "307149245"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(text: str) -> int:
    async with Emulator() as emu:
        port = free_port()
        env = {
            **os.environ,
            "YUNHU_EMULATOR": "1",  # bot.py registers EmulatorAdapter
            "PORT": str(port),
            "YUNHU_STREAM_BASE_URL": emu.base_url,
            "YUNHU_BOTS": json.dumps([{"app_id": APP_ID, "token": emu.token}]),
        }
        bot = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "bot.py"), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        log: list[str] = []
        ready = asyncio.Event()

        async def read_bot_output() -> None:
            assert bot.stdout is not None
            async for line in bot.stdout:
                log.append(line.decode("utf-8", "replace").rstrip())
                if "Uvicorn running on" in log[-1]:
                    ready.set()
            ready.set()

        reader = asyncio.create_task(read_bot_output())
        try:
            await asyncio.wait_for(ready.wait(), 60)
            if bot.returncode is not None:
                raise RuntimeError("the bot exited")
            url = f"http://127.0.0.1:{port}/yunhu/{APP_ID}"
            print(f"bot listening at {url}; sending {text!r} to group {GROUP}")
            async with aiohttp.ClientSession() as session, \
                    session.post(url, json=message_event(text, chat=f"group:{GROUP}")) as resp:
                resp.raise_for_status()

            record = await emu.wait_for_stream()
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            seen = 0
            while True:
                await emu.wait_until(lambda n=seen: len(record.chunks) > n or record.done,
                                     what="the next chunk")
                for chunk in record.chunks[seen:]:
                    at_ms = (chunk.t - record.started) * 1000
                    print(f"  +{at_ms:6.0f} ms  {decoder.decode(chunk.data)!r}")
                seen = len(record.chunks)
                if record.done and seen == len(record.chunks):
                    break
            message = emu.chat("group", GROUP)[-1]
            print(f"group {GROUP} now shows: {message.text}")
            ok = record.completed and len(record.chunks) > 1 and message.text == record.text
            print("streamed in", len(record.chunks), "chunks" if ok else "chunks: FAILED")
            return 0 if ok else 1
        except BaseException:
            print("\n".join(log), file=sys.stderr)
            raise
        finally:
            if bot.returncode is None:
                bot.terminate()
            await bot.wait()
            await reader


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "你好")))
