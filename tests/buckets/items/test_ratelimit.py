"""The items API's rate limiter: token buckets in process and in Redis, shared by server processes."""

import os
import secrets
import threading
from collections.abc import Iterator

import httpx
import pytest

from buckets.core.exceptions import RateLimited
from buckets.items import ratelimit
from kvsite.access import apikeys
from tests.live_server import asgi_server_factory, redis_available, redis_url, server_redis_url  # noqa: F401

# One Redis key prefix per test run, so parallel runs on one Redis never share buckets.
RUN_PREFIX = f"kvtest-rl-{os.getpid()}-{secrets.token_hex(4)}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(ratelimit, "_monotonic", clock)
    return clock


@pytest.fixture
def limits(settings) -> Iterator[object]:
    """Settings with this test's own bucket prefix (buckets outlive tests)."""
    settings.KV_ITEMS_RATELIMIT_PREFIX = f"{RUN_PREFIX}-{secrets.token_hex(4)}"
    yield settings
    if settings.REDIS_URL and redis_available(settings.REDIS_URL):
        _redis_delete_prefix(settings.REDIS_URL, settings.KV_ITEMS_RATELIMIT_PREFIX)


def _redis_delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def local(limits):
    limits.REDIS_URL = ""
    return limits


@pytest.fixture
def in_redis(limits):
    url = server_redis_url()
    if not redis_available(url):
        pytest.skip(f"needs Redis at {url} (set KV_TEST_REDIS_URL)")
    limits.REDIS_URL = url
    return limits


def take_all(account: str, kind: str, times: int) -> list[bool]:
    results = []
    for _ in range(times):
        try:
            ratelimit.ratelimit_take(account=account, kind=kind)
            results.append(True)
        except RateLimited:
            results.append(False)
    return results


# --- In process -----------------------------------------------------------------------------


def test_local_bucket_allows_the_burst_then_refills_at_the_rate(local, fake_clock: FakeClock) -> None:
    local.KV_ITEMS_READ_RATE, local.KV_ITEMS_READ_BURST = 10, 5

    assert take_all("acme", ratelimit.READ, 6) == [True] * 5 + [False]
    with pytest.raises(RateLimited) as refused:
        ratelimit.ratelimit_take(account="acme", kind=ratelimit.READ)
    assert refused.value.status == 429 and refused.value.details == {"retry_after": 1}

    fake_clock.now += 0.25  # 2.5 tokens
    assert take_all("acme", ratelimit.READ, 3) == [True, True, False]
    fake_clock.now += 60  # full again, never more than the burst
    assert ratelimit.ratelimit_peek(account="acme", kind=ratelimit.READ).tokens == 5


def test_local_retry_after_is_the_wait_for_one_token_rounded_up(local, fake_clock: FakeClock) -> None:
    local.KV_ITEMS_WRITE_RATE, local.KV_ITEMS_WRITE_BURST = 0.25, 1
    take_all("acme", ratelimit.WRITE, 1)

    with pytest.raises(RateLimited) as refused:
        ratelimit.ratelimit_take(account="acme", kind=ratelimit.WRITE)

    assert refused.value.details == {"retry_after": 4}
    fake_clock.now += 4
    assert take_all("acme", ratelimit.WRITE, 1) == [True]


def test_kinds_and_accounts_have_their_own_buckets(local, fake_clock: FakeClock) -> None:
    local.KV_ITEMS_READ_RATE, local.KV_ITEMS_READ_BURST = 1, 2
    local.KV_ITEMS_WRITE_RATE, local.KV_ITEMS_WRITE_BURST = 1, 2

    assert take_all("acme", ratelimit.READ, 3) == [True, True, False]
    assert take_all("acme", ratelimit.WRITE, 2) == [True, True]
    assert take_all("other", ratelimit.READ, 2) == [True, True]


def test_peek_takes_nothing_and_rate_zero_is_unlimited(local, fake_clock: FakeClock) -> None:
    local.KV_ITEMS_READ_RATE, local.KV_ITEMS_READ_BURST = 1, 3
    local.KV_ITEMS_WRITE_RATE = 0

    for _ in range(5):
        assert ratelimit.ratelimit_peek(account="acme", kind=ratelimit.READ).tokens == 3
    assert all(take_all("acme", ratelimit.WRITE, 100))
    assert ratelimit.ratelimit_peek(account="acme", kind=ratelimit.WRITE).tokens is None


def test_local_buckets_are_exact_under_threads(local) -> None:
    local.KV_ITEMS_READ_RATE, local.KV_ITEMS_READ_BURST = 0.001, 100
    allowed: list[bool] = []

    def worker() -> None:
        allowed.extend(take_all("acme", ratelimit.READ, 50))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 100


# --- Redis -----------------------------------------------------------------------------------


def test_redis_bucket_allows_the_burst_then_refuses(in_redis) -> None:
    in_redis.KV_ITEMS_READ_RATE, in_redis.KV_ITEMS_READ_BURST = 0.001, 5

    assert take_all("acme", ratelimit.READ, 7) == [True] * 5 + [False] * 2
    assert ratelimit.ratelimit_peek(account="acme", kind=ratelimit.READ).tokens == pytest.approx(0, abs=0.01)
    assert take_all("other", ratelimit.READ, 1) == [True]


def test_redis_bucket_refills_on_redis_time(in_redis) -> None:
    in_redis.KV_ITEMS_WRITE_RATE, in_redis.KV_ITEMS_WRITE_BURST = 20, 2
    assert take_all("acme", ratelimit.WRITE, 3) == [True, True, False]

    with pytest.raises(RateLimited) as refused:
        ratelimit.ratelimit_take(account="acme", kind=ratelimit.WRITE)
    assert refused.value.details == {"retry_after": 1}
    threading.Event().wait(0.2)  # 4 tokens' worth, capped at the burst of 2

    assert take_all("acme", ratelimit.WRITE, 3) == [True, True, False]


def test_redis_bucket_is_atomic_under_threads(in_redis) -> None:
    in_redis.KV_ITEMS_READ_RATE, in_redis.KV_ITEMS_READ_BURST = 0.001, 100
    allowed: list[bool] = []

    def worker() -> None:
        allowed.extend(take_all("acme", ratelimit.READ, 50))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert allowed.count(True) == 100


def test_an_unreachable_redis_falls_back_to_buckets_per_process(limits, monkeypatch) -> None:
    monkeypatch.setattr(ratelimit, "_redis_down_until", -1.0)  # restored after the test
    limits.REDIS_URL = "redis://127.0.0.1:1/0"
    limits.KV_ITEMS_READ_RATE, limits.KV_ITEMS_READ_BURST = 0.001, 2

    assert take_all("acme", ratelimit.READ, 3) == [True, True, False]
    assert ratelimit.ratelimit_peek(account="acme", kind=ratelimit.READ).tokens == pytest.approx(0, abs=0.01)
    assert ratelimit._redis_down_until > 0  # Redis is left alone for a while, not tried per request


# --- Two server processes ----------------------------------------------------------------------


@pytest.mark.e2e
def test_two_server_processes_share_one_bucket_through_redis(asgi_server_factory, redis_url) -> None:  # noqa: F811
    """Given two uvicorn processes on one Redis, reads through both draw from one bucket of the account."""
    prefix = f"{RUN_PREFIX}-e2e-{secrets.token_hex(4)}"
    env = {"KV_ITEMS_RATELIMIT_PREFIX": prefix, "KV_ITEMS_READ_RATE": "0.001", "KV_ITEMS_READ_BURST": "10"}
    first = asgi_server_factory(redis_url=redis_url, env=env)
    second = asgi_server_factory(redis_url=redis_url, env=env)
    token = apikeys.apikey_create(name="shared", role="reader", account="shared").token
    other = apikeys.apikey_create(name="other", role="reader", account="other").token
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=10) as http:
            # When the account reads through both servers in turn
            responses = [
                http.get(f"{server.http_url}/kv/items/missing", headers=headers)
                for _ in range(7)
                for server in (first, second)
            ]
            limits = http.get(f"{second.http_url}/kv/limits", headers=headers).json()
            others = http.get(f"{first.http_url}/kv/items", headers={"Authorization": f"Bearer {other}"})
    finally:
        _redis_delete_prefix(redis_url, prefix)

    # Then the burst of 10 is spent once in all, not once per process
    statuses = [response.status_code for response in responses]
    assert statuses == [404] * 10 + [429] * 4, statuses
    refused = responses[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "resource_exhausted"
    assert refused.headers["X-Request-Id"] == refused.json()["requestId"]
    assert limits["data"]["usage"]["readTokens"] == 0
    assert others.status_code == 200
