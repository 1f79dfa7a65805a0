"""``POST bot/send-stream``: a message that appears at the first chunk and grows.

A ``parentId`` query parameter (ErisPulse-YunhuAdapter sends one) is accepted and kept as
the message's quote; YunHu does not document what it does there.
"""

from __future__ import annotations

import codecs
import time

from aiohttp import web

from ._core import Core, EnvelopeResponse, envelope
from ._faults import Fault
from ._store import Chunk, StoredMessage, StreamRecord
from ._world import Refused

EMPTY_MSG = "消息内容不能为空"


def _check_query(record: StreamRecord) -> str | None:
    if not record.recv_id:
        return "recvId不能为空 (query parameter recvId is required)"
    if record.recv_type not in ("user", "group"):
        return f"recvType参数错误 (recvType must be 'user' or 'group', not {record.recv_type!r})"
    if record.content_type not in ("text", "markdown"):
        return (
            "contentType参数错误 (contentType must be 'text' or 'markdown' for send-stream, "
            f"not {record.content_type!r})"
        )
    return None


async def send_stream(core: Core, request: web.Request, fault: Fault | None) -> web.StreamResponse:
    """Handle one streamed message; see the module docstring of ``_core`` for the order."""
    query = request.query
    record = StreamRecord(
        query.get("recvId", ""),
        query.get("recvType", ""),
        query.get("contentType", ""),
        core.changes,
        fault=fault.kind if fault else None,
    )
    core.streams.append(record)
    core.changes.notify()
    message: StoredMessage | None = None
    try:
        response = core.gate(request, "send-stream", fault)
        if response is None:
            problem = _check_query(record)
            response = envelope(1002, problem) if problem else None
        if response is None:
            try:
                core.world.check_reach(record.recv_type, record.recv_id)
            except Refused as exc:
                response = envelope(exc.code, exc.msg)
        if response is not None:
            return _answer(record, response)

        decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def on_chunk(chunk: Chunk) -> None:
            nonlocal message
            record.chunks.append(chunk)
            if message is None:
                message = StoredMessage(
                    core.new_msg_id(),
                    record.recv_type,
                    record.recv_id,
                    record.content_type,
                    "",
                    core.bot_id,
                    core.bot_nickname,
                    parent_id=query.get("parentId") or None,
                    streamed=True,
                    streaming=True,
                    stream=record,
                )
                record.msg_id = message.msg_id
                core.store.add(message)
            text = decoder.decode(chunk.data)
            if message.edits == 0:
                message.text += text
            core.store.changed(message)

        await core.read_body(request, fault, on_chunk)
        record.completed = True
        if message is None:
            return _answer(record, envelope(1002, EMPTY_MSG))
        message.streaming = False
        try:
            record.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            message.recalled = True
            core.store.changed(message)
            return _answer(
                record,
                envelope(
                    1002, f"消息内容不是有效的UTF-8编码 (invalid UTF-8 at body byte {exc.start})"
                ),
            )
        core.store.changed(message)
        late = await core.finish(fault)
        if late is not None:
            return _answer(record, late)
        return _answer(
            record,
            envelope(
                1,
                "success",
                {
                    "messageInfo": {
                        "msgId": message.msg_id,
                        "recvId": record.recv_id,
                        "recvType": record.recv_type,
                    }
                },
            ),
        )
    except BaseException:
        # Dropped, cancelled at shutdown, or a bug: what arrived stays in the chat, the way a
        # real chat keeps showing a stream that was cut off.
        if not record.completed:
            record.aborted = True
        if message is not None and message.streaming:
            message.streaming = False
            message.incomplete = True
            core.store.changed(message)
        raise
    finally:
        if record.ended is None:
            record.ended = time.monotonic()
        core.changes.notify()


def _answer(record: StreamRecord, response: web.Response) -> web.Response:
    record.status = response.status
    record.code = response.code if isinstance(response, EnvelopeResponse) else None
    record.ended = time.monotonic()
    return response
