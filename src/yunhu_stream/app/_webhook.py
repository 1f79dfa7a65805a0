"""The aiohttp side of bot apps: the webhook route and the cleanup context owning the Bot."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .. import errors
from .._client import Bot
from .._exceptions import EventParseError
from .._log import get_logger
from ..events._parse import parse_event
from ._dispatch import RETRY_AFTER_SECONDS, Dispatcher

log = get_logger("app")

BOT_KEY: web.AppKey[Bot] = web.AppKey("yunhu_stream.bot", Bot)
"""``app[BOT_KEY]``: the Bot that :func:`setup` created, once the app has started."""

DISPATCHER_KEY: web.AppKey[Dispatcher] = web.AppKey("yunhu_stream.dispatcher", Dispatcher)
"""``app[DISPATCHER_KEY]``: the Dispatcher that :func:`setup` mounted."""

_READ_SIZE = 64 * 1024


def setup(
    app: web.Application,
    token: str | None = None,
    *,
    base_url: str | None = None,
    path: str = "/yunhu",
    dispatcher: Dispatcher | None = None,
    bot_options: Mapping[str, Any] | None = None,
) -> Dispatcher:
    """Add a YunHu webhook to an aiohttp application.

    Mounts ``POST path``, and adds a cleanup context that creates the Bot when the
    app starts (``app[BOT_KEY]``) and, when it stops, waits for running handlers
    (see :class:`Dispatcher`) and then closes the Bot.

    Args:
        app: The application, before it starts.
        token: The bot token; defaults to ``$YUNHU_TOKEN``.
        base_url: API root; defaults as for :class:`~yunhu_stream.Bot`.
        path: Where YunHu POSTs events (the URL configured for the bot).
        dispatcher: A Dispatcher to mount; a new one by default.
        bot_options: More keyword arguments for :class:`~yunhu_stream.Bot`
            (``response_timeout``, ``rate_limit``…).

    Returns:
        The Dispatcher: register handlers with its ``on_message``, ``on_command``
        and ``on_event`` decorators.

    Raises:
        ConfigurationError: no token (and no ``$YUNHU_TOKEN``), a bad ``path``, or
            a ``bot_options`` key that is not a Bot option. Bad option *values* are
            reported by ``Bot()`` when the app starts.
        RuntimeError: the app already has a YunHu webhook, or has started, or the
            dispatcher is mounted on another app.
    """
    if not isinstance(app, web.Application):
        raise TypeError(f"setup() needs an aiohttp.web.Application, not {type(app).__name__}")
    if app.frozen:
        raise RuntimeError("setup() must be called before the application starts")
    if DISPATCHER_KEY in app:
        raise RuntimeError("this application already has a YunHu webhook (setup() ran twice)")
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        raise errors.ConfigurationError(f"path must start with '/' and hold no spaces: {path!r}")
    if token is None and not os.environ.get("YUNHU_TOKEN", "").strip():
        raise errors.ConfigurationError(
            "no bot token: pass token=... or set the YUNHU_TOKEN environment variable"
        )
    options = dict(bot_options or {})
    for reserved in ("token", "base_url"):
        if reserved in options:
            raise errors.ConfigurationError(
                f"pass {reserved} as setup()'s own argument, not in bot_options"
            )
    accepted = [p for p in inspect.signature(Bot).parameters if p not in ("token", "base_url")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise errors.ConfigurationError(
            f"bot_options has {', '.join(map(repr, unknown))}, which Bot() does not take; "
            f"accepted: {', '.join(accepted)}"
        )
    dispatcher = dispatcher if dispatcher is not None else Dispatcher()
    if not isinstance(dispatcher, Dispatcher):
        raise TypeError(f"dispatcher must be a Dispatcher, not {type(dispatcher).__name__}")
    dispatcher.mount()

    app[DISPATCHER_KEY] = dispatcher
    app.router.add_post(path, _webhook_handler(dispatcher))

    async def bot_context(app: web.Application) -> AsyncIterator[None]:
        bot = Bot(token, base_url=base_url, **options)
        app[BOT_KEY] = bot
        # The path is not logged: an unguessable path is the webhook's only secret.
        log.info("webhook_ready")
        try:
            yield
        finally:
            try:
                await dispatcher.shutdown()
            finally:
                await bot.aclose()

    app.cleanup_ctx.append(bot_context)
    return dispatcher


def _webhook_handler(
    dispatcher: Dispatcher,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if dispatcher.closing:
            return _reject(dispatcher, request, 503, "shutting down")
        try:
            body = await asyncio.wait_for(
                _read_limited(request, dispatcher.max_body_bytes), dispatcher.body_timeout
            )
        except (web.RequestPayloadError, ConnectionError) as exc:
            # A corrupt gzip/deflate body, or the sender went away mid-body.
            return _reject(dispatcher, request, 400, f"body could not be read: {exc}")
        except asyncio.TimeoutError:
            # A body trickling in (slowloris): free the connection.
            return _reject(
                dispatcher, request, 408,
                f"body not received within body_timeout={dispatcher.body_timeout:g} s",
            )
        if body is None:
            return _reject(
                dispatcher, request, 413, f"body larger than {dispatcher.max_body_bytes} bytes"
            )
        try:
            event = parse_event(body)
        except EventParseError as exc:
            return _reject(dispatcher, request, 400, str(exc))
        outcome = await dispatcher.handle(event, request.app[BOT_KEY])
        if outcome == "closing":
            return _reject(dispatcher, request, 503, "shutting down")
        if outcome == "busy":
            # Not acknowledged, not remembered: YunHu delivers it again later.
            return _reject(
                dispatcher, request, 503,
                f"busy: {dispatcher.max_handlers} handlers running (max_handlers)",
            )
        return web.json_response({"ok": True, "eventId": event.event_id, "status": outcome})

    return handle


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    parts: list[bytes] = []
    size = 0
    # Counted after aiohttp's decompression, so a small gzip bomb is caught too.
    async for chunk in request.content.iter_chunked(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _reject(dispatcher: Dispatcher, request: web.Request, status: int, reason: str) -> web.Response:
    dispatcher.count_rejected()
    # A 503 under load would otherwise print one warning per refused event.
    (log.info if status == 503 else log.warning)(
        "webhook_rejected",
        status=status,
        reason=reason[:200],
        remote=request.remote,
        content_length=request.content_length,
    )
    response = web.json_response({"ok": False, "error": reason[:200]}, status=status)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if status == 408:
        response.force_close()
    return response
