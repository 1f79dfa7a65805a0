"""The ``yunhu-stream`` command, run for real in a subprocess against an emulator in this process.

Synchronisation is by the emulator's wait helpers (a chunk arrived, a stream ended), never
by sleeping: each line is written to the child's stdin only after the emulator has
received the previous one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import pty
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunhu_stream.cli._demo import SAMPLE_ANSWER, tokenize
from yunhu_stream.cli._input import PARTIAL_FLUSH_CHARS, InvalidInputError, LineCutter
from yunhu_stream.emulator import Emulator, StreamRecord

pytestmark = pytest.mark.anyio

WAIT = 20.0  # generous: a loaded CI machine may be slow to start a Python subprocess


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


def cli_env(token: str | None = None, base_url: str | None = None) -> dict[str, str]:
    """The environment for the child: this one without YunHu settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YUNHU_")}
    env["PYTHONIOENCODING"] = "utf-8"
    if token is not None:
        env["YUNHU_TOKEN"] = token
    if base_url is not None:
        env["YUNHU_BASE_URL"] = base_url
    return env


async def spawn(
    *args: str, env: dict[str, str], stderr: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "yunhu_stream", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env,
    )


async def finish(proc: asyncio.subprocess.Process, stdin: bytes | None = None) -> Result:
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), WAIT)  # b"": close stdin
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), (err or b"").decode())


async def run_cli(*args: str, env: dict[str, str], stdin: bytes = b"") -> Result:
    return await finish(await spawn(*args, env=env), stdin)


async def write(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(data)
    await proc.stdin.drain()


def send_args(emu: Emulator, *extra: str, to: str = "group:42") -> list[str]:
    return ["send", "--to", to, "--base-url", emu.base_url, *extra]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The started emulator of the ``yunhu_stream.testing`` plugin, under a shorter name."""
    return emulator


def assert_no_token(result: Result, token: str) -> None:
    assert token not in result.stdout
    assert token not in result.stderr


class TestSendStreamsAsItArrives:
    async def test_lines_piped_slowly_arrive_in_several_chunks_before_eof(
        self, emu: Emulator
    ) -> None:
        """Each line written to stdin reaches the emulator before the next is written."""
        proc = await spawn(*send_args(emu), env=cli_env(emu.token))
        lines = [b"build started\n", "编译中… 50%\n".encode(), b"build passed\n"]
        sent = b""
        record: StreamRecord | None = None
        for line in lines:
            await write(proc, line)
            sent += line
            record = record or await emu.wait_for_stream(1, timeout=WAIT)
            await record.wait_for_bytes(len(sent), timeout=WAIT)
            assert record.body == sent
            assert not record.completed  # still streaming: stdin is open
        assert record is not None
        result = await finish(proc)
        assert result.rc == 0, result.stderr
        assert len(record.chunks) >= len(lines)
        assert record.completed
        info = json.loads(result.stdout)
        assert info == {"msgId": record.msg_id, "recvId": "42", "recvType": "group",
                        "delivery": "stream"}
        assert emu.chat("group", "42")[-1].text == sent.decode()

    async def test_a_line_without_newline_is_forwarded_after_the_flush_delay(
        self, emu: Emulator
    ) -> None:
        """A partial line reaches the chat while stdin is still open."""
        proc = await spawn(*send_args(emu, "--flush-delay", "0.05"), env=cli_env(emu.token))
        await write(proc, b"Thinking")
        record = await emu.wait_for_stream(1, timeout=WAIT)
        await record.wait_for_bytes(len(b"Thinking"), timeout=WAIT)
        assert not record.completed
        result = await finish(proc, b"... done\n")
        assert result.rc == 0, result.stderr
        assert emu.chat("group", "42")[-1].text == "Thinking... done\n"

    async def test_a_character_split_across_reads_survives(self, emu: Emulator) -> None:
        """UTF-8 bytes of one character written separately arrive as that character."""
        proc = await spawn(*send_args(emu, "--flush-delay", "0"), env=cli_env(emu.token))
        zhong = "中".encode()
        await write(proc, b"ab" + zhong[:2])
        record = await emu.wait_for_stream(1, timeout=WAIT)
        await record.wait_for_bytes(2, timeout=WAIT)  # "ab" went out; the 2 bytes wait
        assert record.body == b"ab"
        result = await finish(proc, zhong[2:] + b"\n")
        assert result.rc == 0, result.stderr
        assert record.body == "ab中\n".encode()

    async def test_file_argument_is_sent_whole_as_markdown(
        self, emu: Emulator, tmp_path: Path
    ) -> None:
        """A FILE argument is streamed as one message with the chosen content type."""
        path = tmp_path / "report.md"
        path.write_text("# Report\n\n**all green** ✅\n", encoding="utf-8")
        result = await run_cli(*send_args(emu, "--markdown", str(path), to="user:7"),
                               env=cli_env(emu.token))
        assert result.rc == 0, result.stderr
        message = emu.chat("user", "7")[-1]
        assert message.text == path.read_text(encoding="utf-8")
        assert message.content_type == "markdown"
        assert json.loads(result.stdout)["recvType"] == "user"

    async def test_invalid_utf8_is_replaced_by_default(self, emu: Emulator) -> None:
        """Without --invalid-utf8, bad bytes become U+FFFD and the message is sent."""
        result = await run_cli(*send_args(emu), env=cli_env(emu.token),
                               stdin=b"caf\xe9 ok\n\xe4\xb8")
        assert result.rc == 0, result.stderr
        assert emu.chat("group", "42")[-1].text == "caf\ufffd ok\n\ufffd"

    async def test_rollover_prints_one_json_line_per_message(self, emu: Emulator) -> None:
        """With --max-message-bytes, every message created is printed as its own line."""
        text = "".join(f"line {i:03d} of the log\n" for i in range(20))
        result = await run_cli(*send_args(emu, "--max-message-bytes", "200"),
                               env=cli_env(emu.token), stdin=text.encode())
        assert result.rc == 0, result.stderr
        infos = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(infos) > 1
        chat = emu.chat("group", "42")
        assert [m.msg_id for m in chat] == [i["msgId"] for i in infos]
        assert "".join(m.text for m in chat) == text


    async def test_stdin_is_left_blocking_for_the_next_reader(self, emu: Emulator) -> None:
        """The pipe's blocking mode, shared with later commands, is restored on exit."""
        script = (
            f'"{sys.executable}" -m yunhu_stream send --to group:42 --base-url {emu.base_url}'
            f' && "{sys.executable}" -c "import os; print(os.get_blocking(0))"'
        )
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", script, env=cli_env(emu.token), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        result = await finish(proc, b"hi\n")
        assert result.rc == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "True"


class TestExitCodes:
    async def test_no_token_exits_3(self, emu: Emulator) -> None:
        """Without YUNHU_TOKEN or a token option, nothing is sent and the status is 3."""
        result = await run_cli(*send_args(emu), env=cli_env(), stdin=b"hi\n")
        assert result.rc == 3
        assert "YUNHU_TOKEN" in result.stderr
        assert result.stdout == ""
        assert emu.streams == []

    async def test_empty_token_file_exits_3(self, emu: Emulator, tmp_path: Path) -> None:
        """An empty --token-file is a configuration error."""
        path = tmp_path / "token"
        path.write_text("\n")
        result = await run_cli(*send_args(emu, "--token-file", str(path)), env=cli_env(),
                               stdin=b"hi\n")
        assert result.rc == 3
        assert "empty" in result.stderr

    async def test_bad_base_url_exits_3(self, emu: Emulator) -> None:
        """A base URL that is not http(s) is a configuration error."""
        result = await run_cli("send", "--to", "group:1", "--base-url", "ftp://x",
                               env=cli_env(emu.token), stdin=b"hi\n")
        assert result.rc == 3
        assert "base_url" in result.stderr

    async def test_bad_to_exits_2(self, emu: Emulator) -> None:
        """A --to that is not user:ID or group:ID is a usage error naming the forms."""
        bad = ["grp:1", "group:", "user", "7058262", "user: 1"]
        results = await asyncio.gather(*(
            run_cli("send", "--to", to, env=cli_env(emu.token), stdin=b"hi\n") for to in bad
        ))
        for result in results:
            assert result.rc == 2
            assert "user:ID or group:ID" in result.stderr
        assert emu.streams == []

    async def test_wrong_token_exits_4_with_the_api_code(self, emu: Emulator) -> None:
        """YunHu's 1003 answer (bad token) is an API error, status 4."""
        result = await run_cli(*send_args(emu), env=cli_env("not-the-token"), stdin=b"hi\n")
        assert result.rc == 4
        assert "1003" in result.stderr
        assert result.stdout == ""
        assert_no_token(result, "not-the-token")

    async def test_http_error_status_exits_7(self, emu: Emulator) -> None:
        """An HTTP error status instead of YunHu's envelope is status 7."""
        emu.faults.http_status(400)
        result = await run_cli(*send_args(emu), env=cli_env(emu.token), stdin=b"hi\n")
        assert result.rc == 7
        assert "HTTP 400" in result.stderr

    async def test_closed_port_exits_5(self) -> None:
        """A refused connection is a network error, status 5."""
        base = f"http://127.0.0.1:{closed_port()}/open-apis/v1"
        result = await run_cli("send", "--to", "group:1", "--base-url", base, "--retries", "0",
                               env=cli_env("secret-token-5"), stdin=b"hi\n")
        assert result.rc == 5
        assert result.stdout == ""
        assert_no_token(result, "secret-token-5")

    async def test_invalid_utf8_with_reject_exits_6_and_sends_nothing_invalid(
        self, emu: Emulator
    ) -> None:
        """Under reject, the stream is aborted before the bad line; what came before stays."""
        proc = await spawn(*send_args(emu, "--invalid-utf8", "reject"), env=cli_env(emu.token))
        await write(proc, b"good line\n")
        record = await emu.wait_for_stream(1, timeout=WAIT)
        await record.wait_for_bytes(len(b"good line\n"), timeout=WAIT)
        result = await finish(proc, b"bad \xff line\nmore\n")
        assert result.rc == 6
        assert "not valid UTF-8 at byte 14" in result.stderr
        assert result.stdout == ""
        await record.wait_done(timeout=WAIT)
        assert record.aborted and not record.completed
        assert record.body == b"good line\n"

    async def test_empty_input_exits_6(self, emu: Emulator) -> None:
        """Empty input sends nothing (YunHu rejects empty messages) and is status 6."""
        result = await run_cli(*send_args(emu), env=cli_env(emu.token), stdin=b"")
        assert result.rc == 6
        assert emu.streams == []

    async def test_missing_file_exits_6(self, emu: Emulator, tmp_path: Path) -> None:
        """A FILE that cannot be read is status 6."""
        result = await run_cli(*send_args(emu, str(tmp_path / "missing.txt")),
                               env=cli_env(emu.token))
        assert result.rc == 6
        assert "No such file" in result.stderr


class TestInterrupt:
    @pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
    async def test_signal_mid_stream_aborts_and_claims_nothing(
        self, emu: Emulator, signum: int, code: int
    ) -> None:
        """Ctrl-C mid-stream aborts the request, prints nothing on stdout, exits 130."""
        proc = await spawn(*send_args(emu), env=cli_env(emu.token))
        await write(proc, b"first part\n")
        record = await emu.wait_for_stream(1, timeout=WAIT)
        await record.wait_for_bytes(len(b"first part\n"), timeout=WAIT)
        proc.send_signal(signum)
        result = await finish(proc)
        assert result.rc == code
        assert result.stdout == ""
        assert "aborted" in result.stderr
        await record.wait_done(timeout=WAIT)
        assert record.aborted and not record.completed
        message = emu.chat("group", "42")[-1]
        assert message.incomplete and not message.streaming


class TestSecrets:
    async def test_token_never_printed_even_verbose(self, emu: Emulator) -> None:
        """With -vv, neither success nor failure output shows the token."""
        ok = await run_cli(*send_args(emu, "-vv"), env=cli_env(emu.token), stdin=b"hi\n")
        assert ok.rc == 0, ok.stderr
        assert "stream_closed" in ok.stderr  # -vv really logs
        assert_no_token(ok, emu.token)
        emu.faults.drop_after(2)
        broken = await run_cli(*send_args(emu, "-vv", "--retries", "0"),
                               env=cli_env(emu.token), stdin=b"hello\n")
        assert "stream_recovering" in broken.stderr
        assert_no_token(broken, emu.token)

    async def test_literal_token_works_but_warns(self, emu: Emulator) -> None:
        """--token sends, warns that other users can see it, and never echoes it."""
        result = await run_cli(*send_args(emu, "--token", emu.token), env=cli_env(),
                               stdin=b"hi\n")
        assert result.rc == 0, result.stderr
        assert "other local users" in result.stderr
        assert_no_token(result, emu.token)

    async def test_token_file_is_read(self, emu: Emulator, tmp_path: Path) -> None:
        """--token-file supplies the token (surrounding whitespace ignored)."""
        path = tmp_path / "token"
        path.write_text(emu.token + "\n")
        path.chmod(0o600)
        result = await run_cli(*send_args(emu, "--token-file", str(path)), env=cli_env(),
                               stdin=b"hi\n")
        assert result.rc == 0, result.stderr
        assert result.stderr == ""


class TestProgress:
    async def test_progress_is_shown_only_on_a_terminal(self, emu: Emulator) -> None:
        """With stderr on a pty a progress line appears; with a pipe, stderr stays empty."""
        master, slave = pty.openpty()
        try:
            proc = await spawn(*send_args(emu), env=cli_env(emu.token), stderr=slave)
            os.close(slave)
            slave = -1
            result = await finish(proc, b"x" * 6143 + b"\n")
            shown = await asyncio.to_thread(read_pty, master)
        finally:
            os.close(master)
            if slave != -1:
                os.close(slave)
        assert result.rc == 0
        assert "6.0 KiB sent" in shown
        assert emu.token not in shown
        piped = await run_cli(*send_args(emu), env=cli_env(emu.token), stdin=b"y\n")
        assert piped.rc == 0
        assert piped.stderr == ""


def read_pty(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the child's side is closed and everything has been read
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


class TestDemo:
    async def test_demo_prints_each_chunk_and_the_message(self) -> None:
        """`demo` streams the sample into its own emulator and reports chunks and the message."""
        result = await run_cli("demo", "--delay-ms", "1", env=cli_env())
        assert result.rc == 0, result.stderr
        lines = result.stdout.splitlines()
        chunks = [line for line in lines if line.startswith("chunk ")]
        assert len(chunks) >= 2
        assert " ms " in chunks[0] and " B " in chunks[0]
        info = json.loads(lines[-1])
        assert info["recvId"] == "demo" and info["delivery"] == "stream"
        total = sum(int(line.split(" B ")[0].split()[-1]) for line in chunks)
        assert total == len(SAMPLE_ANSWER.encode())

    async def test_demo_with_token_and_to_streams_to_that_service(self, emu: Emulator) -> None:
        """With a token and --to it skips the embedded emulator and streams to --base-url."""
        result = await run_cli("demo", "--delay-ms", "0", "--to", "user:99", "--base-url",
                               emu.base_url, env=cli_env(emu.token))
        assert result.rc == 0, result.stderr
        message = emu.chat("user", "99")[-1]
        assert message.text == SAMPLE_ANSWER
        assert message.content_type == "markdown"
        assert json.loads(result.stdout.splitlines()[-1])["msgId"] == message.msg_id
        assert_no_token(result, emu.token)

    async def test_demo_open_keeps_serving_the_page_until_ctrl_c(self) -> None:
        """With --open it prints the page URL, serves after the answer, and exits 0 on Ctrl-C."""
        import aiohttp

        proc = await spawn("demo", "--open", "--open-wait", "0", "--delay-ms", "0",
                           env=cli_env())
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("still serving"):
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line, "demo exited early"
            lines.append(line.decode())
        page = next(line for line in lines if line.startswith("live page:")).split()[2]
        json.loads(lines[-2])  # the message, just before "still serving"
        async with aiohttp.ClientSession() as session, session.get(page) as resp:
            assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        result = await finish(proc)
        assert result.rc == 0, result.stderr

    async def test_ctrl_c_mid_demo_exits_130_without_a_message_line(self) -> None:
        """Interrupted after its first chunk, the demo aborts and prints no MessageInfo."""
        proc = await spawn("demo", "--delay-ms", "200", env=cli_env())
        assert proc.stdout is not None
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line, "demo exited early"
            if line.startswith(b"chunk "):
                break
        proc.send_signal(signal.SIGINT)
        result = await finish(proc)
        assert result.rc == 130
        assert "msgId" not in result.stdout
        assert "aborted" in result.stderr

    def test_sample_tokens_rebuild_the_answer(self) -> None:
        """The demo's tokens join back into exactly the sample answer."""
        assert "".join(tokenize(SAMPLE_ANSWER)) == SAMPLE_ANSWER
        assert len(tokenize(SAMPLE_ANSWER)) > 50


class TestEmulatorCommand:
    async def test_serves_the_api_until_ctrl_c(self) -> None:
        """`emulator` prints its URL and token, answers the API, and exits 0 on Ctrl-C."""
        from yunhu_stream import Bot

        proc = await spawn("emulator", "--port", "0", "--token", "demo-token", env=cli_env())
        assert proc.stdout is not None
        banner: list[str] = []
        while not any("Ctrl-C" in line for line in banner):
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line, "the emulator exited early"
            banner.append(line.decode())
        base_url = next(line for line in banner if "API base URL" in line).split()[-1]
        token_line = next(line for line in banner if "bot token" in line)
        assert "demo-token" in token_line
        assert any("not a secret" in line for line in banner)
        async with Bot("demo-token", base_url=base_url) as bot:
            async with bot.stream("group:1") as s:
                await s.write("hello emulator")
            history = await bot.messages("group:1")
        assert history[-1]["content"]["text"] == "hello emulator"
        proc.send_signal(signal.SIGINT)
        result = await finish(proc)
        assert result.rc == 0, result.stderr


class TestHelp:
    async def test_every_command_has_help_with_an_example(self) -> None:
        """`--help` exits 0 and shows examples (and the exit codes, where they apply)."""
        commands: list[Sequence[str]] = [[], ["send"], ["emulator"], ["demo"]]
        results = await asyncio.gather(*(
            run_cli(*command, "--help", env=cli_env()) for command in commands
        ))
        for command, result in zip(commands, results, strict=True):
            assert result.rc == 0, command
            assert "examples:" in result.stdout, command
            if command != ["emulator"]:
                assert "exit codes:" in result.stdout and "130" in result.stdout, command


class TestLineCutter:
    def test_whole_lines_go_at_once_and_the_rest_waits(self) -> None:
        """feed() returns up to the last newline and holds the partial line."""
        cutter = LineCutter()
        assert cutter.feed(b"one\ntw") == "one\n"
        assert cutter.partial == "tw"
        assert cutter.feed(b"o\nthr") == "two\n"
        assert cutter.flush() == "thr"
        assert cutter.finish() == ""

    def test_a_very_long_line_is_not_held_back(self) -> None:
        """A line longer than PARTIAL_FLUSH_CHARS is forwarded before its newline."""
        cutter = LineCutter()
        assert len(cutter.feed(b"x" * PARTIAL_FLUSH_CHARS)) == PARTIAL_FLUSH_CHARS

    def test_reject_names_the_absolute_byte_offset(self) -> None:
        """The error gives the offset of the bad byte in the whole input."""
        cutter = LineCutter("reject")
        assert cutter.feed(b"abc\n\xe4") == "abc\n"
        with pytest.raises(InvalidInputError, match="at byte 4"):
            cutter.feed(b"x")

    def test_reject_at_end_of_input_inside_a_sequence(self) -> None:
        """Input that ends inside a UTF-8 sequence is rejected at finish()."""
        cutter = LineCutter("reject")
        assert cutter.feed("ok\n中".encode()[:-1]) == "ok\n"
        with pytest.raises(InvalidInputError, match="at byte 3"):
            cutter.finish()

    @given(st.text(), st.lists(st.integers(min_value=0, max_value=200), max_size=8))
    def test_any_split_of_valid_utf8_gives_back_the_text(
        self, text: str, cuts: list[int]
    ) -> None:
        """However the bytes are split into reads, the forwarded text equals the input."""
        data = text.encode("utf-8", "surrogatepass")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return  # lone surrogates are not valid UTF-8 input
        points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
        for mode in ("replace", "reject"):
            cutter = LineCutter(mode)  # type: ignore[arg-type]
            out = "".join(cutter.feed(data[a:b]) for a, b in itertools.pairwise(points))
            assert out + cutter.finish() == text
