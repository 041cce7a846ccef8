"""Writers in several processes: no shared revision, no lost compare-and-swap update.

Runs on both databases; the issue's bar is PostgreSQL (row lock on the bucket),
SQLite gets the same guarantee from IMMEDIATE transactions.
"""

import multiprocessing

import pytest
from django.db import connections

from buckets import store
from buckets.exceptions import RevisionMismatch
from buckets.models import Entry
from buckets.names import app_bucket

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = app_bucket("counters")
PROCESSES = 8
INCREMENTS = 50


def increment_with_cas(count: int, results) -> None:
    """Read-modify-write ``count`` times, retrying on 412 as a client would."""
    conflicts = 0
    for _ in range(count):
        while True:
            current = store.entry_get(bucket=BUCKET, key="counter")
            try:
                store.entry_update(
                    bucket=BUCKET,
                    key="counter",
                    value=str(int(bytes(current.value)) + 1).encode(),
                    revision=current.revision,
                )
                break
            except RevisionMismatch:
                conflicts += 1
    results.put(conflicts)
    connections.close_all()


def put_distinct_keys(worker: int, count: int, results) -> None:
    revisions = [store.entry_put(bucket=BUCKET, key=f"w{worker}.k{i}", value=b"x").revision for i in range(count)]
    results.put(revisions)
    connections.close_all()


def run_processes(target, args_for) -> list:
    # Each child must open its own connection: close ours before forking.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=target, args=(*args_for(index), results)) for index in range(PROCESSES)]
    for process in processes:
        process.start()
    collected = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return collected


def test_cas_increments_from_8_processes_lose_no_update(make_bucket) -> None:
    make_bucket("counters", history=5)
    store.entry_put(bucket=BUCKET, key="counter", value=b"0")

    conflicts = run_processes(increment_with_cas, lambda index: (INCREMENTS,))

    final = store.entry_get(bucket=BUCKET, key="counter")
    assert int(bytes(final.value)) == PROCESSES * INCREMENTS == 400
    assert final.revision == 1 + PROCESSES * INCREMENTS
    assert sum(conflicts) > 0, "the processes never raced; the test proves nothing"


def test_concurrent_writers_never_share_a_revision(make_bucket) -> None:
    make_bucket("counters")

    per_worker = run_processes(put_distinct_keys, lambda index: (index, 25))

    revisions = sorted(revision for worker in per_worker for revision in worker)
    assert revisions == list(range(1, PROCESSES * 25 + 1))
    assert sorted(Entry.objects.filter(bucket__name=BUCKET).values_list("revision", flat=True)) == revisions
    info = store.bucket_get(name=BUCKET)
    assert (info.values_count, info.last_revision) == (PROCESSES * 25, PROCESSES * 25)
