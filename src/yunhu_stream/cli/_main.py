"""The command-line parser and ``main()``: one sub-command per module."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

from .. import errors
from .._types import Recipient
from .._version import __version__
from ._common import (
    DEMO_TO,
    EXIT_CODES_HELP,
    PROG,
    CliError,
    ExitCode,
    Signals,
    configure_logging,
    describe,
    error,
    exit_code_for,
    run,
)
from ._input import InputSource, InvalidInputError

DEFAULT_EMULATOR_PORT = 8780
DEFAULT_WSCHAT_PORT = 8790

_FORMATTER = argparse.RawDescriptionHelpFormatter

MAIN_EPILOG = f"""\
examples:
  yunhu-stream demo                      watch a streamed answer arrive, chunk by chunk
  yunhu-stream demo --open               the same, live in your browser
  tail -f build.log | yunhu-stream send --to group:123456
  yunhu-stream emulator --port 8780      a local YunHu to point your bot at
  yunhu-stream wschat-server             a local WebSocket chat server (docs/wschat.md)

Run 'yunhu-stream COMMAND --help' for each command's options.

{EXIT_CODES_HELP}"""

SEND_EPILOG = f"""\
The input is forwarded as it arrives: each complete line at once, a line without
its newline after --flush-delay. The message ends at end of input (Ctrl-D on a
terminal). On success the created message is printed on stdout as JSON, e.g.
  {{"msgId": "…", "recvId": "123456", "recvType": "group", "delivery": "stream"}}
(one line per message if --max-message-bytes split the text).

The token comes from --token-file, or the YUNHU_TOKEN environment variable.
--token also works but other local users can see it in the process list.

examples:
  tail -f build.log | yunhu-stream send --to group:123456
  yunhu-stream send --to user:7058262 --markdown --token-file ~/.yunhu-token report.md
  YUNHU_BASE_URL=http://127.0.0.1:8780/open-apis/v1 YUNHU_TOKEN=… \\
      yunhu-stream send --to group:demo notes.txt

With --wschat URL the message goes to a WebSocket chat server instead (docs/wschat.md):
the token comes from --wschat-token-file, $YUNHU_WSCHAT_TOKEN, or the token API
(--app-key, --app-secret, --user-id; the secret also from $YUNHU_WSCHAT_APP_SECRET).
  echo hi | yunhu-stream send --wschat ws://127.0.0.1:8790/chat --to user:2 \\
      --app-key demo-key --app-secret demo-secret --user-id bot

{EXIT_CODES_HELP}"""

WSCHAT_EPILOG = """\
Serves the WebSocket chat protocol of the source document (docs/wschat.md): the token
API at POST /chat/oauth/token, the chat at ws://HOST:PORT/chat?token=…, and a live
page of the conversations at http://HOST:PORT/. Runs until Ctrl-C (exit status 0).

examples:
  yunhu-stream wschat-server
  yunhu-stream wschat-server --port 9000 --app-key k --app-secret s"""

EMULATOR_EPILOG = """\
Serves a local YunHu bot API (send-stream, send, edit, recall, messages) and a
live web page of its chats at http://HOST:PORT/. Point a bot at it with
base_url=http://HOST:PORT/open-apis/v1 and the printed token. Runs until Ctrl-C
(exit status 0).

examples:
  yunhu-stream emulator
  yunhu-stream emulator --port 9000 --token test-token"""

DEMO_EPILOG = f"""\
Starts the emulator in this process, streams a sample LLM-style markdown answer
into it token by token through the library, and prints each chunk as the
emulator receives it (offset from the request's start, bytes, text), then the
created message as JSON. With --open it also prints the live page's URL, tries
to open a browser, and keeps serving until Ctrl-C.

With a token (YUNHU_TOKEN or --token-file) AND --to, it streams to the real
YunHu service (or --base-url) instead, printing each write as it is made.

examples:
  yunhu-stream demo
  yunhu-stream demo --open --delay-ms 80
  YUNHU_TOKEN=… yunhu-stream demo --to user:7058262

{EXIT_CODES_HELP}"""


# -- argument types -----------------------------------------------------------------------


def _recipient(value: str) -> Recipient:
    try:
        return Recipient.parse(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a recipient; use user:ID or group:ID"
        ) from None


def _int_at_least(minimum: int) -> type[int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, not {value!r}")
        return number

    parse.__name__ = f"integer >= {minimum}"
    return parse  # type: ignore[return-value]  # argparse only calls it


def _port(value: str) -> int:
    port = _int_at_least(0)(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value!r}")
    return port


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, not {value!r}")
    return number


# -- the parser ---------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log more on stderr: -v warnings and info, -vv debug (default: errors only)",
    )
    return common


def _credentials() -> argparse.ArgumentParser:
    creds = argparse.ArgumentParser(add_help=False)
    group = creds.add_argument_group("bot token and server")
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--token-file", metavar="PATH",
        help="read the bot token from this file (default: $YUNHU_TOKEN)",
    )
    which.add_argument(
        "--token", metavar="TOKEN",
        help="the bot token itself (visible to other local users; prefer --token-file)",
    )
    group.add_argument(
        "--base-url", metavar="URL",
        help="API root (default: $YUNHU_BASE_URL or https://chat-go.jwzhd.com/open-apis/v1)",
    )
    return creds


def build_parser() -> argparse.ArgumentParser:
    """The ``yunhu-stream`` argument parser (every command, with help and examples)."""
    common, creds = _common(), _credentials()
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_FORMATTER, epilog=MAIN_EPILOG,
        description="Stream chat messages into YunHu (云湖) as they are produced.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    send = commands.add_parser(
        "send", parents=[common, creds], formatter_class=_FORMATTER, epilog=SEND_EPILOG,
        help="stream a file or stdin into one message as it arrives",
        description="Stream a file or stdin into one YunHu message as it arrives.",
    )
    send.add_argument(
        "--to", required=True, type=_recipient, metavar="user:ID|group:ID",
        help="the chat: a user (private chat with the bot) or a group",
    )
    send.add_argument("--markdown", action="store_true", help="send as markdown (default: text)")
    send.add_argument(
        "file", nargs="?", default="-", metavar="FILE",
        help="what to send; '-' or nothing for stdin",
    )
    send.add_argument(
        "--invalid-utf8", choices=("replace", "reject"), default="replace",
        help="invalid UTF-8 in the input: replace it with U+FFFD (default), or reject "
             "it: abort the stream before it is sent and exit 6",
    )
    send.add_argument(
        "--flush-delay", type=_seconds, default=0.2, metavar="SECONDS",
        help="forward a line that has no newline yet after this long (default: 0.2)",
    )
    send.add_argument(
        "--max-message-bytes", type=_int_at_least(64), metavar="N",
        help="continue in a new message before one exceeds N UTF-8 bytes",
    )
    send.add_argument(
        "--retries", type=_int_at_least(0), default=4, metavar="N",
        help="retry a request that the server did not accept up to N times (default: 4)",
    )
    send.add_argument(
        "--no-progress", dest="progress", action="store_false",
        help="no progress line (it is shown only when stderr is a terminal)",
    )
    ws = send.add_argument_group("a WebSocket chat instead of YunHu (docs/wschat.md)")
    ws.add_argument("--wschat", metavar="URL", help="ws://HOST:PORT/chat of the chat server")
    ws.add_argument("--wschat-token-file", metavar="PATH",
                    help="read the chat token from this file (default: $YUNHU_WSCHAT_TOKEN)")
    ws.add_argument("--app-key", help="get a token from the server's token API with this key")
    ws.add_argument("--app-secret", help="... and secret (default: $YUNHU_WSCHAT_APP_SECRET)")
    ws.add_argument("--user-id", help="... for this user (the sender)")

    emulator = commands.add_parser(
        "emulator", parents=[common], formatter_class=_FORMATTER, epilog=EMULATOR_EPILOG,
        help="run a local YunHu bot API with a live web page",
        description="Run the YunHu emulator with its live web page until Ctrl-C.",
    )
    emulator.add_argument(
        "--port", type=_port, default=DEFAULT_EMULATOR_PORT,
        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_EMULATOR_PORT})",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    emulator.add_argument(
        "--token", metavar="TOKEN",
        help="the test token it accepts (default: a random one, printed at start)",
    )
    emulator.add_argument(
        "--proxy", action="store_true",
        help="also run an HTTPS proxy for YunHu's hosts, for clients whose base URL is fixed "
             "(needs yunhu-stream[proxy])",
    )

    wschat = commands.add_parser(
        "wschat-server", parents=[common], formatter_class=_FORMATTER, epilog=WSCHAT_EPILOG,
        help="run a local WebSocket chat server with a live web page",
        description="Run the WebSocket chat server of the source document until Ctrl-C.",
    )
    wschat.add_argument(
        "--port", type=_port, default=DEFAULT_WSCHAT_PORT,
        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_WSCHAT_PORT})",
    )
    wschat.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    wschat.add_argument("--app-key", default="demo-key",
                        help="the key the token API accepts (default: demo-key)")
    wschat.add_argument("--app-secret", default="demo-secret",
                        help="its secret, which also signs tokens (default: demo-secret)")

    demo = commands.add_parser(
        "demo", parents=[common, creds], formatter_class=_FORMATTER, epilog=DEMO_EPILOG,
        help="stream a sample answer into the embedded emulator and show each chunk",
        description="Stream a sample LLM-style answer and show each chunk as it arrives.",
    )
    demo.add_argument(
        "--open", action="store_true",
        help="print the live page's URL, try to open a browser, serve until Ctrl-C",
    )
    demo.add_argument(
        "--to", type=_recipient, metavar="user:ID|group:ID",
        help=f"the chat (default: {DEMO_TO} in the emulator); with a token, a real chat",
    )
    demo.add_argument(
        "--delay-ms", type=_int_at_least(0), default=40, metavar="N",
        help="milliseconds between tokens (default: 40)",
    )
    demo.add_argument(
        "--port", type=_port, default=0,
        help="port for the embedded emulator (default: a free one)",
    )
    demo.add_argument("--host", default="127.0.0.1", help="its address (default: 127.0.0.1)")
    demo.add_argument(
        "--open-wait", type=_seconds, default=2.0, metavar="SECONDS",
        help="with --open, wait this long for the page to load before streaming (default: 2)",
    )
    return parser


def _handler(command: str) -> Callable[[argparse.Namespace, Signals], Awaitable[ExitCode]]:
    # Imported on demand: the emulator (aiohttp.web) is not needed to send.
    if command == "send":
        from ._send import run_send

        return run_send
    if command == "wschat-server":
        from ._wschat import run_wschat_server

        return run_wschat_server
    from ._demo import run_demo, run_emulator

    return run_emulator if command == "emulator" else run_demo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, sys.stderr)
    source: InputSource | None = None
    try:
        if args.command == "send":
            # Opened before the event loop starts: opening a FIFO blocks until a writer
            # comes, and only outside the loop does Ctrl-C interrupt that.
            source = args.source = InputSource.open(args.file)
        handler = _handler(args.command)
        return int(run(lambda signals: handler(args, signals)))
    except CliError as exc:
        error(exc.message)
        return int(exc.code)
    except InvalidInputError as exc:
        error(str(exc))
        return int(ExitCode.INPUT)
    except errors.YunhuError as exc:
        error(describe(exc))
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader of stdout is gone (| head): say nothing more, and keep Python's
        # flush at exit from failing on the same pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.BROKEN_PIPE)
    finally:
        if source is not None:
            source.close()


if __name__ == "__main__":  # pragma: no cover - use `python -m yunhu_stream`
    sys.exit(main())
