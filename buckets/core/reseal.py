"""In-place rewrites of stored values: same revisions, new bytes.

Re-sealing a secret under a new master key, or for a new name, changes how a
value is stored, not the value: it must not create revisions, reach watchers or
push older versions out of the history. These functions rewrite the kept rows
themselves, under the same discipline as ``buckets/core/store.py``: each call is one
transaction that first locks the bucket row (so no write of the bucket
interleaves, and the rows it reads are the rows it rewrites), and keeps the
bucket's ``bytes_total`` / ``values_count`` / ``live_keys`` counters exact.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from buckets.core import clock, store
from buckets.core.exceptions import InvalidArgument, KeyExists, KeyNotFound
from buckets.core.keys import validate_key
from buckets.models import Bucket, Entry

PUT = Entry.Operation.PUT


@dataclass(frozen=True)
class ResealBatch:
    examined: int
    rewritten: int
    # Resume after this entry id; None once the bucket has no more entries.
    next_after_id: int | None


@transaction.atomic
def entries_reseal(
    *, bucket: str, transform: Callable[[Entry], bytes | None], after_id: int = 0, limit: int = 500
) -> ResealBatch:
    """Rewrite one batch of a bucket's kept values (every revision of every key).

    ``transform`` gets each put entry with ``id > after_id`` in id order and
    returns the new bytes, or None to leave it. Callers loop on
    ``next_after_id``; each call is short, so writers wait at most one batch.
    """
    locked = store.bucket_lock(bucket)
    rows = list(Entry.objects.filter(bucket=locked, operation=PUT, id__gt=after_id).order_by("id")[:limit])
    delta = 0
    rewritten = 0
    for entry in rows:
        value = transform(entry)
        if value is None or value == bytes(entry.value):
            continue
        Entry.objects.filter(pk=entry.pk).update(value=value, size=len(value))
        delta += len(value) - entry.size
        rewritten += 1
    if delta:
        Bucket.objects.filter(pk=locked.pk).update(bytes_total=F("bytes_total") + delta)
    next_after_id = rows[-1].id if len(rows) == limit else None
    return ResealBatch(examined=len(rows), rewritten=rewritten, next_after_id=next_after_id)


@transaction.atomic
def entry_move(*, bucket: str, key: str, new_key: str, transform: Callable[[Entry], bytes]) -> Entry:
    """Move ``key`` with its whole kept history to ``new_key``; return the latest entry.

    Revisions and timestamps stay as they were; ``transform`` gives each moved
    put its bytes under the new name. KeyNotFound if ``key`` has no live value,
    KeyExists if ``new_key`` has one. Leftovers of ``new_key`` (delete/purge
    markers, expired values) are removed first, as a write there would.
    No change event is published: no revision is created, and the only
    callers (secret renames) work on buckets nobody watches.
    """
    if key == new_key:
        raise InvalidArgument("the new key is the old key")
    locked = store.bucket_lock(bucket)
    validate_key(key, key_format=locked.key_format)
    validate_key(new_key, key_format=locked.key_format)
    now = clock.now()
    moved = list(Entry.objects.filter(bucket=locked, key=key).order_by("revision"))
    latest = moved[-1] if moved else None
    if latest is None or latest.operation != PUT or (latest.expires_at is not None and latest.expires_at <= now):
        raise KeyNotFound(key)
    leftovers = list(Entry.objects.filter(bucket=locked, key=new_key).order_by("-revision"))
    live_keys_delta = 0
    if leftovers:
        newest = leftovers[0]
        if newest.operation == PUT and (newest.expires_at is None or newest.expires_at > now):
            raise KeyExists(new_key, newest.revision)
        # An expired put still counts as a live key until swept; removing it here is that sweep.
        live_keys_delta = -1 if newest.operation == PUT else 0
        Entry.objects.filter(id__in=[row.id for row in leftovers]).delete()
    delta = -sum(row.size for row in leftovers)
    for entry in moved:
        value = transform(entry) if entry.operation == PUT else bytes(entry.value)
        Entry.objects.filter(pk=entry.pk).update(key=new_key, value=value, size=len(value))
        delta += len(value) - entry.size
        entry.key, entry.value, entry.size = new_key, value, len(value)
    Bucket.objects.filter(pk=locked.pk).update(
        values_count=F("values_count") - len(leftovers),
        bytes_total=F("bytes_total") + delta,
        live_keys=F("live_keys") + live_keys_delta,
    )
    return moved[-1]


def sealed_values_scan(*, batch_size: int = 1000) -> Iterator[tuple[str, bytes]]:
    """(bucket name, value) of every kept put in every sealed bucket, in id order.

    A read for reports (which master key seals how many values): no lock, pages by id.
    """
    after_id = 0
    while True:
        rows = list(
            Entry.objects.filter(bucket__sealed=True, operation=PUT, id__gt=after_id)
            .order_by("id")
            .values_list("id", "bucket__name", "value")[:batch_size]
        )
        for _, bucket_name, value in rows:
            yield bucket_name, bytes(value)
        if len(rows) < batch_size:
            return
        after_id = rows[-1][0]
