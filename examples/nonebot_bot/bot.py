"""A NoneBot2 bot whose replies stream into YunHu as they are produced.

Run it for real with your bot's ``app_id`` and token in ``.env``::

    python bot.py

or against the local emulator, with no YunHu account, in one command::

    python demo.py
"""

from __future__ import annotations

import os
from pathlib import Path

import nonebot
from nonebot.adapters.yunhu import Adapter

HERE = Path(__file__).parent

nonebot.init(_env_file=HERE / ".env")
driver = nonebot.get_driver()

if os.environ.get("YUNHU_EMULATOR"):
    # The stock adapter only talks to YunHu's own hosts; this one follows
    # YUNHU_STREAM_BASE_URL (see yunhu_stream.integrations.nonebot_emulator).
    from yunhu_stream.integrations.nonebot_emulator import EmulatorAdapter

    driver.register_adapter(EmulatorAdapter)
else:
    driver.register_adapter(Adapter)

nonebot.load_plugin("yunhu_stream.integrations.nonebot")
nonebot.load_plugin("plugins.chat")  # plugins/ sits next to this file, on sys.path

if __name__ == "__main__":
    nonebot.run()
