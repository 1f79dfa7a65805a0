"""Run a real AstrBot offline against the emulator: for tests, demos and your own plugins.

Two halves:

* :func:`prepare_root` (any Python, no AstrBot needed) writes an AstrBot root
  directory: a ``cmd_config.json`` with one ``yunhu_stream`` platform pointed at the
  emulator, optionally an OpenAI-compatible provider (the fake LLM) with streaming on,
  and plugin folders copied into ``data/plugins/``.
* ``python -m yunhu_stream.integrations.astrbot_emulator ROOT`` (in AstrBot's
  environment) starts AstrBot there the way ``astrbot run`` does, without what needs
  the internet: no dashboard download, no metrics, and every connection to anything
  but loopback refused (AstrBot fetches model metadata and text-to-image endpoints at
  start-up; each refusal prints one ``offline: refused ...`` line). SIGTERM stops it
  gracefully, through AstrBot's own shutdown.

::

    root = prepare_root(tmp / "astrbot", token=emu.token, base_url=emu.base_url,
                        webhook_port=8090, dashboard_port=8091,
                        llm_base_url=llm.base_url, plugins=[Path("examples/astrbot_plugin")])
    # .venv-astrbot/bin/python -m yunhu_stream.integrations.astrbot_emulator <root>
    # then POST webhook bodies to http://127.0.0.1:8090/yunhu/webhook
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._public import publish
from ._astrbot_config import DEFAULT_CONFIG

__all__ = ["PLATFORM_ID", "PROVIDER_ID", "READY_MARKER", "main", "prepare_root"]

PLATFORM_ID = "yunhu"
"""The id of the platform instance :func:`prepare_root` configures."""

PROVIDER_ID = "fake-llm"
"""The id of the chat provider :func:`prepare_root` configures."""

READY_MARKER = "astrbot_webhook_ready"
"""Printed (in AstrBot's log) once the adapter's own webhook port listens."""


def prepare_root(
    root: Path | str,
    *,
    token: str,
    base_url: str,
    webhook_port: int,
    dashboard_port: int,
    webhook_path: str = "/yunhu/webhook",
    bot_id: str = "",
    llm_base_url: str | None = None,
    model: str = "fake-gpt",
    plugins: Iterable[Path | str] = (),
    platform: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write an AstrBot root directory for one offline run; return it.

    Args:
        root: The directory (created if missing; an existing config is replaced).
        token, base_url: The emulator's ``token`` and ``base_url``.
        webhook_port, webhook_path: Where the adapter listens (on 127.0.0.1).
        dashboard_port: AstrBot's WebUI and unified webhook port (on 127.0.0.1).
        bot_id: The bot's YunHu id (``yunhu_bot_id``).
        llm_base_url: An OpenAI-compatible ``.../v1`` (the fake LLM's ``base_url``) to
            make AstrBot's default chat provider, with streamed replies on; None: none.
        model: The model name sent to it.
        plugins: Plugin folders to copy into ``data/plugins/`` (each under its own name).
        platform: More keys for the platform instance (``yunhu_max_message_bytes``...).
        config: More top-level AstrBot settings, merged one level deep
            (``{"platform_settings": {"reply_with_mention": True}}``).

    Raises:
        FileNotFoundError: a plugin folder does not exist.
    """
    root = Path(root)
    data = root / "data"
    (data / "plugins").mkdir(parents=True, exist_ok=True)
    (data / "config").mkdir(exist_ok=True)
    (data / "temp").mkdir(exist_ok=True)
    (root / ".astrbot").touch()
    for plugin in map(Path, plugins):
        if not (plugin / "main.py").is_file():
            raise FileNotFoundError(f"not an AstrBot plugin folder (no main.py): {plugin}")
        shutil.copytree(plugin, data / "plugins" / plugin.name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    settings: dict[str, Any] = {
        "dashboard": {"enable": True, "host": "127.0.0.1", "port": dashboard_port},
        "platform": [{
            **DEFAULT_CONFIG, "id": PLATFORM_ID, "enable": True,
            "yunhu_token": token, "yunhu_base_url": base_url, "yunhu_bot_id": bot_id,
            "yunhu_webhook_host": "127.0.0.1", "yunhu_webhook_port": webhook_port,
            "yunhu_webhook_path": webhook_path, **(platform or {}),
        }],
        "platform_settings": {},
        "provider_settings": {},
    }
    if llm_base_url is not None:
        settings["provider"] = [{
            "id": PROVIDER_ID, "type": "openai_chat_completion",
            "provider_type": "chat_completion", "enable": True, "key": ["sk-offline"],
            "api_base": llm_base_url, "model": model, "timeout": 60,
            "modalities": ["text", "tool_use"],
        }]
        settings["provider_settings"].update(
            default_provider_id=PROVIDER_ID, streaming_response=True,
        )
    for key, value in (config or {}).items():
        if isinstance(value, Mapping) and isinstance(settings.get(key), dict):
            settings[key].update(value)
        else:
            settings[key] = value
    (data / "cmd_config.json").write_text(
        json.dumps(settings, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return root


# -- the offline run (inside AstrBot's environment) ------------------------------------------


def _is_local(host: object, *, binding: bool) -> bool:
    if host is None or host in ("localhost", b"localhost"):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        address = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False  # a name other than localhost: resolving it leaves the machine
    return address.is_loopback or (binding and address.is_unspecified)


def _refuse_non_loopback() -> None:
    """Make this process unable to resolve or connect to anything but loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refused(where: object) -> OSError:
        print(f"offline: refused {where!r} (this run talks to loopback only)", flush=True)
        return OSError(f"offline run: {where!r} is not loopback")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host, binding=True):
            raise socket.gaierror(socket.EAI_NONAME, str(refused(host)))
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(
                address[0], binding=False):
            raise refused(address[0])

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


async def _run_astrbot() -> None:
    from astrbot.core import LogBroker, LogManager, db_helper, logger
    from astrbot.core.initial_loader import InitialLoader

    log_broker = LogBroker()
    LogManager.set_queue_handler(logger, log_broker)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    # InitialLoader.start() answers cancellation with AstrBot's own graceful stop.
    await InitialLoader(db_helper, log_broker).start()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m yunhu_stream.integrations.astrbot_emulator ROOT``: run AstrBot offline."""
    parser = argparse.ArgumentParser(
        prog="python -m yunhu_stream.integrations.astrbot_emulator", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", type=Path, help="an AstrBot root made by prepare_root()")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "data" / "cmd_config.json").is_file():
        parser.error(f"{root} has no data/cmd_config.json: make it with prepare_root()")
    # AstrBot resolves some paths against the working directory, others against
    # ASTRBOT_ROOT; and it reads its config when astrbot.core is first imported.
    os.chdir(root)
    sys.path.insert(0, str(root))  # plugins are imported as data.plugins.<folder>.main
    os.environ["ASTRBOT_ROOT"] = str(root)
    os.environ["ASTRBOT_DISABLE_METRICS"] = "1"
    _refuse_non_loopback()
    asyncio.run(_run_astrbot())
    print("astrbot_offline_stopped", flush=True)


publish(globals(), __all__)

if __name__ == "__main__":
    main(sys.argv[1:])
