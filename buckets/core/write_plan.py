"""The rules of one key write, shared by ``store._write`` and the bulk writes.

Given the bucket as locked, the key's kept rows and the write, decide whether the
write is allowed and what it changes: which rows it pushes out of the history, which
row stops being the latest, the bucket counters afterwards and the new entry's expiry.
Pure: the callers read the rows under the bucket lock and apply the plan.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from buckets.core.exceptions import BucketFull, KeyExists, KeyLimitReached, KeyNotFound, RevisionMismatch, ValueTooBig
from buckets.models import Bucket, Entry

PUT = Entry.Operation.PUT
DELETE = Entry.Operation.DELETE
PURGE = Entry.Operation.PURGE
UNLIMITED = -1

# A kept row of a key, as the callers select it: (id, revision, operation, size, expires_at).
KeptRow = tuple[int, int, str, int, datetime | None]


@dataclass(frozen=True)
class Counters:
    """A bucket's counters: kept entries (markers included), their bytes, keys whose latest is a put."""

    values_count: int
    bytes_total: int
    live_keys: int

    @classmethod
    def of(cls, bucket: Bucket) -> "Counters":
        return cls(values_count=bucket.values_count, bytes_total=bucket.bytes_total, live_keys=bucket.live_keys)


@dataclass(frozen=True)
class WritePlan:
    removed_ids: list[int]
    demoted_id: int | None  # the previous latest row, kept in the history
    counters: Counters
    expires_at: datetime | None


def is_live(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


def entry_expiry(bucket: Bucket, now: datetime, expires_at: datetime | None) -> datetime | None:
    """The earlier of the bucket's TTL and the entry's own expiry."""
    candidates = [moment for moment in (expires_at,) if moment is not None]
    if bucket.ttl_seconds:
        candidates.append(now + timedelta(seconds=bucket.ttl_seconds))
    return min(candidates) if candidates else None


def write_plan(
    *,
    bucket: Bucket,
    counters: Counters,
    key: str,
    kept: list[KeptRow],
    operation: str,
    size: int,
    now: datetime,
    if_absent: bool = False,
    if_revision: int | None = None,
    expires_at: datetime | None = None,
) -> WritePlan:
    """The plan of one write of ``size`` bytes to ``key``, whose kept rows are ``kept`` (newest first).

    Raises the refusal: ValueTooBig, KeyExists / RevisionMismatch (the conditions, markers
    included as in NATS), KeyNotFound (delete or purge of nothing), BucketFull, KeyLimitReached.
    """
    if operation == PUT and size > bucket.max_value_size:
        raise ValueTooBig(size, bucket.max_value_size)
    latest = kept[0] if kept else None
    # A key whose latest entry expired is gone, history included (as once swept).
    visible = latest if latest is not None and is_live(latest[4], now) else None
    visible_operation = visible[2] if visible else None
    key_revision = visible[1] if visible else None
    if if_absent and visible is not None and visible_operation == PUT:
        raise KeyExists(key, visible[1])
    if if_revision is not None and key_revision != if_revision:
        raise RevisionMismatch(key, if_revision, key_revision)
    if operation == DELETE and visible_operation != PUT:
        raise KeyNotFound(key)
    if operation == PURGE and visible_operation not in (PUT, DELETE):
        raise KeyNotFound(key)

    removed = kept if operation == PURGE or visible is None else kept[bucket.history - 1 :]
    after = Counters(
        values_count=counters.values_count + 1 - len(removed),
        bytes_total=counters.bytes_total + size - sum(row[3] for row in removed),
        # Keys whose latest entry is a put, until a write or the sweeper removes them.
        live_keys=counters.live_keys + (operation == PUT) - (latest is not None and latest[2] == PUT),
    )
    if operation == PUT and bucket.max_bytes != UNLIMITED and after.bytes_total > bucket.max_bytes:
        raise BucketFull(bucket.max_bytes)
    if operation == PUT and bucket.max_keys != UNLIMITED and after.live_keys > bucket.max_keys:
        raise KeyLimitReached(bucket.max_keys)
    return WritePlan(
        removed_ids=[row[0] for row in removed],
        demoted_id=latest[0] if latest is not None and latest not in removed else None,
        counters=after,
        expires_at=entry_expiry(bucket, now, expires_at),
    )
