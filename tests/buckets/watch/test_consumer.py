"""buckets.watch.consumer without a server: a watcher's outbox, and a refusal the server cannot send as a denial."""

import asyncio

import pytest

from buckets.core.fanout import Change, tick_interval
from buckets.kv.consumers import KeyWatchConsumer
from buckets.watch.options import key_matcher, watch_options
from tests.handshake import Handshake, handshake

pytestmark = pytest.mark.django_db(transaction=True)


def change(revision: int, key: str) -> Change:
    return Change({"type": "kv_update", "key": key, "revision": revision})


def test_a_waiting_watcher_skips_non_matching_changes_without_queueing_them(settings) -> None:
    settings.KV_WATCH_QUEUE_SIZE = 2

    async def scenario() -> tuple[KeyWatchConsumer, list[tuple[int, dict]]]:
        consumer = KeyWatchConsumer()
        consumer.options = watch_options(query={"key": ["a.*"]})
        consumer.matches = key_matcher(consumer.options.pattern)
        consumer.reached = 5
        consumer.parked = asyncio.get_running_loop().create_future()
        closes: list[tuple[int, dict]] = []
        consumer._shutdown = lambda code, frame: closes.append((code, frame))

        consumer.offer(change(4, "a.old"))  # already sent by a replay
        consumer.offer(change(6, "b.x"))  # nothing queued or in flight: the client has everything to 6
        assert (consumer.reached, list(consumer.outbox)) == (6, [])
        consumer.offer(change(7, "a.x"))  # wakes the sending task
        assert consumer.parked is None
        consumer.offer(change(8, "b.y"))  # queued now: 7 is not sent yet, so reached must not pass it
        assert consumer.reached == 6
        consumer.offer(change(9, "a.y"))  # a third queued change overflows the outbox of 2
        return consumer, closes

    consumer, closes = asyncio.run(scenario())

    assert [item.revision for item in consumer.outbox] == [7, 8]
    assert [code for code, _ in closes] == [4008]


def test_the_principal_is_rechecked_on_the_feeds_ticks_a_heartbeat_apart_at_most(settings) -> None:
    settings.KV_WATCH_HEARTBEAT_SECONDS = 1
    settings.KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS = 10  # the feed ticks every 0.25 s

    async def scenario() -> list[float]:
        consumer = KeyWatchConsumer()
        consumer.pump = asyncio.get_running_loop().create_future()  # accepted and sending
        consumer.recheck_at = consumer._recheck_interval()  # as when accepted at 0
        checks: list[float] = []

        async def recheck() -> None:
            checks.append(now)
            await asyncio.sleep(0)
            consumer.recheck = None

        consumer._recheck = recheck
        for tick in range(1, 41):
            now = tick * tick_interval()
            consumer.tick(now)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return checks

    checks = asyncio.run(scenario())

    gaps = [later - earlier for earlier, later in zip([0.0, *checks], checks, strict=False)]
    assert len(checks) >= 10
    assert all(0.5 <= gap <= 1.0 for gap in gaps), gaps


# --- Refusal on a server without the HTTP-response extension ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_without_the_denial_extension_a_refusal_is_an_error_frame_and_a_44xx_close(issue_token, make_bucket) -> None:
    make_bucket("app")
    token = issue_token("admin")

    async def scenario() -> list[Handshake]:
        return [
            await handshake("/api/v1/kv/buckets/app/watch"),
            await handshake("/api/v1/kv/buckets/nope/watch", token=token),
            await handshake("/api/v1/kv/buckets/app/watch?since=x", token=token),
        ]

    unauthenticated, not_found, invalid = asyncio.run(scenario())

    assert unauthenticated.frame["type"] == "error"
    assert unauthenticated.frame["code"] == "unauthenticated"
    assert unauthenticated.close_code == 4401
    assert (not_found.frame, not_found.close_code) == (
        {"type": "error", "code": "not_found", "message": "bucket 'nope' not found"},
        4404,
    )
    assert invalid.frame["code"] == "invalid_argument"
    assert invalid.close_code == 4400
