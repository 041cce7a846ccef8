"""buckets.core.replay: what a watcher catching up reads from the database."""

import pytest

from buckets.core import replay, store
from buckets.core.names import app_bucket
from buckets.core.wildcards import compile_pattern


def revisions(events: list[dict]) -> list[int]:
    return [item["revision"] for item in events]


@pytest.mark.django_db
def test_change_events_after_returns_kept_matching_entries_in_range_oldest_first(make_bucket, clock) -> None:
    make_bucket("app", history=2)
    bucket = app_bucket("app")
    store.entry_put(bucket=bucket, key="user.1", value=b"a")  # 1
    store.entry_put(bucket=bucket, key="config", value=b"b")  # 2
    store.entry_put(bucket=bucket, key="user.1", value=b"c")  # 3
    store.entry_delete(bucket=bucket, key="user.1")  # 4, trims 1
    store.entry_put(bucket=bucket, key="user.2", value=b"d", expires_at=store.clock.now())  # 5, already expired
    store.entry_put(bucket=bucket, key="user.3", value=b"e")  # 6

    everything = replay.change_events_after(bucket=bucket, after=0, through=6)
    users = replay.change_events_after(bucket=bucket, after=0, through=6, pattern=compile_pattern("user.*"))
    window = replay.change_events_after(bucket=bucket, after=2, through=4)
    paged = replay.change_events_after(bucket=bucket, after=0, through=6, limit=2)

    assert [(e["key"], e["revision"], e["operation"]) for e in everything] == [
        ("config", 2, "put"),
        ("user.1", 3, "put"),
        ("user.1", 4, "delete"),
        ("user.3", 6, "put"),
    ]
    assert revisions(users) == [3, 4, 6]
    assert revisions(window) == [3, 4]
    assert revisions(paged) == [2, 3]
    assert everything[0] == {
        "type": "kv_update",
        "bucket": "app",
        "key": "config",
        "value": "Yg==",
        "revision": 2,
        "operation": "put",
        "created_at": everything[0]["created_at"],
    }
    assert everything[2]["value"] == ""


@pytest.mark.django_db
def test_current_events_are_live_values_up_to_a_revision(make_bucket) -> None:
    make_bucket("app")
    bucket = app_bucket("app")
    store.entry_put(bucket=bucket, key="a", value=b"1")  # 1
    store.entry_put(bucket=bucket, key="b", value=b"2")  # 2
    store.entry_put(bucket=bucket, key="a", value=b"3")  # 3
    store.entry_put(bucket=bucket, key="c", value=b"4")  # 4
    store.entry_delete(bucket=bucket, key="c")  # 5

    assert revisions(replay.current_events(bucket=bucket, through=5)) == [2, 3]
    # A key rewritten after `through` is left to the live stream.
    assert revisions(replay.current_events(bucket=bucket, through=2)) == [2]
    assert revisions(replay.current_events(bucket=bucket, through=5, pattern=compile_pattern("a"))) == [3]
    assert revisions(replay.current_events(bucket=bucket, through=5, after=2)) == [3]


@pytest.mark.django_db
def test_bucket_position_reports_last_and_oldest_kept_revision(make_bucket) -> None:
    make_bucket("app")
    bucket = app_bucket("app")
    assert replay.bucket_position(bucket=bucket) == replay.BucketPosition(last_revision=0, oldest_revision=1)
    store.entry_put(bucket=bucket, key="a", value=b"1")
    store.entry_put(bucket=bucket, key="a", value=b"2")
    store.entry_put(bucket=bucket, key="b", value=b"3")

    assert replay.bucket_position(bucket=bucket) == replay.BucketPosition(last_revision=3, oldest_revision=2)
    assert replay.bucket_position(bucket=app_bucket("missing")) is None
