"""See AstrBot stream an LLM reply into YunHu, with no YunHu account and no model: one command.

    make astrbot-demo                                   # or:
    .venv/bin/python examples/astrbot_demo/demo.py ["your message"] [--serve]

It starts yunhu-stream's emulator (a local YunHu API with a live page) and the fake
OpenAI-compatible LLM, prepares an AstrBot root with the plugin from
``examples/astrbot_plugin/`` (one ``yunhu_stream`` platform pointed at the emulator,
the fake LLM as the chat provider, streaming on), runs a real AstrBot from
``.venv-astrbot`` (``make astrbot-env``) and POSTs one private message to the
adapter's webhook, as YunHu would. The reply's chunks are printed as the emulator
receives them; open the live page it prints to watch the message grow.

``--serve`` keeps everything running afterwards (Ctrl-C stops it), so you can post more
webhook bodies or look at the page. Exit status 0 means the reply arrived, streamed
in more than one chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import aiohttp

from yunhu_stream.emulator import Emulator
from yunhu_stream.fake_llm import FakeLLM
from yunhu_stream.integrations.astrbot_emulator import READY_MARKER, prepare_root
from yunhu_stream.testing import message_event

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ASTRBOT_PYTHON = Path(os.environ.get("ASTRBOT_PYTHON", REPO / ".venv-astrbot" / "bin" / "python"))
USER = "7756242"
ANSWER = (
    "你好！我是跑在 **AstrBot** 里的假模型。这段回答经由 yunhu-stream 的适配器，"
    "用一个 `bot/send-stream` 请求一块一块地送进云湖：你看到的每一段，"
    "都是模型刚刚写出来的。🚀"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(text: str, serve: bool) -> int:
    async with Emulator() as emu, FakeLLM(ANSWER, delay=0.08) as llm, \
            contextlib.AsyncExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="astrbot-demo-")))
        port = free_port()
        prepare_root(root, token=emu.token, base_url=emu.base_url, webhook_port=port,
                     dashboard_port=free_port(), llm_base_url=llm.base_url,
                     plugins=[REPO / "examples" / "astrbot_plugin"])
        print(f"emulator live page: {emu.url}")
        astrbot = await asyncio.create_subprocess_exec(
            str(ASTRBOT_PYTHON), "-m", "yunhu_stream.integrations.astrbot_emulator", str(root),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        log: list[str] = []
        ready = asyncio.Event()

        async def read_output() -> None:
            assert astrbot.stdout is not None
            async for line in astrbot.stdout:
                log.append(line.decode("utf-8", "replace").rstrip())
                if READY_MARKER in log[-1]:
                    ready.set()
            ready.set()

        reader = asyncio.create_task(read_output())
        try:
            print("starting AstrBot (about ten seconds)...")
            await asyncio.wait_for(ready.wait(), 90)
            if astrbot.returncode is not None:
                raise RuntimeError("AstrBot exited")
            url = f"http://127.0.0.1:{port}/yunhu/webhook"
            print(f"AstrBot's YunHu webhook: {url}; user {USER} says {text!r}")
            async with aiohttp.ClientSession() as session, \
                    session.post(url, json=message_event(text, chat=f"user:{USER}")) as resp:
                resp.raise_for_status()
            ok = await show_reply(emu)
            if serve:
                print(f"serving: live page {emu.url}, webhook {url} (Ctrl-C stops)")
                await wait_for_ctrl_c()
            return 0 if ok else 1
        except BaseException:
            print("\n".join(log), file=sys.stderr)
            raise
        finally:
            if astrbot.returncode is None:
                astrbot.terminate()  # AstrBot's own graceful shutdown
            await astrbot.wait()
            await reader


async def show_reply(emu: Emulator) -> bool:
    record = await emu.wait_for_stream(timeout=60)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    seen = 0
    while True:
        await emu.wait_until(lambda n=seen: len(record.chunks) > n or record.done,
                             what="the next chunk", timeout=60)
        for chunk in record.chunks[seen:]:
            print(f"  +{(chunk.t - record.started) * 1000:6.0f} ms  {decoder.decode(chunk.data)!r}")
        seen = len(record.chunks)
        if record.done and seen == len(record.chunks):
            break
    message = emu.chat("user", USER)[-1]
    print(f"user {USER}'s chat now shows: {message.text}")
    ok = record.completed and len(record.chunks) > 1 and message.text == record.text
    print("streamed in", len(record.chunks), "chunks" if ok else "chunks: FAILED")
    return ok


async def wait_for_ctrl_c() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", nargs="*", help="what the user says (default: 你好)")
    parser.add_argument("--serve", action="store_true", help="keep running until Ctrl-C")
    args = parser.parse_args()
    if not ASTRBOT_PYTHON.is_file():
        sys.exit(f"AstrBot is not installed at {ASTRBOT_PYTHON}: run make astrbot-env")
    sys.exit(asyncio.run(main(" ".join(args.text) or "你好", args.serve)))
