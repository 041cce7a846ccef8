"""kv_sweep: expired data leaves the database and the bucket counters."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from buckets.core import store
from buckets.core.names import app_bucket
from buckets.models import Entry

pytestmark = pytest.mark.django_db

SESSIONS = app_bucket("sessions")


def counters() -> tuple[int, int]:
    bucket = store.bucket_get(name=SESSIONS)
    return bucket.values_count, bucket.bytes_total


def test_counters_keep_expired_data_until_the_sweeper_removes_it(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=60, history=3)
    store.entry_put(bucket=SESSIONS, key="old", value=b"1234")
    clock.advance(30)
    store.entry_put(bucket=SESSIONS, key="fresh", value=b"56")
    clock.advance(31)
    assert counters() == (2, 6)

    out = io.StringIO()
    call_command("kv_sweep", stdout=out)

    assert "removed 1 expired entries" in out.getvalue()
    assert counters() == (1, 2)
    assert list(Entry.objects.values_list("key", flat=True)) == ["fresh"]


def test_a_key_whose_latest_entry_expired_goes_with_its_history(make_bucket, clock) -> None:
    make_bucket("sessions", history=5)
    store.entry_put(bucket=SESSIONS, key="k", value=b"keep?")
    store.entry_put(bucket=SESSIONS, key="k", value=b"x", expires_at=store.clock.now() + timedelta(seconds=5))
    clock.advance(6)

    call_command("kv_sweep", stdout=io.StringIO())

    assert not Entry.objects.filter(key="k").exists()
    assert counters() == (0, 0)
    assert store.entry_create(bucket=SESSIONS, key="k", value=b"new").revision == 3


def test_sweeping_in_small_batches_removes_everything(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=1)
    for index in range(25):
        store.entry_put(bucket=SESSIONS, key=f"k{index}", value=b"v")
    clock.advance(2)

    call_command("kv_sweep", "--batch-size", "7", stdout=io.StringIO())

    assert counters() == (0, 0) and not Entry.objects.exists()


# --- delete markers (NATS' PurgeDeletes) -------------------------------------------------


def sweep(*options: str) -> str:
    out = io.StringIO()
    call_command("kv_sweep", *options, stdout=out)
    return out.getvalue()


def test_old_delete_markers_go_with_their_keys_history_on_request(make_bucket, clock) -> None:
    make_bucket("sessions", history=5)
    store.entry_put(bucket=SESSIONS, key="gone", value=b"12")
    store.entry_put(bucket=SESSIONS, key="gone", value=b"345")
    store.entry_delete(bucket=SESSIONS, key="gone")
    store.entry_put(bucket=SESSIONS, key="kept", value=b"6")
    clock.advance(61)
    store.entry_purge(bucket=SESSIONS, key="kept")  # a marker too recent to go
    store.entry_put(bucket=SESSIONS, key="live", value=b"7")

    assert "removed 0 expired" in sweep()  # without the option, bucket API markers stay
    assert Entry.objects.filter(key="gone").count() == 3
    output = sweep("--purge-deletes-older-than", "60")

    assert "1 deleted keys (3 entries)" in output
    assert sorted(Entry.objects.values_list("key", "operation")) == [("kept", "purge"), ("live", "put")]
    bucket = store.bucket_get(name=SESSIONS)
    assert (bucket.values_count, bucket.bytes_total, bucket.live_keys) == (2, 1, 1)
    assert store.entry_create(bucket=SESSIONS, key="gone", value=b"again").revision == 7


def test_deleted_items_leave_no_marker_after_the_retention(settings, clock) -> None:
    from buckets.items import services as items

    settings.KV_ITEMS_MARKER_RETENTION_SECONDS = 600
    items.item_put(account="acme", key="session:1", value={"user": 1})
    items.item_put(account="acme", key="session:2", value={"user": 2})
    items.item_delete(account="acme", key="session:1")
    clock.advance(599)
    sweep()
    assert Entry.objects.filter(key="session:1", operation="purge").exists()

    clock.advance(2)
    assert "1 deleted keys (1 entries)" in sweep()
    assert list(Entry.objects.values_list("key", flat=True)) == ["session:2"]
    assert items.items_usage(account="acme").keys == 1


def test_a_negative_marker_age_is_refused(db) -> None:
    with pytest.raises(CommandError):
        sweep("--purge-deletes-older-than", "-1")
