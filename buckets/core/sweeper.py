"""Physical removal of expired entries and of old delete markers (``manage.py kv_sweep``).

Reads hide expired data at once; this frees the rows and brings the bucket
counters down, like NATS removing messages past their max age. It works in
small batches, each its own short transaction under the bucket lock, so a
writer never waits for more than one batch.

Delete and purge markers stay until they are purged as in NATS' ``PurgeDeletes``:
a key whose latest entry is a marker older than a threshold goes with its whole
history. Watchers resuming from before that lose the marker's event, which is
why it is a threshold (30 minutes, NATS' default) and never immediate.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet, Sum

from buckets.core import clock, metrics
from buckets.core.write_plan import DELETE, PURGE
from buckets.models import Bucket, Entry


@dataclass
class SweepReport:
    entries_removed: int = 0
    keys_removed: int = 0
    buckets: dict[str, int] = field(default_factory=dict)


def _sweep_batch(*, bucket_id: int, now: datetime, batch_size: int) -> tuple[int, int]:
    """Remove one batch of a bucket's expired entries; returns (entries, keys) removed."""
    with transaction.atomic():
        bucket = Bucket.objects.select_for_update().filter(pk=bucket_id).first()
        if bucket is None:
            return 0, 0
        expired = list(
            Entry.objects.filter(bucket=bucket, expires_at__lte=now).values_list("id", "key", "is_latest")[:batch_size]
        )
        if not expired:
            return 0, 0
        # A key whose latest entry expired is gone as a whole: its older entries go too.
        gone_keys = {key for _, key, is_latest in expired if is_latest}
        gone_live = Entry.objects.filter(bucket=bucket, key__in=gone_keys, is_latest=True, operation="put").count()
        doomed = {entry_id for entry_id, _, _ in expired}
        if gone_keys:
            doomed |= set(Entry.objects.filter(bucket=bucket, key__in=gone_keys).values_list("id", flat=True))
        doomed_rows = Entry.objects.filter(id__in=doomed)
        freed = doomed_rows.aggregate(total=Sum("size"))["total"] or 0
        removed, _ = doomed_rows.delete()
        Bucket.objects.filter(pk=bucket.pk).update(
            values_count=bucket.values_count - removed,
            bytes_total=bucket.bytes_total - freed,
            live_keys=bucket.live_keys - gone_live,
        )
        return removed, len(gone_keys)


def _sweep_buckets(rows: QuerySet[Entry], batch: Callable[[int], tuple[int, int]]) -> SweepReport:
    """Run ``batch`` (bucket id -> entries, keys removed) on every bucket holding ``rows`` until it finds nothing."""
    report = SweepReport()
    bucket_ids = list(rows.values_list("bucket_id", flat=True).distinct())
    for bucket_id, name in Bucket.objects.filter(pk__in=bucket_ids).values_list("pk", "name"):
        while True:
            entries, keys = batch(bucket_id)
            if not entries:
                break
            report.entries_removed += entries
            report.keys_removed += keys
            report.buckets[name] = report.buckets.get(name, 0) + entries
    metrics.SWEPT_ENTRIES.inc(report.entries_removed)
    return report


def sweep_expired(*, batch_size: int = 500) -> SweepReport:
    """One pass over every bucket with expired entries."""
    now = clock.now()
    report = _sweep_buckets(
        Entry.objects.filter(expires_at__lte=now),
        lambda bucket_id: _sweep_batch(bucket_id=bucket_id, now=now, batch_size=batch_size),
    )
    metrics.SWEEPS.inc()
    return report


def _purge_markers_batch(*, bucket_id: int, cutoff: datetime, batch_size: int) -> tuple[int, int]:
    """Remove one batch of keys whose latest entry is a marker from before ``cutoff``; (entries, keys)."""
    with transaction.atomic():
        bucket = Bucket.objects.select_for_update().filter(pk=bucket_id).first()
        if bucket is None:
            return 0, 0
        keys = list(
            Entry.objects.filter(
                bucket=bucket, is_latest=True, operation__in=(DELETE, PURGE), created_at__lte=cutoff
            ).values_list("key", flat=True)[:batch_size]
        )
        if not keys:
            return 0, 0
        doomed_rows = Entry.objects.filter(bucket=bucket, key__in=keys)
        freed = doomed_rows.aggregate(total=Sum("size"))["total"] or 0
        removed, _ = doomed_rows.delete()
        # No live key goes: their latest entries were markers.
        Bucket.objects.filter(pk=bucket.pk).update(
            values_count=bucket.values_count - removed, bytes_total=bucket.bytes_total - freed
        )
        return removed, len(keys)


def purge_deletes(*, older_than: timedelta, name_prefix: str = "", batch_size: int = 500) -> SweepReport:
    """NATS' ``PurgeDeletes``: drop keys whose latest entry is a marker older than ``older_than``.

    Every bucket, or those whose internal name starts with ``name_prefix``.
    """
    cutoff = clock.now() - older_than
    markers = Entry.objects.filter(
        is_latest=True, operation__in=(DELETE, PURGE), created_at__lte=cutoff, bucket__name__startswith=name_prefix
    )
    return _sweep_buckets(
        markers, lambda bucket_id: _purge_markers_batch(bucket_id=bucket_id, cutoff=cutoff, batch_size=batch_size)
    )
