"""buckets.core.reseal: in-place rewrites keep revisions, history and counters exact."""

import pytest
from django.db.models import Sum

from buckets.core import events, reseal, store
from buckets.core.exceptions import BucketNotFound, KeyExists, KeyNotFound
from buckets.models import Bucket, Entry

pytestmark = pytest.mark.django_db


def assert_counters_exact(name: str) -> None:
    bucket = Bucket.objects.get(name=name)
    entries = Entry.objects.filter(bucket=bucket)
    assert bucket.values_count == entries.count()
    assert bucket.bytes_total == (entries.aggregate(total=Sum("size"))["total"] or 0)
    assert bucket.live_keys == entries.filter(is_latest=True, operation="put").count()


@pytest.fixture
def bucket(make_bucket) -> str:
    make_bucket("data", history=5)
    for version in range(3):
        store.entry_put(bucket="APP_data", key="a", value=f"a{version}".encode())
    store.entry_put(bucket="APP_data", key="b", value=b"b0")
    return "APP_data"


def test_reseal_rewrites_every_kept_put_in_place(bucket: str) -> None:
    before = list(Entry.objects.order_by("id").values_list("id", "key", "revision", "is_latest"))
    last_revision = Bucket.objects.get(name=bucket).last_revision

    batch = reseal.entries_reseal(bucket=bucket, transform=lambda entry: b"sealed:" + bytes(entry.value))

    assert batch.rewritten == 4 and batch.next_after_id is None
    assert list(Entry.objects.order_by("id").values_list("id", "key", "revision", "is_latest")) == before
    assert Bucket.objects.get(name=bucket).last_revision == last_revision
    assert bytes(store.entry_get(bucket=bucket, key="a").value) == b"sealed:a2"
    assert_counters_exact(bucket)


def test_reseal_pages_by_id_and_leaves_what_the_transform_declines(bucket: str) -> None:
    first = reseal.entries_reseal(bucket=bucket, transform=lambda entry: None, limit=3)
    rest = reseal.entries_reseal(bucket=bucket, transform=lambda entry: b"x", after_id=first.next_after_id, limit=3)

    assert (first.examined, first.rewritten, rest.examined, rest.rewritten) == (3, 0, 1, 1)
    assert rest.next_after_id is None
    assert_counters_exact(bucket)


def test_reseal_of_a_missing_bucket(db) -> None:
    with pytest.raises(BucketNotFound):
        reseal.entries_reseal(bucket="APP_nope", transform=lambda entry: None)


def test_move_takes_the_whole_history_along(bucket: str, monkeypatch) -> None:
    published = []
    monkeypatch.setattr(events, "publish", lambda group, event: published.append(event))
    history = [(entry.revision, entry.created_at) for entry in store.entry_history(bucket=bucket, key="a")]

    latest = reseal.entry_move(bucket=bucket, key="a", new_key="c", transform=lambda entry: bytes(entry.value) * 2)

    assert latest.key == "c"
    assert [(entry.revision, entry.created_at) for entry in store.entry_history(bucket=bucket, key="c")] == history
    assert bytes(store.entry_get(bucket=bucket, key="c").value) == b"a2a2"
    with pytest.raises(KeyNotFound):
        store.entry_history(bucket=bucket, key="a")
    assert published == []
    assert_counters_exact(bucket)


def test_move_onto_a_live_key_is_refused(bucket: str) -> None:
    with pytest.raises(KeyExists):
        reseal.entry_move(bucket=bucket, key="a", new_key="b", transform=lambda entry: bytes(entry.value))


def test_move_clears_the_leftovers_of_a_deleted_key(bucket: str) -> None:
    store.entry_delete(bucket=bucket, key="b")

    reseal.entry_move(bucket=bucket, key="a", new_key="b", transform=lambda entry: bytes(entry.value))

    assert [entry.operation for entry in store.entry_history(bucket=bucket, key="b")] == ["put", "put", "put"]
    assert_counters_exact(bucket)


def test_move_of_a_missing_or_deleted_key(bucket: str) -> None:
    store.entry_delete(bucket=bucket, key="b")

    with pytest.raises(KeyNotFound):
        reseal.entry_move(bucket=bucket, key="b", new_key="z", transform=lambda entry: b"")
    with pytest.raises(KeyNotFound):
        reseal.entry_move(bucket=bucket, key="nope", new_key="z", transform=lambda entry: b"")
