"""The write fast path (a write that only appends) keeps every promise of the general one.

``write()`` appends without any other work while the buffer says it has room for that;
these tests pin what must still hold when nothing yields between writes: the buffer
bound, and that no write lands once the stream is ending.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from yunhu_stream import Bot, errors
from yunhu_stream.emulator import Emulator

pytestmark = pytest.mark.anyio

HANG = 30  # seconds: turns a hang into a failure, measures nothing
LIMIT = 4096


async def test_writes_that_never_yield_never_hold_more_than_max_buffer_bytes(
    emulator: Emulator,
) -> None:
    fault = emulator.faults.stall(after_bytes=1)  # the socket fills, then the buffer must
    try:
        async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None,
                       max_buffer_bytes=LIMIT) as bot:
            s = bot.stream(to="user:1")
            most = 0

            async def writer() -> None:
                nonlocal most
                for _ in range(20_000):  # 20 MB: far more than a loopback socket holds
                    await s.write("x" * 1000)
                    most = max(most, s.stats.buffered_bytes)

            task = asyncio.ensure_future(writer())
            try:
                with anyio.fail_after(HANG):
                    while s.stats.buffered_bytes + 1000 <= LIMIT or not s.stats.bytes_sent:
                        await asyncio.sleep(0.01)
                for _ in range(10):
                    await asyncio.sleep(0)
                assert not task.done()  # the writer waits for room ...
                assert most <= LIMIT  # ... and never held more than the limit
                await s.abort()
                with anyio.fail_after(HANG), pytest.raises(errors.StreamClosedError):
                    await task
            finally:
                task.cancel()
                await s.abort()
    finally:
        fault.release()


@pytest.mark.parametrize("end", ["abort", "close"])
async def test_no_write_lands_once_the_stream_began_to_end_with_room_left(
    emulator: Emulator, end: str
) -> None:
    async with Bot(emulator.token, base_url=emulator.base_url, rate_limit=None) as bot:
        s = bot.stream(to="user:1")
        await s.write("kept ")
        await s.write("also kept")  # the buffer has room: this one only appended
        ending = asyncio.ensure_future(s.abort() if end == "abort" else s.close())
        await asyncio.sleep(0)  # abort() / close() is now waiting for the request
        with pytest.raises(errors.StreamClosedError):
            await s.write(" lost")
        with anyio.fail_after(HANG):
            info = await ending
        assert s.text == "kept also kept"
        if end == "close":
            assert info is not None
            assert emulator.message(info.msg_id).text == "kept also kept"
