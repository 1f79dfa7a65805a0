"""An ErisPulse bot whose replies stream into YunHu as they are produced.

Run it from this directory with your token in ``config/config.toml`` (copy
``config.example.toml`` there first)::

    python main.py

or against the local emulator, with no YunHu account, in one command::

    python demo.py
"""

from __future__ import annotations

import asyncio

from ErisPulse import sdk

if __name__ == "__main__":
    # Loads the YunHu adapter and the YunhuStream module (both found through their
    # entry points), and plugins/chat.py; runs until Ctrl+C or SIGTERM.
    asyncio.run(sdk.run())
