"""The storage core's rules, exercised directly (every interface relies on them)."""

import asyncio
import base64
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from buckets.core import store
from buckets.core.events import bucket_group
from buckets.core.exceptions import (
    BucketExists,
    BucketFull,
    BucketNotFound,
    InvalidArgument,
    KeyExists,
    KeyLimitReached,
    KeyNotFound,
    RevisionMismatch,
    RevisionNotFound,
    ValueTooBig,
)
from buckets.core.names import app_bucket
from buckets.core.sweeper import sweep_expired
from buckets.models import Entry

pytestmark = pytest.mark.django_db

B = app_bucket("settings")


@pytest.fixture
def bucket(make_bucket):
    make_bucket("settings", history=3)
    return B


def info():
    return store.bucket_get(name=B)


# --- revisions ---------------------------------------------------------------------------


def test_first_put_into_a_new_bucket_is_revision_1_and_revisions_are_gapless(bucket) -> None:
    revisions = [
        store.entry_put(bucket=B, key="a", value=b"1").revision,
        store.entry_put(bucket=B, key="b", value=b"2").revision,
        store.entry_delete(bucket=B, key="a").revision,
        store.entry_purge(bucket=B, key="b").revision,
        store.entry_put(bucket=B, key="c", value=b"3").revision,
    ]

    assert revisions == [1, 2, 3, 4, 5]
    assert info().last_revision == 5


def test_a_refused_write_does_not_take_a_revision(bucket) -> None:
    store.entry_put(bucket=B, key="a", value=b"1")
    with pytest.raises(KeyExists):
        store.entry_create(bucket=B, key="a", value=b"2")

    assert store.entry_put(bucket=B, key="b", value=b"x").revision == 2


def test_revisions_are_per_bucket(bucket, make_bucket) -> None:
    make_bucket("other")
    store.entry_put(bucket=B, key="a", value=b"1")

    assert store.entry_put(bucket=app_bucket("other"), key="a", value=b"1").revision == 1


# --- create / update --------------------------------------------------------------------


def test_create_fails_on_a_live_key_but_succeeds_after_delete_or_purge(bucket) -> None:
    store.entry_create(bucket=B, key="k", value=b"1")
    with pytest.raises(KeyExists):
        store.entry_create(bucket=B, key="k", value=b"2")

    store.entry_delete(bucket=B, key="k")
    assert store.entry_create(bucket=B, key="k", value=b"3").revision == 3
    store.entry_purge(bucket=B, key="k")
    assert store.entry_create(bucket=B, key="k", value=b"4").revision == 5


def test_update_needs_the_latest_revision_markers_included(bucket) -> None:
    first = store.entry_put(bucket=B, key="k", value=b"1")
    store.entry_update(bucket=B, key="k", value=b"2", revision=first.revision)
    with pytest.raises(RevisionMismatch):
        store.entry_update(bucket=B, key="k", value=b"3", revision=first.revision)

    marker = store.entry_delete(bucket=B, key="k")
    # As in NATS: a tombstone's revision is a valid compare-and-swap base.
    assert store.entry_update(bucket=B, key="k", value=b"4", revision=marker.revision).revision == 4


def test_update_of_a_missing_key_fails(bucket) -> None:
    with pytest.raises(RevisionMismatch):
        store.entry_update(bucket=B, key="nope", value=b"1", revision=1)


def test_create_and_update_together_are_rejected(bucket) -> None:
    with pytest.raises(InvalidArgument):
        store.entry_put(bucket=B, key="k", value=b"1", if_absent=True, if_revision=1)


# --- delete / purge -----------------------------------------------------------------


def test_delete_hides_the_key_but_keeps_its_history(bucket) -> None:
    store.entry_put(bucket=B, key="k", value=b"1")
    store.entry_delete(bucket=B, key="k")

    with pytest.raises(KeyNotFound):
        store.entry_get(bucket=B, key="k")
    assert store.key_list(bucket=B).keys == []
    assert [(e.revision, e.operation) for e in store.entry_history(bucket=B, key="k")] == [(1, "put"), (2, "delete")]


def test_purge_removes_the_whole_history_and_leaves_one_marker(bucket) -> None:
    for value in (b"1", b"22", b"333"):
        store.entry_put(bucket=B, key="k", value=value)
    store.entry_purge(bucket=B, key="k")

    assert [(e.revision, e.operation) for e in store.entry_history(bucket=B, key="k")] == [(4, "purge")]
    assert (info().values_count, info().bytes_total) == (1, 0)


def test_delete_and_purge_of_missing_or_deleted_keys_are_not_found(bucket) -> None:
    with pytest.raises(KeyNotFound):
        store.entry_delete(bucket=B, key="never")
    with pytest.raises(KeyNotFound):
        store.entry_purge(bucket=B, key="never")
    store.entry_put(bucket=B, key="k", value=b"1")
    store.entry_delete(bucket=B, key="k")
    with pytest.raises(KeyNotFound):
        store.entry_delete(bucket=B, key="k")
    # Purging a tombstoned key still removes its history (the Ironflow docs do delete, then purge).
    store.entry_purge(bucket=B, key="k")
    with pytest.raises(KeyNotFound):
        store.entry_purge(bucket=B, key="k")


# --- history ---------------------------------------------------------------------------


def test_history_keeps_the_last_n_entries_per_key_markers_included(bucket) -> None:
    for value in (b"1", b"2", b"3", b"4"):
        store.entry_put(bucket=B, key="k", value=value)
    store.entry_delete(bucket=B, key="k")
    store.entry_put(bucket=B, key="other", value=b"x")

    history = store.entry_history(bucket=B, key="k")

    assert [(e.revision, e.operation, bytes(e.value)) for e in history] == [
        (3, "put", b"3"),
        (4, "put", b"4"),
        (5, "delete", b""),
    ]
    assert (info().values_count, info().bytes_total) == (4, 3)


def test_get_at_a_kept_revision_and_not_at_a_trimmed_one(bucket) -> None:
    for value in (b"1", b"2", b"3", b"4"):
        store.entry_put(bucket=B, key="k", value=value)

    assert bytes(store.entry_get(bucket=B, key="k", revision=2).value) == b"2"
    with pytest.raises(RevisionNotFound):
        store.entry_get(bucket=B, key="k", revision=1)
    with pytest.raises(RevisionNotFound):
        store.entry_get(bucket=B, key="k", revision=99)


def test_get_at_the_revision_of_another_key_is_not_found(bucket) -> None:
    store.entry_put(bucket=B, key="a", value=b"1")
    store.entry_put(bucket=B, key="b", value=b"2")

    with pytest.raises(RevisionNotFound):
        store.entry_get(bucket=B, key="a", revision=2)


def test_get_at_a_marker_revision_is_not_found_as_in_nats(bucket) -> None:
    store.entry_put(bucket=B, key="k", value=b"1")
    marker = store.entry_delete(bucket=B, key="k")

    with pytest.raises(RevisionNotFound):
        store.entry_get(bucket=B, key="k", revision=marker.revision)


# --- TTL ----------------------------------------------------------------------------


def test_bucket_ttl_hides_expired_entries_at_once(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=60, history=5)
    bucket = app_bucket("sessions")
    store.entry_put(bucket=bucket, key="s1", value=b"old")
    clock.advance(30)
    store.entry_put(bucket=bucket, key="s2", value=b"new")
    clock.advance(31)

    with pytest.raises(KeyNotFound):
        store.entry_get(bucket=bucket, key="s1")
    with pytest.raises(KeyNotFound):
        store.entry_history(bucket=bucket, key="s1")
    assert bytes(store.entry_get(bucket=bucket, key="s2").value) == b"new"
    assert store.key_list(bucket=bucket).keys == ["s2"]
    # An expired key can be created again.
    assert store.entry_create(bucket=bucket, key="s1", value=b"again").revision == 3


def test_expired_history_entries_are_hidden_while_the_latest_lives(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=60, history=5)
    bucket = app_bucket("sessions")
    store.entry_put(bucket=bucket, key="k", value=b"1")
    clock.advance(40)
    store.entry_put(bucket=bucket, key="k", value=b"2")
    clock.advance(30)

    assert [bytes(e.value) for e in store.entry_history(bucket=bucket, key="k")] == [b"2"]
    with pytest.raises(RevisionNotFound):
        store.entry_get(bucket=bucket, key="k", revision=1)


def test_per_entry_expiry_and_bucket_ttl_the_earlier_wins(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=60)
    bucket = app_bucket("sessions")
    now = store.clock.now()
    short = store.entry_put(bucket=bucket, key="short", value=b"1", expires_at=now + timedelta(seconds=10))
    long = store.entry_put(bucket=bucket, key="long", value=b"1", expires_at=now + timedelta(seconds=600))

    assert short.expires_at == now + timedelta(seconds=10)
    assert long.expires_at == long.created_at + timedelta(seconds=60)
    clock.advance(11)
    assert store.key_list(bucket=bucket).keys == ["long"]


def test_update_of_an_expired_key_fails(make_bucket, clock) -> None:
    make_bucket("sessions", ttl_seconds=5)
    bucket = app_bucket("sessions")
    first = store.entry_put(bucket=bucket, key="k", value=b"1")
    clock.advance(6)

    with pytest.raises(RevisionMismatch):
        store.entry_update(bucket=bucket, key="k", value=b"2", revision=first.revision)


# --- limits -------------------------------------------------------------------------


def test_value_over_max_value_size_is_refused_and_nothing_stored(make_bucket) -> None:
    make_bucket("small", max_value_size=4)
    bucket = app_bucket("small")
    store.entry_put(bucket=bucket, key="k", value=b"1234")

    with pytest.raises(ValueTooBig):
        store.entry_put(bucket=bucket, key="k", value=b"12345")
    assert bytes(store.entry_get(bucket=bucket, key="k").value) == b"1234"
    assert info_of(bucket) == (1, 4, 1)


def test_write_over_max_bytes_is_refused_counting_what_the_write_trims(make_bucket) -> None:
    make_bucket("capped", max_bytes=10)  # history 1: an overwrite frees the old value
    bucket = app_bucket("capped")
    store.entry_put(bucket=bucket, key="a", value=b"123456")
    store.entry_put(bucket=bucket, key="a", value=b"1234567890")  # replaces 6 bytes: 10 in all

    with pytest.raises(BucketFull):
        store.entry_put(bucket=bucket, key="b", value=b"1")
    assert info_of(bucket) == (1, 10, 2)
    with pytest.raises(KeyNotFound):
        store.entry_get(bucket=bucket, key="b")


def info_of(bucket: str) -> tuple[int, int, int]:
    row = store.bucket_get(name=bucket)
    return row.values_count, row.bytes_total, row.last_revision


# --- counters ---------------------------------------------------------------------------


def test_counters_match_a_full_recount_after_mixed_writes(bucket) -> None:
    for index in range(20):
        store.entry_put(bucket=B, key=f"k{index % 4}", value=b"x" * index)
    store.entry_delete(bucket=B, key="k1")
    store.entry_purge(bucket=B, key="k2")

    rows = Entry.objects.filter(bucket__name=B)
    assert info().values_count == rows.count()
    assert info().bytes_total == sum(len(bytes(e.value)) for e in rows)


# --- buckets ----------------------------------------------------------------------------


def test_bucket_create_twice_is_refused(bucket) -> None:
    with pytest.raises(BucketExists):
        store.bucket_create(name=B)


@pytest.mark.parametrize(
    "options",
    [{"history": 0}, {"history": 65}, {"ttl_seconds": -1}, {"max_value_size": 0}, {"max_bytes": -5}],
)
def test_bucket_options_are_validated(db, options) -> None:
    with pytest.raises(InvalidArgument):
        store.bucket_create(name=app_bucket("x"), **options)


def test_bucket_delete_removes_keys_and_history(bucket) -> None:
    store.entry_put(bucket=B, key="k", value=b"1")
    store.bucket_delete(name=B)

    assert not Entry.objects.exists()
    with pytest.raises(BucketNotFound):
        store.entry_get(bucket=B, key="k")


def test_operations_on_a_missing_bucket(db) -> None:
    missing = app_bucket("missing")
    for call in (
        lambda: store.entry_put(bucket=missing, key="k", value=b""),
        lambda: store.entry_get(bucket=missing, key="k"),
        lambda: store.entry_history(bucket=missing, key="k"),
        lambda: store.key_list(bucket=missing),
        lambda: store.bucket_delete(name=missing),
    ):
        with pytest.raises(BucketNotFound):
            call()


# --- listing ----------------------------------------------------------------------------


def test_listing_is_sorted_live_keys_filtered_and_paged(bucket) -> None:
    for key in ["user.2", "user.1", "user.1.name", "user:1", "cfg", "gone"]:
        store.entry_put(bucket=B, key=key, value=b"1")
    store.entry_delete(bucket=B, key="gone")

    assert store.key_list(bucket=B).keys == ["cfg", "user.1", "user.1.name", "user.2", "user:1"]
    assert store.key_list(bucket=B, pattern="user.*").keys == ["user.1", "user.2"]
    first = store.key_list(bucket=B, limit=2)
    second = store.key_list(bucket=B, limit=2, cursor=first.next_cursor)
    third = store.key_list(bucket=B, limit=2, cursor=second.next_cursor)
    assert (first.keys, second.keys, third.keys) == (["cfg", "user.1"], ["user.1.name", "user.2"], ["user:1"])
    assert third.next_cursor is None


def test_listing_with_a_prefix_uses_an_index_range(bucket) -> None:
    store.entry_put(bucket=B, key="user.1", value=b"1")

    with CaptureQueriesContext(connection) as queries:
        store.key_list(bucket=B, pattern="user.*")

    listing_sql = queries.captured_queries[-1]["sql"]
    assert "\"key\" >= 'user.'" in listing_sql and "\"key\" < 'user/'" in listing_sql


# --- change events ----------------------------------------------------------------------


def receive_all(group: str, action) -> list[dict]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    try:
        action()
        events = []
        while True:
            try:
                events.append(async_to_sync(_receive_nowait)(layer, channel))
            except TimeoutError:
                return events
    finally:
        async_to_sync(layer.group_discard)(group, channel)


async def _receive_nowait(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=0.2)


def test_every_write_publishes_one_event_after_commit(bucket, django_capture_on_commit_callbacks) -> None:
    def writes() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            store.entry_put(bucket=B, key="user.1", value=b'{"a":1}')
        with django_capture_on_commit_callbacks(execute=True):
            store.entry_delete(bucket=B, key="user.1")
        with django_capture_on_commit_callbacks(execute=True):
            store.entry_purge(bucket=B, key="user.1")

    events = receive_all(bucket_group(B), writes)

    assert [(e["type"], e["bucket"], e["key"], e["revision"], e["operation"]) for e in events] == [
        ("kv_update", "settings", "user.1", 1, "put"),
        ("kv_update", "settings", "user.1", 2, "delete"),
        ("kv_update", "settings", "user.1", 3, "purge"),
    ]
    assert base64.b64decode(events[0]["value"]) == b'{"a":1}'
    assert events[1]["value"] == events[2]["value"] == ""
    assert events[0]["created_at"].endswith("Z")


def test_a_rolled_back_write_publishes_nothing(bucket, django_capture_on_commit_callbacks) -> None:
    def rolled_back() -> None:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
            store.entry_put(bucket=B, key="k", value=b"1")
            raise RuntimeError("abort")

    assert receive_all(bucket_group(B), rolled_back) == []
    assert info().last_revision == 0


# --- key formats and the key quota -----------------------------------------------------


def test_text_key_buckets_take_any_utf8_without_controls(make_bucket) -> None:
    make_bucket("items", key_format="text")
    bucket = app_bucket("items")

    store.entry_put(bucket=bucket, key="héllo wörld/ü?#%", value=b"1")

    assert store.entry_get(bucket=bucket, key="héllo wörld/ü?#%", key_format="text").revision == 1
    with pytest.raises(InvalidArgument):
        store.entry_put(bucket=bucket, key="bell\x07", value=b"1")
    with pytest.raises(InvalidArgument):
        store.entry_put(bucket=bucket, key="x" * 513, value=b"1")


def test_nats_buckets_still_refuse_text_keys(bucket) -> None:
    with pytest.raises(InvalidArgument):
        store.entry_put(bucket=B, key="with space", value=b"1")


def test_max_keys_refuses_new_keys_but_not_overwrites(make_bucket) -> None:
    make_bucket("quota", max_keys=2)
    bucket = app_bucket("quota")
    store.entry_put(bucket=bucket, key="a", value=b"1")
    store.entry_put(bucket=bucket, key="b", value=b"1")

    with pytest.raises(KeyLimitReached):
        store.entry_put(bucket=bucket, key="c", value=b"1")
    store.entry_put(bucket=bucket, key="a", value=b"2")
    store.entry_delete(bucket=bucket, key="a")
    assert store.entry_put(bucket=bucket, key="c", value=b"1").revision == 5
    assert store.bucket_get(name=bucket).live_keys == 2


def test_live_key_count_follows_deletes_purges_and_expiry(make_bucket, clock) -> None:
    make_bucket("quota", ttl_seconds=10)
    bucket = app_bucket("quota")
    for key in ("a", "b", "c"):
        store.entry_put(bucket=bucket, key=key, value=b"1")
    store.entry_delete(bucket=bucket, key="a")
    store.entry_purge(bucket=bucket, key="b")
    assert store.bucket_get(name=bucket).live_keys == 1

    clock.advance(11)
    sweep_expired()
    assert store.bucket_get(name=bucket).live_keys == 0


@pytest.mark.django_db(transaction=True)
def test_writes_after_a_connection_health_check_succeed(make_bucket) -> None:
    """Django checks a persistent connection on a request's first cursor: a write that
    follows the check still runs (it once ended up queued among pipelined statements)."""
    bucket = app_bucket(make_bucket())
    for expected_revision in (1, 2, 3):
        connection.health_check_done = False
        entry = store.entry_put(bucket=bucket, key="k", value=b"v")
        assert entry.revision == expected_revision
    assert store.entry_get(bucket=bucket, key="k").revision == 3


def test_bucket_ensure_creates_once_and_then_returns_the_same_bucket(db) -> None:
    first = store.bucket_ensure(name="SYS_config_ensure", history=7)
    again = store.bucket_ensure(name="SYS_config_ensure", history=3)

    assert again.pk == first.pk and again.history == 7  # options only matter at creation
