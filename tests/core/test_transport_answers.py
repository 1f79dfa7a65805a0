"""How the transport reads and judges an answer: the size cap and the YunHu envelope.

``read_capped`` runs against a real aiohttp server on loopback serving each answer with
and without a Content-Length and gzip-encoded; ``parse_envelope`` is a pure function of
(status, body). Small limits stand in for the real 256 KiB so each edge is exact.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from tests._support import serving
from yunhu_stream import errors
from yunhu_stream._transport import Transport, parse_envelope, read_capped

pytestmark = pytest.mark.anyio

LIMIT = 1000

Fetch = Callable[..., Awaitable[bytes]]


@pytest.fixture
async def fetch() -> AsyncIterator[Fetch]:
    """``fetch(body, how, limit=LIMIT)``: read_capped(limit) of ``body`` served as ``how``:
    ``"length"`` (with Content-Length), ``"chunked"`` (without), or ``"gzip"``
    (gzip-encoded, with the compressed Content-Length)."""
    served: dict[str, tuple[bytes, str]] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        body, how = served["answer"]
        if how == "length":
            return web.Response(body=body)
        if how == "gzip":
            return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        piece = 300 if len(body) < 64 * 1024 else 32 * 1024
        for i in range(0, len(body), piece):
            await resp.write(body[i:i + piece])
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    async with serving(app) as url, aiohttp.ClientSession() as session:

        async def get(body: bytes, how: str, limit: int = LIMIT) -> bytes:
            served["answer"] = (body, how)
            async with session.get(f"{url}/") as resp:
                assert (resp.content_length is None) == (how == "chunked")
                return await read_capped(resp, limit, "bot/send")

        yield get


class TestReadCapped:
    @pytest.mark.parametrize("how", ["length", "chunked", "gzip"])
    async def test_an_answer_of_exactly_the_limit_is_read_whole(
        self, fetch: Fetch, how: str
    ) -> None:
        body = bytes(range(256)) * 3 + b"x" * (LIMIT - 768)
        assert await fetch(body, how) == body

    @pytest.mark.parametrize("how", ["length", "chunked", "gzip"])
    async def test_one_byte_past_the_limit_is_refused(self, fetch: Fetch, how: str) -> None:
        with pytest.raises(errors.InvalidResponseError) as info:
            await fetch(b"y" * (LIMIT + 1), how)
        assert info.value.body == f"answer larger than {LIMIT} bytes (not read further)"
        assert info.value.endpoint == "bot/send" and info.value.status == 200

    async def test_a_small_gzip_answer_that_inflates_past_the_limit_is_refused(
        self, fetch: Fetch
    ) -> None:
        """Its Content-Length is far under the limit: the cap counts what it inflates to."""
        with pytest.raises(errors.InvalidResponseError, match="larger than 1000 bytes"):
            await fetch(b"z" * (50 * LIMIT), "gzip")

    async def test_an_answer_read_in_pieces_is_joined_and_counted_whole(
        self, fetch: Fetch
    ) -> None:
        """Past 64 KiB the answer arrives in several reads: they are joined as they
        came, and the cap counts their sum (no one piece is over it)."""
        limit = 150 * 1024
        body = bytes(range(256)) * (limit // 256)
        assert await fetch(body, "chunked", limit) == body
        assert await fetch(body, "gzip", limit) == body
        with pytest.raises(errors.InvalidResponseError, match=f"larger than {limit} bytes"):
            await fetch(body + b"!", "chunked", limit)

    async def test_an_empty_answer_is_empty(self, fetch: Fetch) -> None:
        assert await fetch(b"", "chunked") == b""
        assert await fetch(b"", "length") == b""


class TestParseEnvelope:
    def test_code_1_returns_data(self) -> None:
        assert parse_envelope(200, b'{"code": 1, "data": {"a": 1}}', "bot/send") == {"a": 1}
        assert parse_envelope(299, b'{"code": 1}', "bot/send") is None

    @pytest.mark.parametrize("status", [300, 301, 404, 502])
    def test_a_status_from_300_up_is_an_http_error_whatever_the_body(self, status: int) -> None:
        with pytest.raises(errors.HTTPStatusError) as info:
            parse_envelope(status, b'{"code": 1, "data": null}', "bot/send")
        assert (info.value.status, info.value.endpoint) == (status, "bot/send")
        assert info.value.body == '{"code": 1, "data": null}'

    @pytest.mark.parametrize("body", [b"", b"[]", b'"text"', b"null", b'{"msg": "x"}',
                                      b'{"code": "1"}', b'{"code": 1.0}', b"<html>"])
    def test_a_body_that_is_not_an_envelope_is_an_invalid_response(self, body: bytes) -> None:
        with pytest.raises(errors.InvalidResponseError) as info:
            parse_envelope(200, body, "bot/edit")
        assert (info.value.status, info.value.endpoint, info.value.body) == (
            200, "bot/edit", body.decode())

    def test_an_excerpt_keeps_what_utf8_cannot_decode_as_replacement_characters(
        self,
    ) -> None:
        with pytest.raises(errors.HTTPStatusError) as info:
            parse_envelope(502, b"bad \xff\xfe gateway", "bot/send")
        assert info.value.body == "bad \ufffd\ufffd gateway"

    def test_an_excerpt_is_cut_and_redacted(self) -> None:
        body = b"token=abc123&x " + b"s3cret " * 100
        with pytest.raises(errors.InvalidResponseError) as info:
            parse_envelope(200, body, "bot/send", secrets=["s3cret"])
        assert info.value.body.startswith("token=***&x *** ***")
        assert "s3cret" not in info.value.body and "abc123" not in info.value.body
        assert len(info.value.body) <= 300

    @pytest.mark.parametrize(("envelope", "msg"), [
        (b'{"code": 1002, "msg": "bad", "message": "other"}', "bad"),
        (b'{"code": 1002, "message": "from message"}', "from message"),
        (b'{"code": 1002}', ""),
    ])
    def test_an_error_code_takes_msg_then_message(self, envelope: bytes, msg: str) -> None:
        with pytest.raises(errors.InvalidParameterError) as info:
            parse_envelope(200, envelope, "bot/send")
        assert (info.value.code, info.value.msg, info.value.endpoint) == (1002, msg, "bot/send")
        assert str(info.value) == f"bot/send: code 1002: {msg}"

    def test_an_error_message_is_redacted(self) -> None:
        with pytest.raises(errors.APIError) as info:
            parse_envelope(200, b'{"code": 1003, "msg": "token tok-42 is wrong"}', "bot/send",
                           secrets=["tok-42"])
        assert info.value.msg == "token *** is wrong"


class _Api:
    """A loopback server that records each request and answers what it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.answer: Callable[[], web.StreamResponse] = lambda: web.json_response({"code": 1})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, await request.read(), dict(request.headers)))
        return self.answer()


@pytest.fixture
async def api() -> AsyncIterator[tuple[_Api, Transport]]:
    server = _Api()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    async with serving(app) as url:
        transport = Transport("tok-secret", f"{url}/open-apis/v1", session=None,
                              connect_timeout=5, response_timeout=5)
        try:
            yield server, transport
        finally:
            await transport.aclose()


class TestCall:
    async def test_a_json_body_goes_as_utf8_json_with_its_content_type(
        self, api: tuple[_Api, Transport]
    ) -> None:
        server, transport = api
        await transport.call("POST", "bot/send", payload={"text": "你好 ✓"})
        [(path, body, headers)] = server.requests
        assert path == "/open-apis/v1/bot/send?token=tok-secret"
        assert body == '{"text": "你好 ✓"}'.encode()  # not \\u-escaped
        assert headers["Content-Type"] == "application/json"

    async def test_text_utf8_cannot_encode_is_a_configuration_error_and_sends_nothing(
        self, api: tuple[_Api, Transport]
    ) -> None:
        server, transport = api
        with pytest.raises(errors.ConfigurationError) as info:
            await transport.call("POST", "bot/send", payload={"text": "a\ud800b"})
        assert str(info.value) == ("bot/send: the request holds text UTF-8 cannot encode "
                                   "(a lone surrogate); use valid Unicode text")
        assert server.requests == []

    async def test_a_redirect_is_not_followed(self, api: tuple[_Api, Transport]) -> None:
        server, transport = api
        server.answer = lambda: web.Response(status=302, headers={"Location": "/elsewhere"})
        with pytest.raises(errors.HTTPStatusError) as info:
            await transport.call("GET", "bot/messages")
        assert info.value.status == 302
        assert len(server.requests) == 1

    async def test_errors_name_the_endpoint_and_never_the_token(
        self, api: tuple[_Api, Transport]
    ) -> None:
        server, transport = api
        server.answer = lambda: web.Response(status=500, text="oops tok-secret")
        with pytest.raises(errors.HTTPStatusError) as http:
            await transport.call("POST", "bot/edit", payload={})
        server.answer = lambda: web.Response(body=b"x" * (300 * 1024))
        with pytest.raises(errors.InvalidResponseError) as big:
            await transport.call("POST", "bot/edit", payload={})
        server.answer = lambda: web.json_response({"code": 1003, "msg": "bad tok-secret"})
        with pytest.raises(errors.UnauthorizedError) as api_error:
            await transport.call("POST", "bot/edit", payload={})
        for exc in (http.value, big.value, api_error.value):
            assert exc.endpoint == "bot/edit"
            assert "tok-secret" not in str(exc)
        assert http.value.body == "oops ***"


class TestSession:
    async def test_a_session_the_caller_gives_is_the_one_requests_use(
        self, api: tuple[_Api, Transport]
    ) -> None:
        server, ours = api
        async with aiohttp.ClientSession(headers={"X-Mine": "1"}) as mine:
            transport = Transport("tok-secret", ours.base_url, session=mine,
                                  connect_timeout=5, response_timeout=5)
            assert transport.session() is mine
            await transport.call("POST", "bot/send", payload={})
            await transport.aclose()
            assert not mine.closed  # the caller's to close
        assert server.requests[-1][2]["X-Mine"] == "1"

    async def test_a_closed_transport_says_the_bot_was_closed(
        self, api: tuple[_Api, Transport]
    ) -> None:
        _, transport = api
        await transport.aclose()
        with pytest.raises(errors.BotClosedError) as info:
            transport.session()
        assert str(info.value) == "this Bot has been closed"
