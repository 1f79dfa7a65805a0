"""The README's hello example runs offline and shows chunks arriving before the stream closes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stream_hello_shows_chunks_then_message() -> None:
    """examples/stream_hello.py prints several chunk arrivals, then the completed MessageInfo."""
    env = {k: v for k, v in os.environ.items() if k not in ("YUNHU_TOKEN", "YUNHU_BASE_URL")}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_hello.py")],
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    lines = out.stdout.splitlines()
    chunk_lines = [line for line in lines if line.strip().startswith("+")]
    assert len(chunk_lines) >= 5
    done = lines.index(next(line for line in lines if line.startswith("stream completed")))
    assert all(lines.index(c) < done for c in chunk_lines)
    assert lines[-1].startswith("message: ") and '"delivery": "stream"' in lines[-1]


def first_python_block(path: Path, after: str = "") -> str:
    """The first ```python block of a Markdown file (after the heading ``after``)."""
    text = path.read_text(encoding="utf-8")
    text = text[text.index(after):] if after else text
    start = text.index("```python\n") + len("```python\n")
    return text[start:text.index("\n```", start)]


def test_readme_first_example_runs_as_written(tmp_path: Path) -> None:
    """The README's first snippet runs unchanged, with the token and base URL from the
    environment pointed at an emulator, and streams its tokens into the chat."""
    script = tmp_path / "readme.py"
    script.write_text(first_python_block(ROOT / "README.md"), encoding="utf-8")
    runner = (
        "import asyncio, os, runpy\n"
        "from yunhu_stream.emulator import Emulator\n"
        "async def main():\n"
        "    async with Emulator() as emu:\n"
        "        os.environ['YUNHU_TOKEN'] = emu.token\n"
        "        os.environ['YUNHU_BASE_URL'] = emu.base_url\n"
        f"        await asyncio.to_thread(runpy.run_path, {str(script)!r}, run_name='__main__')\n"
        "        [message] = emu.chat('user', '7058262')\n"
        "        print('chunks', len(emu.streams[0].chunks), 'text', message.text)\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("YUNHU_TOKEN", "YUNHU_BASE_URL")}
    out = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60, check=True).stdout
    assert "delivery='stream'" in out
    chunks = int(out.split("chunks ")[1].split()[0])
    assert chunks > 1
    assert out.rstrip().endswith("text 你好！This arrives as it is written.")


def test_testing_a_bot_example_in_docs_runs_outside_the_repository(tmp_path: Path) -> None:
    """docs/apps.md's "Testing a bot" example passes as written, from a folder of its own."""
    (tmp_path / "test_echo.py").write_text(
        first_python_block(ROOT / "docs" / "apps.md", "## Testing a bot"), encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_echo.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
