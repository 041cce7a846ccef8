"""The PL/pgSQL write function and ``write_plan`` decide alike: one table of cases through both, compared.

On PostgreSQL a key write is one call of ``kvsite_entry_write()`` (migration 0005); elsewhere
``write_plan`` runs in Python under the bucket lock. Both paths run on PostgreSQL, so each
case here writes the same sequence into two twin buckets, one through each path, and the
outcomes (revision, expiry or the refusal), the kept rows and the counters must be equal.
"""

from datetime import timedelta
from typing import Any

import pytest

from buckets.core import clock, store
from buckets.core.keys import TEXT_KEYS, validate_key
from buckets.models import Bucket, Entry

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PUT, DELETE, PURGE = store.PUT, store.DELETE, store.PURGE

# name: (bucket options, [(operation, key, value, conditions)])
CASES: dict[str, tuple[dict[str, Any], list[tuple[str, str, bytes, dict[str, Any]]]]] = {
    "puts past the history": ({"history": 2}, [(PUT, "k", b"a", {}), (PUT, "k", b"bb", {}), (PUT, "k", b"ccc", {})]),
    "create if absent, twice": ({}, [(PUT, "k", b"a", {"if_absent": True}), (PUT, "k", b"b", {"if_absent": True})]),
    "compare-and-swap, right then stale": (
        {"history": 5},
        [(PUT, "k", b"a", {}), (PUT, "k", b"b", {"if_revision": 1}), (PUT, "k", b"c", {"if_revision": 1})],
    ),
    "compare-and-swap on a missing key": ({}, [(PUT, "k", b"a", {"if_revision": 3})]),
    "delete, then create again": (
        {"history": 3},
        [(PUT, "k", b"a", {}), (DELETE, "k", b"", {}), (PUT, "k", b"b", {"if_absent": True})],
    ),
    "delete a missing key, and a deleted one": (
        {},
        [(DELETE, "k", b"", {}), (PUT, "k", b"a", {}), (DELETE, "k", b"", {}), (DELETE, "k", b"", {})],
    ),
    "purge takes the history": ({"history": 5}, [(PUT, "k", b"a", {}), (PUT, "k", b"bb", {}), (PURGE, "k", b"", {})]),
    "conditional delete": (
        {"history": 3},
        [(PUT, "k", b"a", {}), (DELETE, "k", b"", {"if_revision": 7}), (DELETE, "k", b"", {"if_revision": 1})],
    ),
    "value over the bucket's size": ({"max_value_size": 3}, [(PUT, "k", b"abcd", {}), (PUT, "k", b"abc", {})]),
    "bucket full, and room made by history": (
        {"max_bytes": 5, "history": 1},
        [(PUT, "a", b"aaa", {}), (PUT, "b", b"bbb", {}), (PUT, "a", b"a", {}), (PUT, "b", b"bbb", {})],
    ),
    "key limit, overwrites still fine": (
        {"max_keys": 1},
        [
            (PUT, "a", b"1", {}),
            (PUT, "b", b"2", {}),
            (PUT, "a", b"3", {}),
            (DELETE, "a", b"", {}),
            (PUT, "b", b"4", {}),
        ],
    ),
    "bucket TTL and an earlier own expiry": (
        {"ttl_seconds": 60, "history": 2},
        [(PUT, "a", b"1", {}), (PUT, "b", b"2", {"expires_at": 30}), (PUT, "c", b"3", {"expires_at": 90})],
    ),
    "a key NATS refuses": ({}, [(PUT, "a b", b"1", {}), (PUT, "ok", b"1", {})]),
    "a text bucket takes it": ({"key_format": "text"}, [(PUT, "a b", b"1", {}), (PUT, "a\tb", b"1", {})]),
}


def run(bucket: str, steps, write, now) -> list[tuple]:
    outcomes = []
    for operation, key, value, conditions in steps:
        options = dict(conditions)
        if "expires_at" in options:
            options["expires_at"] = now + timedelta(seconds=options["expires_at"])
        options.setdefault("if_absent", False)
        options.setdefault("if_revision", None)
        options.setdefault("expires_at", None)
        try:
            # What store._write checks before either path: no key format takes more than "text".
            validate_key(key, key_format=TEXT_KEYS)
            written = write(bucket_name=bucket, key=key, operation=operation, value=value, now=now, **options)
        except Exception as refusal:  # the refusal's kind and what it tells the client
            outcomes.append((type(refusal).__name__, getattr(refusal, "details", {})))
        else:
            outcomes.append(("ok", written.revision, written.expires_at))
    return outcomes


def state(bucket: str) -> tuple:
    row = Bucket.objects.get(name=bucket)
    rows = Entry.objects.filter(bucket=row).order_by("revision")
    kept = [
        (entry.key, entry.revision, entry.operation, bytes(entry.value), entry.size, entry.is_latest, entry.expires_at)
        for entry in rows
    ]
    return kept, (row.last_revision, row.values_count, row.bytes_total, row.live_keys)


@pytest.mark.parametrize("case", list(CASES))
def test_the_database_function_and_write_plan_agree(postgres_only, case: str) -> None:
    options, steps = CASES[case]
    now = clock.now()
    store.bucket_create(name="APP_by_function", **options)
    store.bucket_create(name="APP_by_plan", **options)

    in_database = run("APP_by_function", steps, store._write_in_database, now)
    in_python = run("APP_by_plan", steps, store._write_in_python, now)

    assert in_database == in_python
    assert state("APP_by_function") == state("APP_by_plan")
    # The table means something: every case writes or refuses at least once as designed.
    assert any(outcome[0] == "ok" for outcome in in_database) or case == "compare-and-swap on a missing key"


def test_a_missing_bucket_is_refused_alike(postgres_only) -> None:
    now = clock.now()

    outcomes = [run("APP_nowhere", [(PUT, "k", b"v", {})], write, now) for write in (
        store._write_in_database, store._write_in_python)]  # fmt: skip

    assert outcomes[0] == outcomes[1] == [("BucketNotFound", {})]
