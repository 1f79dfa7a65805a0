"""The stream request's body object, as aiohttp sees it."""

from __future__ import annotations

import pytest

from yunhu_stream._transport import BodySink, _StreamPayload


async def _no_body(sink: BodySink) -> None:
    return None


def test_a_streamed_body_cannot_be_read_back() -> None:
    """aiohttp may ask a payload for its text (to log or retry it); a streamed body has
    none to give and says so, instead of returning a wrong or empty text."""
    payload = _StreamPayload(_no_body)
    with pytest.raises(TypeError, match=r"^a streamed request body cannot be read back$"):
        payload.decode()
    assert payload.content_type == "text/plain; charset=utf-8"
