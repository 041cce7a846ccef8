"""The rules of one write, as a pure plan (the store and bulk tests cover them end to end)."""

from datetime import UTC, datetime, timedelta

import pytest

from buckets.core.exceptions import BucketFull, KeyExists, KeyNotFound, RevisionMismatch, ValueTooBig
from buckets.core.write_plan import DELETE, PURGE, PUT, UNLIMITED, Counters, write_plan
from buckets.models import Bucket

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The bucket before the write: three kept rows of 10 bytes, one live key.
BEFORE = Counters(values_count=3, bytes_total=30, live_keys=1)


def bucket(**options) -> Bucket:
    fields = {"history": 3, "max_value_size": 100, "max_bytes": UNLIMITED, "max_keys": UNLIMITED, "ttl_seconds": 0}
    return Bucket(name="APP_plan", **{**fields, **options})


def plan(kept, operation=PUT, size=10, counters=BEFORE, **options):
    return write_plan(
        bucket=options.pop("bucket", bucket()),
        counters=counters,
        key="k",
        kept=kept,
        operation=operation,
        size=size,
        now=NOW,
        **options,
    )


# Kept rows of key "k", newest first: (id, revision, operation, size, expires_at).
THREE = [(13, 9, PUT, 10, None), (12, 5, PUT, 10, None), (11, 2, PUT, 10, None)]


def test_a_put_over_full_history_pushes_out_the_oldest_and_demotes_the_latest() -> None:
    result = plan(THREE)
    assert result.removed_ids == [11]
    assert result.demoted_id == 13
    assert result.counters == Counters(values_count=3, bytes_total=30, live_keys=1)


def test_purge_removes_every_kept_row_and_the_key_stops_being_live() -> None:
    result = plan(THREE, operation=PURGE, size=0)
    assert result.removed_ids == [13, 12, 11]
    assert result.demoted_id is None
    assert result.counters == Counters(values_count=1, bytes_total=0, live_keys=0)


def test_an_expired_latest_takes_its_history_with_it() -> None:
    expired = [(13, 9, PUT, 10, NOW - timedelta(seconds=1)), *THREE[1:]]
    result = plan(expired, if_absent=True)
    assert result.removed_ids == [13, 12, 11]
    with pytest.raises(RevisionMismatch):
        plan(expired, if_revision=9)


def test_conditions_and_markers_follow_nats() -> None:
    with pytest.raises(KeyExists):
        plan(THREE, if_absent=True)
    tombstoned = [(14, 10, DELETE, 0, None), *THREE[:2]]
    assert plan(tombstoned, if_absent=True).demoted_id == 14
    assert plan(tombstoned, if_revision=10).removed_ids == [12]
    with pytest.raises(KeyNotFound):
        plan(tombstoned, operation=DELETE, size=0)
    with pytest.raises(KeyNotFound):
        plan([], operation=PURGE, size=0)


def test_limits_count_what_the_write_pushes_out() -> None:
    with pytest.raises(ValueTooBig):
        plan([], size=101)
    capped = bucket(max_bytes=30)
    assert plan(THREE, bucket=capped).counters.bytes_total == 30
    with pytest.raises(BucketFull):
        plan(THREE, bucket=capped, size=11)
