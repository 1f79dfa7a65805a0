"""Share one bot's limits, dedup and chat order between processes through Redis.

Needs the extra: ``pip install 'yunhu-stream[redis]'`` (redis-py's asyncio client).
Nothing else in yunhu-stream imports this module unless Redis is configured, with
``Bot(..., redis="redis://…")``, ``Bot(..., redis=RedisStore(...))`` or the
environment variable ``YUNHU_REDIS_URL``.

What is shared (keys under ``prefix``, every one named by a hash of the token, never
the token itself):

* the rate limit: one sliding window per endpoint, in one server-side Lua script
  (counted on Redis's clock, so machines need no synchronised clocks); waiting
  processes queue in arrival order, so none starves. A granted request's entry is
  re-stamped when its first byte leaves, as in the in-process limiter;
* the dedup of webhook ``eventId`` values (``SET NX`` with an expiry), used by
  ``BotApp`` and ``app.setup()``;
* optionally the order of replies in one chat (``chat_order=True``): a handler
  starts only when every earlier event of its chat (by event time) has finished,
  or the bounded wait ran out.

When Redis cannot be reached, each piece falls back to what one process does alone
(the local limiter, the local dedup, no ordering), logs ``redis_unavailable`` once,
and tries Redis again after ``retry_after`` seconds. No reply is lost to it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import math
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import _validate as validate
from ._exceptions import ConfigurationError
from ._log import get_logger
from ._ratelimit import RateLimiter, Slot

log = get_logger("client")

__all__ = ["RedisStore", "SharedBot"]

# KEYS: window, queue, alive, ticket counter
# ARGV: n, per_ms, waiter, member, waiter_ttl_ms
# Returns 0 when granted, else milliseconds to wait before asking again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, per, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
for _, w in ipairs(gone) do redis.call('ZREM', KEYS[2], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[3])
end
redis.call('ZADD', KEYS[3], now, ARGV[3])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ttl * 2) end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local count = redis.call('ZCARD', KEYS[1])
if head == ARGV[3] and count < n then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], per * 2)
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[3])
  return 0
end
if count < n then return 2 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + per - now)
"""

# KEYS: window; ARGV: member, per_ms. The request's bytes leave now: count it from now.
_RESTAMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 0
"""

# KEYS: chat queue (zset: event time → event id), alive (zset: event id → last ask),
# lease; ARGV: event id, event time, lease_ms, alive_ttl_ms.
# Returns 1 when this event may start (it holds the lease now), else 0.
_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
for _, w in ipairs(gone) do redis.call('ZREM', KEYS[1], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], lease * 4)
redis.call('PEXPIRE', KEYS[2], lease * 4)
local holder = redis.call('GET', KEYS[3])
if holder == ARGV[1] then return 1 end
if holder then return 0 end
if redis.call('ZRANGE', KEYS[1], 0, 0)[1] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[1], 'PX', lease)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: chat queue, alive, lease; ARGV: event id. Its handler ended (or stopped waiting).
_DONE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 0
"""

# KEYS: a claim; ARGV: this store's id. Delete the claim only if it is ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

MAX_CONNECTIONS = 32
"""Connections one store opens to Redis at most (more commands wait for one)."""

_CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def token_key(token: str) -> str:
    """The name the token's keys carry: a hash, so the token never reaches Redis."""
    return hashlib.sha256(b"yunhu-stream:" + token.encode()).hexdigest()[:32]


class RedisStore:
    """One Redis server shared by every Bot, BotApp and integration of a bot.

    Args:
        url: ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``).
            Defaults to ``$YUNHU_REDIS_URL``.
        prefix: Prefix of every key this store writes.
        dedup_ttl: Seconds an ``eventId`` is remembered to drop redeliveries.
        chat_order: Start the handlers of one chat's events in event order across
            every worker (each waits for the earlier ones to finish). Off by default.
        chat_order_wait: Most seconds a handler waits for its turn, and the lease of
            a running handler on its chat: past it the next event starts anyway.
        retry_after: Seconds to use the local fallback after Redis failed, before
            trying Redis again.
        timeout: Seconds one Redis command may take before it counts as a failure.

    Raises:
        ConfigurationError: no URL, or an option out of range.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "yunhu",
        dedup_ttl: float = 24 * 3600.0,
        chat_order: bool = False,
        chat_order_wait: float = 30.0,
        retry_after: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        url = url if url is not None else os.environ.get("YUNHU_REDIS_URL")
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                "RedisStore needs a redis://, rediss:// or unix:// URL "
                "(or the YUNHU_REDIS_URL environment variable), not "
                f"{_hide_password(url)!r}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise validate.fail("prefix", "a non-empty str", prefix)
        self.prefix = prefix
        self.dedup_ttl = validate.seconds("dedup_ttl", dedup_ttl)
        self.chat_order = validate.boolean("chat_order", chat_order)
        self.chat_order_wait = validate.seconds("chat_order_wait", chat_order_wait)
        self.retry_after = validate.seconds("retry_after", retry_after, zero=True)
        self.timeout = validate.seconds("timeout", timeout)
        self._url = url
        # A blocking pool: a burst of streams waits for a connection (up to ``timeout``)
        # instead of failing, which would send every limiter to its local fallback.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=self.timeout,
            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
        )
        self._redis: aioredis.Redis = aioredis.Redis.from_pool(pool)  # closes the pool too
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._restamp = self._redis.register_script(_RESTAMP)
        self._turn = self._redis.register_script(_TURN)
        self._done = self._redis.register_script(_DONE)
        self._release = self._redis.register_script(_RELEASE)
        self._id = uuid.uuid4().hex  # this process's (this store's) name in the queues
        self._down_until = 0.0
        self._warned = False
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"RedisStore({_hide_password(self._url)!r}, prefix={self.prefix!r})"

    async def aclose(self) -> None:
        """Close the connections (waiting for re-stamps still on their way)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()

    async def ping(self) -> bool:
        """True if Redis answers now."""
        try:
            return bool(await self._redis.ping())
        except _CONNECTION_ERRORS:
            return False

    # -- when Redis is down ----------------------------------------------------------------

    def _available(self) -> bool:
        return asyncio.get_running_loop().time() >= self._down_until

    def _failed(self, what: str, exc: BaseException) -> None:
        self._down_until = asyncio.get_running_loop().time() + self.retry_after
        if not self._warned:
            self._warned = True
            log.warning("redis_unavailable", what=what, error=type(exc).__name__,
                        fallback="local", retry_after=self.retry_after)

    def _recovered(self) -> None:
        if self._warned:
            self._warned = False
            log.info("redis_available")

    # -- the rate limit --------------------------------------------------------------------

    def for_token(self, token: str) -> SharedBot:
        """What one bot token shares (the :class:`~yunhu_stream.Bot` asks)."""
        return SharedBot(self, token)

    async def acquire_slot(self, base: str, rate: float, local: RateLimiter) -> Slot:
        """A slot in the shared window named ``base``, in arrival order across
        processes; ``local`` when Redis cannot be reached."""
        if self._available():
            keys = [f"{base}:window", f"{base}:queue", f"{base}:alive", f"{base}:ticket"]
            n = max(1, int(rate))
            per_ms = math.ceil((n / rate + RateLimiter.MARGIN) * 1000)
            async with self._lock(base):  # one waiter per process in the shared queue
                slot = await self._acquire_shared(keys, n, per_ms)
            if slot is not None:
                return slot
        return await local.acquire()

    async def _acquire_shared(self, keys: list[str], n: int, per_ms: int) -> Slot | None:
        """A slot in the shared window, or None if Redis failed (use the local one)."""
        loop = asyncio.get_running_loop()
        waiter = f"{self._id}:{keys[0]}"
        ttl = per_ms * 2 + int(self.timeout * 1000) + 1000
        while True:
            member = uuid.uuid4().hex
            try:
                wait = int(await self._acquire(keys=keys, args=[n, per_ms, waiter, member, ttl]))
            except _CONNECTION_ERRORS as exc:
                self._failed("rate_limit", exc)
                return None
            if wait == 0:
                self._recovered()
                return Slot(loop.time(), functools.partial(self._sent, keys[0], member, per_ms))
            await asyncio.sleep(wait / 1000)

    def _sent(self, window: str, member: str, per_ms: int) -> None:
        task = asyncio.get_running_loop().create_task(self._restamp_quietly(window, member, per_ms))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restamp_quietly(self, window: str, member: str, per_ms: int) -> None:
        try:
            await self._restamp(keys=[window], args=[member, per_ms])
        except _CONNECTION_ERRORS as exc:
            self._failed("rate_limit", exc)

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    # -- dedup -----------------------------------------------------------------------------

    async def first_delivery(self, token_hash: str, event_id: str) -> bool | None:
        """True the first time any worker asks about ``event_id``, False for a
        redelivery, None when Redis cannot be reached (decide locally)."""
        if not self._available():
            return None
        key = self._event_key(token_hash, event_id)
        try:
            first = await self._redis.set(key, self._id, nx=True,
                                          px=max(1, int(self.dedup_ttl * 1000)))
        except _CONNECTION_ERRORS as exc:
            self._failed("dedup", exc)
            return None
        self._recovered()
        return bool(first)

    def _event_key(self, token_hash: str, event_id: str) -> str:
        # A digest: fixed size whatever the id, and any str (even a lone surrogate) works.
        raw = event_id.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        return f"{self.prefix}:{token_hash}:event:{digest}"

    async def forget_delivery(self, token_hash: str, event_id: str) -> None:
        """Undo :meth:`first_delivery` for an event that was refused (busy, shutting down),
        so its redelivery runs on whichever worker gets it."""
        if not self._available():
            return
        try:
            await self._redis.unlink(self._event_key(token_hash, event_id))
        except _CONNECTION_ERRORS as exc:
            self._failed("dedup", exc)

    # -- the registry of in-flight streams ------------------------------------------------

    REGISTRY_TTL = 600.0
    """Seconds a stream's entry lives after its last update (a crashed process's entry
    then stops holding back other processes' recoveries)."""

    def _registry_keys(self, token_hash: str, chat: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{token_hash}:inflight:{chat}"
        return f"{base}:live", f"{base}:info", f"{base}:delivered"

    @property
    def instance_id(self) -> str:
        """This store's name in the shared queues and the registry (random)."""
        return self._id

    async def registry_update(self, token_hash: str, chat: str, key: str, started_ms: int,
                              sent_bytes: int, msg_id: str | None) -> None:
        """Record (or refresh) one running stream; ``msg_id``: a message it delivered."""
        if not self._available():
            return
        live, info, delivered = self._registry_keys(token_hash, chat)
        ttl_ms = int(self.REGISTRY_TTL * 1000)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(live, {key: _now_ms()})
                pipe.hset(info, key, f"{started_ms} {sent_bytes}")
                if msg_id is not None:
                    pipe.sadd(delivered, msg_id)
                    pipe.pexpire(delivered, ttl_ms * 6)
                pipe.pexpire(live, ttl_ms)
                pipe.pexpire(info, ttl_ms)
                await pipe.execute()
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)

    async def registry_remove(self, token_hash: str, chat: str, key: str) -> None:
        """Forget one stream (it ended)."""
        if not self._available():
            return
        live, info, _ = self._registry_keys(token_hash, chat)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(live, key)
                pipe.hdel(info, key)
                await pipe.execute()
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)

    async def registry_live(self, token_hash: str, chat: str) -> dict[str, tuple[int, int]]:
        """Other processes' running streams of ``chat``: key → (started ms, bytes)."""
        if not self._available():
            return {}
        live, info, _ = self._registry_keys(token_hash, chat)
        try:
            keys = [_text(k) for k in await self._redis.zrangebyscore(
                live, _now_ms() - int(self.REGISTRY_TTL * 1000), "+inf")]
            found = await self._redis.hmget(info, keys) if keys else []
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)
            return {}
        out: dict[str, tuple[int, int]] = {}
        for name, raw in zip(keys, found, strict=True):
            if raw is None or name.startswith(self._id + ":"):
                continue
            started, sent = _text(raw).split()
            out[name] = (int(started), int(sent))
        return out

    async def registry_delivered(self, token_hash: str, chat: str) -> set[str]:
        """Message ids streams of any process delivered in ``chat``."""
        if not self._available():
            return set()
        try:
            members = await self._redis.smembers(self._registry_keys(token_hash, chat)[2])
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)
            return set()
        return {_text(m) for m in members}

    async def claim(self, token_hash: str, msg_id: str) -> bool:
        """Take ``msg_id`` for a recovery of this store; False if another one has it."""
        if not self._available():
            return True
        try:
            got = await self._redis.set(f"{self.prefix}:{token_hash}:claim:{msg_id}", self._id,
                                        nx=True, px=int(self.REGISTRY_TTL * 1000))
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)
            return True
        return bool(got)

    async def release(self, token_hash: str, msg_id: str) -> None:
        """Give up a claim of this store."""
        if not self._available():
            return
        key = f"{self.prefix}:{token_hash}:claim:{msg_id}"
        try:
            await self._release(keys=[key], args=[self._id])
        except _CONNECTION_ERRORS as exc:
            self._failed("registry", exc)

    # -- chat order ------------------------------------------------------------------------

    @asynccontextmanager
    async def chat_turn(self, token_hash: str, chat: str, event_id: str,
                        event_time: int) -> AsyncIterator[bool]:
        """Hold the chat's turn while the body runs; yields whether the turn was had
        (False: ordering off, Redis down, or the bounded wait ran out)."""
        if not self.chat_order or not self._available():
            yield False
            return
        base = f"{self.prefix}:{token_hash}:chat:{chat}"
        keys = [f"{base}:queue", f"{base}:alive", f"{base}:lease"]
        lease = max(1, int(self.chat_order_wait * 1000))
        alive = int(self.timeout * 1000) + 2000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.chat_order_wait
        had = False
        try:
            while True:
                if await self._turn(keys=keys, args=[event_id, event_time, lease, alive]):
                    had = True
                    break
                if loop.time() >= deadline:
                    log.warning("chat_order_wait_expired", event_id=event_id,
                                waited=self.chat_order_wait)
                    break
                await asyncio.sleep(0.01)
        except _CONNECTION_ERRORS as exc:
            self._failed("chat_order", exc)
        try:
            yield had
        finally:
            try:
                await self._done(keys=keys, args=[event_id])
            except _CONNECTION_ERRORS as exc:
                self._failed("chat_order", exc)


class SharedBot:
    """What one bot token shares through a :class:`RedisStore` (``Bot.shared``): its
    rate limit (a :class:`~yunhu_stream._ratelimit.SharedLimiter`), its dedup and its
    chat order."""

    def __init__(self, store: RedisStore, token: str) -> None:
        self.store = store
        self._token = token_key(token)  # only the hash is kept
        self._streams = itertools.count()

    def __repr__(self) -> str:
        return f"<SharedBot {self.store!r}>"

    async def acquire(self, endpoint: str, rate: float, local: RateLimiter) -> Slot:
        """A slot in the shared window of ``endpoint``; the local one when Redis is down."""
        return await self.store.acquire_slot(
            f"{self.store.prefix}:{self._token}:rl:{endpoint}", rate, local)

    async def first_delivery(self, event_id: str) -> bool | None:
        """See :meth:`RedisStore.first_delivery`."""
        return await self.store.first_delivery(self._token, event_id)

    async def forget_delivery(self, event_id: str) -> None:
        """See :meth:`RedisStore.forget_delivery`."""
        await self.store.forget_delivery(self._token, event_id)

    def chat_turn(self, chat: str, event_id: str, event_time: int
                  ) -> AbstractAsyncContextManager[bool]:
        """See :meth:`RedisStore.chat_turn`."""
        return self.store.chat_turn(self._token, chat, event_id, event_time)

    # -- the registry of in-flight streams (recovery consults it) -----------------------

    def new_stream_key(self) -> str:
        """A name for one stream, unique across processes (it starts with this store's)."""
        return f"{self.store.instance_id}:{next(self._streams)}"

    async def stream_started(self, key: str, chat: str, started_ms: int) -> None:
        """Register a running stream of ``chat`` (started at ``started_ms``)."""
        await self.store.registry_update(self._token, chat, key, started_ms, 0, None)

    async def stream_progress(self, key: str, chat: str, started_ms: int, sent_bytes: int,
                              msg_id: str) -> None:
        """The stream delivered ``msg_id`` (another process's recovery must not take it)."""
        await self.store.registry_update(self._token, chat, key, started_ms, sent_bytes, msg_id)

    async def stream_ended(self, key: str, chat: str) -> None:
        """The stream is over (its messages stay listed as delivered)."""
        await self.store.registry_remove(self._token, chat, key)

    async def remote_streams(self, chat: str) -> dict[str, tuple[int, int]]:
        """Streams of ``chat`` running in other processes: key → (started ms, bytes
        sent at its last finished message). Empty when Redis cannot be reached."""
        return await self.store.registry_live(self._token, chat)

    async def delivered(self, chat: str) -> set[str]:
        """Message ids any process's stream delivered in ``chat`` (recently)."""
        return await self.store.registry_delivered(self._token, chat)

    async def claim(self, msg_id: str) -> bool:
        """Take ``msg_id`` for one recovery; False if another process's recovery has it.
        True when Redis cannot be reached (the local claims still hold)."""
        return await self.store.claim(self._token, msg_id)

    async def release(self, msg_id: str) -> None:
        """Give up a claim taken with :meth:`claim`."""
        await self.store.release(self._token, msg_id)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _hide_password(url: object) -> str:
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://***@{host}"
    return text
