"""kv_sweep: expired data leaves the database and the bucket counters."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command

from buckets import store
from buckets.models import Entry
from buckets.names import app_bucket

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
