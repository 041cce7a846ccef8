"""Physical removal of expired entries (``manage.py kv_sweep``).

Reads hide expired data at once; this frees the rows and brings the bucket
counters down, like NATS removing messages past their max age. It works in
small batches, each its own short transaction under the bucket lock, so a
writer never waits for more than one batch.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Sum

from buckets import clock
from buckets.models import Bucket, Entry
from kvsite import metrics


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


def sweep_expired(*, batch_size: int = 500) -> SweepReport:
    """One pass over every bucket with expired entries."""
    now = clock.now()
    report = SweepReport()
    bucket_ids = Entry.objects.filter(expires_at__lte=now).values_list("bucket_id", flat=True).distinct()
    names = dict(Bucket.objects.filter(pk__in=list(bucket_ids)).values_list("pk", "name"))
    for bucket_id, name in names.items():
        while True:
            entries, keys = _sweep_batch(bucket_id=bucket_id, now=now, batch_size=batch_size)
            if not entries:
                break
            report.entries_removed += entries
            report.keys_removed += keys
            report.buckets[name] = report.buckets.get(name, 0) + entries
    metrics.SWEEPS.inc()
    metrics.SWEPT_ENTRIES.inc(report.entries_removed)
    return report
