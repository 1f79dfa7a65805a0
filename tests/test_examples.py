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
