"""See the ErisPulse example stream a reply, with no YunHu account: one command.

    python examples/erispulse_bot/demo.py ["your message"]

It starts yunhu-stream's emulator (a local YunHu API), copies this example into
a temporary project directory (ErisPulse writes its config and state next to
``main.py``), points ``Yunhu_Adapter.base_url`` at the emulator, runs the bot,
POSTs one group message to its webhook as YunHu would, prints the reply's chunks
as the emulator receives them, and stops the bot. Exit status 0 means the reply
arrived in the group, streamed in more than one chunk.
"""

from __future__ import annotations

import asyncio
import codecs
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import aiohttp

from yunhu_stream.emulator import Emulator
from yunhu_stream.testing import message_event

HERE = Path(__file__).resolve().parent
GROUP = "307149245"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_project(root: Path, emu: Emulator, port: int) -> None:
    shutil.copy(HERE / "main.py", root / "main.py")
    shutil.copytree(HERE / "plugins", root / "plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "config").mkdir()
    (root / "config" / "config.toml").write_text(f"""
[ErisPulse.server]
host = "127.0.0.1"
port = {port}

[Yunhu_Adapter]
base_url = "{emu.base_url}"

[Yunhu_Adapter.accounts.default]
token = "{emu.token}"
mode = "webhook"
webhook_path = "/webhook"
enabled = true
""", encoding="utf-8")


async def wait_for_route(url: str, bot: asyncio.subprocess.Process) -> None:
    """ErisPulse registers the adapter's route after its server starts: wait for both."""
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            if bot.returncode is not None:
                raise RuntimeError("the bot exited")
            try:
                async with session.get(url) as resp:
                    if resp.status != 404:  # 405: the POST-only webhook route is there
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in 60 s")


async def main(text: str) -> int:
    async with Emulator() as emu:
        with tempfile.TemporaryDirectory(prefix="erispulse_demo_") as tmp:
            root, port = Path(tmp), free_port()
            make_project(root, emu, port)
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "main.py", cwd=root,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            log: list[str] = []

            async def read_bot_output() -> None:
                assert bot.stdout is not None
                async for line in bot.stdout:
                    log.append(line.decode("utf-8", "replace").rstrip())

            reader = asyncio.create_task(read_bot_output())
            try:
                url = f"http://127.0.0.1:{port}/yunhu_default/webhook"
                await wait_for_route(url, bot)
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
                ok = (record.completed and len(record.chunks) > 1
                      and message.text == record.text)
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
