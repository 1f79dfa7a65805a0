"""``yunhu-stream wschat-server``: the WebSocket chat server of the source document."""

from __future__ import annotations

import argparse
import sys

from ..wschat import WsChatServer
from ._common import ExitCode, Signals


def _say(text: str = "") -> None:
    print(text, file=sys.stdout, flush=True)


async def run_wschat_server(args: argparse.Namespace, signals: Signals) -> ExitCode:
    """Serve until Ctrl-C (then exit 0)."""
    server = WsChatServer(args.host, args.port, app_key=args.app_key,
                          app_secret=args.app_secret)
    await server.start()
    try:
        _say(f"WebSocket chat server running: open {server.base_url}/ to watch it live")
        _say(f"  token API:  POST {server.base_url}/chat/oauth/token")
        _say(f'              {{"appKey": "{args.app_key}", "appSecret": "…", "userId": "2"}}')
        _say(f"  WebSocket:  {server.url}?token=TOKEN")
        _say()
        _say("Stream into it from another terminal:")
        _say(f"  echo 'Hello' | yunhu-stream send --wschat {server.url} --to user:2 \\")
        _say(f"      --app-key {args.app_key} --app-secret … --user-id bot")
        _say()
        _say("Press Ctrl-C to stop.")
        await signals.wait()
    finally:
        await server.aclose()
    _say("wschat server stopped")
    return ExitCode.OK
