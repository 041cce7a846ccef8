"""buckets.core.bulk: many writes, one transaction."""

import base64
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from channels.layers import get_channel_layer
from django.db import connection
from django.db.models import Sum
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from buckets.core import bulk, store
from buckets.core.bulk import BulkWrite
from buckets.core.events import bucket_group
from buckets.core.exceptions import KeyNotFound
from buckets.models import Bucket, Entry
from tests.live_server import redis_available, server_redis_url

from .test_store import receive_all

pytestmark = pytest.mark.django_db

B = "APP_bulk"


@pytest.fixture(autouse=True)
def master_keys() -> Iterator[None]:
    with override_settings(KV_MASTER_KEYS="bk:" + base64.b64encode(bytes(range(32))).decode()):
        yield


@pytest.fixture
def bucket() -> Bucket:
    return store.bucket_create(name=B, history=3)


def recount(name: str = B) -> tuple[int, int, int]:
    rows = Entry.objects.filter(bucket__name=name)
    live = rows.filter(is_latest=True, operation=store.PUT).count()
    return rows.count(), rows.aggregate(total=Sum("size"))["total"] or 0, live


def counters(name: str = B) -> tuple[int, int, int]:
    row = Bucket.objects.get(name=name)
    return row.values_count, row.bytes_total, row.live_keys


def puts(*keys: str, value: bytes = b"v") -> list[BulkWrite]:
    return [BulkWrite(key=key, value=value) for key in keys]


# --- Core ---------------------------------------------------------------------------------


def test_bulk_writes_get_gapless_revisions_in_order(bucket) -> None:
    store.entry_put(bucket=B, key="first", value=b"0")

    written = bulk.entries_write_many(bucket=B, writes=puts("a", "b", "c"))

    assert [(e.key, e.revision) for e in written] == [("a", 2), ("b", 3), ("c", 4)]
    assert Bucket.objects.get(name=B).last_revision == 4
    assert store.entry_put(bucket=B, key="after", value=b"x").revision == 5


def test_counters_match_a_full_recount_after_bulk_operations(bucket) -> None:
    for round_ in range(5):
        bulk.entries_write_many(bucket=B, writes=puts(*(f"k{i}" for i in range(10)), value=b"x" * round_))
    bulk.entries_write_many(
        bucket=B,
        writes=[
            BulkWrite(key="k0", operation=store.DELETE),
            BulkWrite(key="k1", operation=store.PURGE),
            BulkWrite(key="k2", value=b"new"),
        ],
    )
    store.entry_put(bucket=B, key="k0", value=b"back")
    bulk.entries_write_many(bucket=B, writes=[BulkWrite(key=f"k{i}", operation=store.PURGE) for i in range(3, 6)])

    assert counters() == recount()
    # history 3: no key keeps more than three rows
    for key in (f"k{i}" for i in range(10)):
        assert Entry.objects.filter(bucket__name=B, key=key).count() <= 3
    assert Entry.objects.filter(bucket__name=B, is_latest=True).count() == 10


def test_bulk_and_single_writes_agree(bucket) -> None:
    """The same writes, one by one in another bucket, leave the same rows and counters."""
    store.bucket_create(name="APP_single", history=3)
    plan = [puts("a", "b"), puts("a", "c", value=b"xx"), [BulkWrite(key="b", operation=store.DELETE)], puts("b")]
    for writes in plan:
        bulk.entries_write_many(bucket=B, writes=writes)
        for write in writes:
            if write.operation == store.PUT:
                store.entry_put(bucket="APP_single", key=write.key, value=write.value)
            else:
                store.entry_delete(bucket="APP_single", key=write.key)

    def rows(name: str) -> list[tuple]:
        return list(
            Entry.objects.filter(bucket__name=name)
            .order_by("revision")
            .values_list("key", "revision", "operation", "size", "is_latest")
        )

    assert rows(B) == rows("APP_single")
    assert counters(B) == counters("APP_single")


def test_one_refused_write_refuses_all(bucket) -> None:
    store.entry_put(bucket=B, key="exists", value=b"1")
    before = (counters(), Bucket.objects.get(name=B).last_revision)

    with pytest.raises(bulk.BulkWriteRejected) as refused:
        bulk.entries_write_many(
            bucket=B,
            writes=[
                *puts("a", "b"),
                BulkWrite(key="exists", value=b"2", if_absent=True),
                BulkWrite(key="missing", operation=store.DELETE),
                BulkWrite(key="bad key!", value=b"x"),
                BulkWrite(key="a", value=b"again"),
            ],
        )

    assert [(f.index, f.key, f.error.code) for f in refused.value.failures] == [
        (2, "exists", "failed_precondition"),
        (3, "missing", "not_found"),
        (4, "bad key!", "invalid_argument"),
        (5, "a", "invalid_argument"),
    ]
    assert (counters(), Bucket.objects.get(name=B).last_revision) == before
    with pytest.raises(KeyNotFound):
        store.entry_get(bucket=B, key="a")


def test_revision_conditions_are_checked_under_the_lock(bucket) -> None:
    first = store.entry_put(bucket=B, key="k", value=b"1")
    store.entry_put(bucket=B, key="k", value=b"2")

    with pytest.raises(bulk.BulkWriteRejected) as refused:
        bulk.entries_write_many(bucket=B, writes=[BulkWrite(key="k", value=b"3", if_revision=first.revision)])

    assert refused.value.status == 412


def test_quotas_are_enforced(db) -> None:
    store.bucket_create(name="APP_small", max_keys=2)

    with pytest.raises(bulk.BulkWriteRejected) as refused:
        bulk.entries_write_many(bucket="APP_small", writes=puts("a", "b", "c"))

    assert [f.index for f in refused.value.failures] == [2]
    assert counters("APP_small") == (0, 0, 0)


def test_an_expired_latest_entry_takes_its_history_with_it(bucket, clock) -> None:
    store.entry_put(bucket=B, key="k", value=b"old", expires_at=store.clock.now())
    store.entry_put(bucket=B, key="other", value=b"x")

    bulk.entries_write_many(bucket=B, writes=[BulkWrite(key="k", value=b"new", if_absent=True)])

    assert list(Entry.objects.filter(bucket__name=B, key="k").values_list("value", flat=True)) in (
        [b"new"],
        [memoryview(b"new")],
    )
    assert counters() == recount()


def test_bulk_uses_a_fixed_number_of_queries(bucket) -> None:
    bulk.entries_write_many(bucket=B, writes=puts(*(f"k{i}" for i in range(300))))

    with CaptureQueriesContext(connection) as few:
        bulk.entries_write_many(bucket=B, writes=puts(*(f"k{i}" for i in range(10))))
    with CaptureQueriesContext(connection) as many:
        bulk.entries_write_many(bucket=B, writes=puts(*(f"k{i}" for i in range(300))))

    def statements(captured) -> list[str]:
        # SQLite splits one multi-row INSERT by its parameter limit; every other statement is one.
        return [q["sql"].split()[0] for q in captured.captured_queries if not q["sql"].startswith("INSERT")]

    assert statements(many) == statements(few)


def test_bulk_events_are_published_after_commit_in_revision_order(bucket, django_capture_on_commit_callbacks) -> None:
    def writes() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            bulk.entries_write_many(bucket=B, writes=puts("a", "b"))

    events = receive_all(bucket_group(B), writes)

    assert [(e["key"], e["revision"], e["operation"], e["bucket"]) for e in events] == [
        ("a", 1, "put", "bulk"),
        ("b", 2, "put", "bulk"),
    ]


def test_a_refused_bulk_publishes_nothing(bucket, django_capture_on_commit_callbacks) -> None:
    def refused() -> None:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(bulk.BulkWriteRejected):
            bulk.entries_write_many(bucket=B, writes=[*puts("a"), BulkWrite(key="zz", operation=store.DELETE)])

    assert receive_all(bucket_group(B), refused) == []


def test_bulk_and_single_writes_publish_through_the_same_long_lived_loop(
    bucket, django_capture_on_commit_callbacks, settings
) -> None:
    """With Redis, every write's events go out from the one publishing loop (async_to_sync per commit costs ~5 ms)."""
    url = server_redis_url()
    if not redis_available(url):
        pytest.skip(f"needs Redis at {url}")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": f"kvtest-bulk-{uuid.uuid4().hex}"},
        }
    }
    layer = get_channel_layer()
    sent_from: list[str] = []
    send = layer.group_send

    async def recorded(group: str, event: dict) -> None:
        sent_from.append(threading.current_thread().name)
        await send(group, event)

    layer.group_send = recorded

    with django_capture_on_commit_callbacks(execute=True):
        store.entry_put(bucket=B, key="single", value=b"1")
    with django_capture_on_commit_callbacks(execute=True):
        bulk.entries_write_many(bucket=B, writes=puts("a", "b"))

    deadline = time.monotonic() + 5
    while len(sent_from) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # publishing does not wait for Redis
    assert sent_from == ["kv-events"] * 3


def test_bulk_writes_count_in_the_write_metrics_after_commit(bucket, django_capture_on_commit_callbacks) -> None:
    from buckets.core import metrics

    before = metrics.WRITES.labels("put")._value.get()
    with django_capture_on_commit_callbacks(execute=True):
        bulk.entries_write_many(bucket=B, writes=puts("a", "b", "c"))

    assert metrics.WRITES.labels("put")._value.get() == before + 3
