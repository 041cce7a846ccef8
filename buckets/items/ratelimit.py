"""Rate limits of the items API: a token bucket per account and kind (read, write).

A bucket holds up to ``burst`` tokens and regains ``rate`` a second; a request
takes one, and an empty bucket is a 429 with the seconds until the next token.

With ``REDIS_URL`` set the buckets live in Redis, so every server process draws
from the same one: a Lua script refills, takes and stores in one atomic step, on
Redis' own clock, so processes on different hosts agree on how much time passed.
Without Redis each process keeps its own buckets behind a lock (development).

The limit is soft: when Redis fails, each process falls back to its own
buckets for a few seconds before trying Redis again, and logs a warning (at most
once a minute), so a limiter outage neither becomes a data outage nor lifts the
limits altogether, nor makes every request wait on a dead connection.
"""

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from buckets.core.exceptions import RateLimited

logger = logging.getLogger(__name__)

READ = "read"
WRITE = "write"
KINDS = (READ, WRITE)
# Buckets kept per process without Redis; past this, full (idle) ones are dropped.
LOCAL_MAX_BUCKETS = 100_000
_WARN_EVERY_SECONDS = 60.0
# After a Redis failure, how long this process uses its own buckets instead.
REDIS_RETRY_SECONDS = 5.0

# KEYS[1]: the bucket's hash; ARGV: rate (tokens/s), burst, cost (0: only look).
# Returns {allowed, tokens left, seconds until `cost` tokens} (numbers as strings:
# Lua numbers returned to Redis lose their fraction).
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 1
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  allowed = 0
  wait = (cost - tokens) / rate
end
if cost > 0 then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
  -- A bucket left alone is full again after burst/rate seconds: then it may go.
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return {allowed, string.format('%.6f', tokens), string.format('%.6f', wait)}
"""


@dataclass(frozen=True)
class RateLimit:
    rate: float  # tokens per second; 0: unlimited
    burst: float

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0


@dataclass(frozen=True)
class TokenState:
    allowed: bool
    tokens: float | None  # None: unlimited, or unknown (Redis failed)
    retry_after: float = 0.0


def ratelimit_for(kind: str) -> RateLimit:
    """The configured limit of ``kind`` (read settings on each call, so tests can change them)."""
    if kind not in KINDS:
        raise ValueError(f"unknown rate limit kind {kind!r}")
    prefix = f"KV_ITEMS_{kind.upper()}"
    return RateLimit(rate=float(getattr(settings, f"{prefix}_RATE")), burst=float(getattr(settings, f"{prefix}_BURST")))


def _bucket_key(account: str, kind: str) -> str:
    return f"{settings.KV_ITEMS_RATELIMIT_PREFIX}:ratelimit:items:{kind}:{account}"


# --- Redis ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _redis_script(url: str):
    """The take script bound to a client of ``url``, one per process (its pool is thread-safe)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30)
    return client.register_script(_TAKE_SCRIPT)


class _Warner:
    """Logs a limiter failure at most once per interval, so an outage does not flood the log."""

    def __init__(self) -> None:
        self._last = -math.inf
        self._lock = threading.Lock()

    def warn(self, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < _WARN_EVERY_SECONDS:
                return
            self._last = now
        logger.warning(message, *args)


_warner = _Warner()
# time.monotonic() before which Redis is not tried again (written without a lock:
# a race only means one extra attempt).
_redis_down_until = -math.inf


def _redis_take(url: str, key: str, limit: RateLimit, cost: int) -> TokenState | None:
    """The bucket's state after taking ``cost`` in Redis; None if Redis failed."""
    global _redis_down_until
    import redis

    if time.monotonic() < _redis_down_until:
        return None
    try:
        allowed, tokens, wait = _redis_script(url)(keys=[key], args=[repr(limit.rate), repr(limit.burst), cost])
    except redis.RedisError as error:
        _redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        _warner.warn("rate limiter: Redis failed (%s); limiting per process for now", error)
        return None
    return TokenState(allowed=bool(int(allowed)), tokens=float(tokens), retry_after=float(wait))


# --- In-process -------------------------------------------------------------------------

# The clock of the in-process buckets; tests replace it.
_monotonic = time.monotonic


class _LocalBuckets:
    """key -> [tokens, last refill], guarded by one lock (requests run in threads)."""

    def __init__(self) -> None:
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: RateLimit, cost: int) -> TokenState:
        now = _monotonic()
        with self._lock:
            state = self._buckets.get(key)
            tokens = (
                limit.burst if state is None else min(limit.burst, state[0] + max(0.0, now - state[1]) * limit.rate)
            )
            allowed, wait = True, 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                allowed, wait = False, (cost - tokens) / limit.rate
            if cost > 0:
                if state is None and len(self._buckets) >= LOCAL_MAX_BUCKETS:
                    self._prune(now)
                self._buckets[key] = [tokens, now]
        return TokenState(allowed=allowed, tokens=tokens, retry_after=wait)

    def _prune(self, now: float) -> None:
        # A bucket idle long enough to be full again holds no information.
        limits = {kind: ratelimit_for(kind) for kind in KINDS}
        for key, (tokens, at) in list(self._buckets.items()):
            limit = limits[READ] if f":{READ}:" in key else limits[WRITE]
            if limit.unlimited or tokens + (now - at) * limit.rate >= limit.burst:
                del self._buckets[key]

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


_local = _LocalBuckets()


# --- Public -----------------------------------------------------------------------------


def _take(account: str, kind: str, cost: int) -> TokenState:
    limit = ratelimit_for(kind)
    if limit.unlimited:
        return TokenState(allowed=True, tokens=None)
    key = _bucket_key(account, kind)
    if settings.REDIS_URL:
        state = _redis_take(settings.REDIS_URL, key, limit, cost)
        if state is not None:
            return state
    return _local.take(key, limit, cost)


def ratelimit_take(*, account: str, kind: str) -> TokenState:
    """Take one token of ``kind`` from ``account``'s bucket; RateLimited (429) when it is empty."""
    state = _take(account, kind, 1)
    if not state.allowed:
        limit = ratelimit_for(kind)
        raise RateLimited(
            f"{kind} rate limit of {limit.rate:g}/s (burst {limit.burst:g}) exceeded for account {account!r}",
            retry_after=max(1, math.ceil(state.retry_after)),
        )
    return state


def ratelimit_peek(*, account: str, kind: str) -> TokenState:
    """The tokens ``account`` has left for ``kind``, taking none."""
    return _take(account, kind, 0)
