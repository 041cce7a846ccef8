"""Reads behind the watch: a bucket's position, its changes after a revision, its live values.

Revisions are gapless per bucket and a write commits revision N only after N-1
committed (each write takes the bucket row lock), so "every kept entry with
``after < revision <= through``", for a ``through`` read from the bucket row, is
the complete change stream in that range as far as it is still kept: a
revision missing from it was superseded (history, purge) or swept, never still
in flight. Watchers use that to replay ``?since=``, to fill gaps left by
reordered or dropped live events, and to check they missed nothing while idle.

All functions take internal bucket names and return ``kv_update`` events as
the core publishes them (``buckets.core.events.change_event``), oldest first.
"""

from dataclasses import dataclass

from django.db.models import Min, Q, QuerySet

from buckets.core import clock, store
from buckets.core.events import ChangeEvent, change_event
from buckets.core.names import public_name
from buckets.core.wildcards import KeyPattern
from buckets.models import Bucket, Entry

_EVENT_FIELDS = ("key", "value", "revision", "operation", "created_at")


@dataclass(frozen=True)
class BucketPosition:
    last_revision: int
    # The smallest kept revision; ``last_revision + 1`` when nothing is kept.
    oldest_revision: int


def bucket_position(*, bucket: str) -> BucketPosition | None:
    """The bucket's last and oldest kept revision, or None if it does not exist."""
    row = Bucket.objects.filter(name=bucket).values_list("pk", "last_revision").first()
    if row is None:
        return None
    bucket_id, last_revision = row
    # Read after last_revision: anything kept at or below it has committed by now.
    oldest = Entry.objects.filter(bucket_id=bucket_id).aggregate(oldest=Min("revision"))["oldest"]
    return BucketPosition(last_revision=last_revision, oldest_revision=last_revision + 1 if oldest is None else oldest)


def _matching(rows: QuerySet[Entry], pattern: KeyPattern | None) -> QuerySet[Entry]:
    """Narrow ``rows`` to keys matching ``pattern`` (index range on the literal prefix, then a regex)."""
    return store.narrow_keys(rows, pattern=pattern)


def _events(bucket: str, rows: QuerySet[Entry]) -> list[ChangeEvent]:
    name = public_name(bucket)
    return [
        change_event(
            bucket=name,
            key=key,
            value=bytes(value),
            revision=revision,
            operation=operation,
            created_at=created_at,
            sealed=sealed,
        )
        for key, value, revision, operation, created_at, sealed in rows.values_list(*_EVENT_FIELDS, "bucket__sealed")
    ]


def change_events_after(
    *, bucket: str, after: int, through: int, pattern: KeyPattern | None = None, limit: int = 500
) -> list[ChangeEvent]:
    """Kept entries with ``after < revision <= through`` whose key matches, oldest first, at most ``limit``.

    Markers (delete, purge) are included. Keys whose latest entry expired are
    left out with their whole history, as reads treat them as gone.
    """
    now = clock.now()
    expired_keys = Entry.objects.filter(bucket__name=bucket, is_latest=True, expires_at__lte=now).values("key")
    rows = (
        Entry.objects.filter(bucket__name=bucket, revision__gt=after, revision__lte=through)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(key__in=expired_keys)
    )
    return _events(bucket, _matching(rows, pattern).order_by("revision")[:limit])


def current_events(
    *, bucket: str, through: int, after: int = 0, pattern: KeyPattern | None = None, limit: int = 500
) -> list[ChangeEvent]:
    """Live values (latest, unexpired puts) with ``after < revision <= through`` whose key matches, by revision.

    A key rewritten after ``through`` is left out here: the watcher gets it as a
    live change instead, so a page read late never shows a value twice.
    """
    rows = Entry.objects.filter(
        bucket__name=bucket, is_latest=True, operation=Entry.Operation.PUT, revision__gt=after, revision__lte=through
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now()))
    return _events(bucket, _matching(rows, pattern).order_by("revision")[:limit])
