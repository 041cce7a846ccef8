"""Many writes to one bucket in one transaction: the bulk form of ``store._write``.

The rules are ``store._write``'s (``buckets.core.write_plan``), applied to a list: the bucket row is locked
once, every write gets the next gapless revision in list order, each key keeps
at most ``history`` rows, a latest entry that expired takes its history with it,
the ``values_count`` / ``bytes_total`` / ``live_keys`` counters stay exact, and
change events go out only after commit. It is all or nothing: every write's
conditions and limits are checked first, and one refusal refuses the whole list
(``BulkWriteRejected`` names each refused write), so nothing is written.

The SQL is a fixed number of statements whatever the list's length: one read of
every kept row of the affected keys, one delete of the rows pushed out, one
update of the previous latest rows, one multi-row insert and one counter update.
On PostgreSQL each passes its lists as array parameters (``= ANY(%s)``,
``unnest``), so a statement has a handful of parameters whatever the batch
size: composing and binding a 9,000-parameter INSERT cost more than running
it. Other backends use the ORM, chunked to stay under SQLite's parameter limit.
"""

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.db import connection, transaction

from buckets.core import clock, metrics, store
from buckets.core.events import bucket_group, change_event, publish_many
from buckets.core.exceptions import (
    DomainError,
    InvalidArgument,
    KeyExists,
    RevisionMismatch,
)
from buckets.core.keys import validate_key
from buckets.core.names import public_name
from buckets.core.write_plan import DELETE, PURGE, PUT, Counters, KeptRow, write_plan
from buckets.models import Bucket, Entry

# Stays well under SQLite's bound-parameter limit on every supported version.
_CHUNK = 500

T = TypeVar("T")


@dataclass(frozen=True)
class BulkWrite:
    """One write of a bulk call; ``if_absent`` / ``if_revision`` as in ``store.entry_put``."""

    key: str
    operation: str = PUT
    value: bytes = b""
    expires_at: datetime | None = None
    if_absent: bool = False
    if_revision: int | None = None


@dataclass(frozen=True)
class BulkFailure:
    index: int
    key: str
    error: DomainError


class BulkWriteRejected(DomainError):
    """At least one write was refused, so none was made; ``failures`` says which and why.

    Status and code are those of the first refusal.
    """

    def __init__(self, failures: list[BulkFailure]) -> None:
        super().__init__(
            f"{len(failures)} write(s) refused; nothing was written",
            errors=[
                {"index": failure.index, "key": failure.key, "error": failure.error.message, "code": failure.error.code}
                for failure in failures
            ],
        )
        self.failures = failures
        self.status, self.code = failures[0].error.status, failures[0].error.code


def _chunks(items: list[T], size: int = _CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


_TABLE = Entry._meta.db_table


def _kept_rows(bucket: Bucket, keys: list[str]) -> dict[str, list[KeptRow]]:
    """Every kept row of ``keys``, newest first per key: (id, revision, operation, size, expires_at)."""
    kept: dict[str, list[KeptRow]] = {}
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key, id, revision, operation, size, expires_at FROM {_TABLE} "  # noqa: S608 (model's table)
                "WHERE bucket_id = %s AND key = ANY(%s) ORDER BY key, revision DESC",
                [bucket.pk, keys],
            )
            for key, *row in cursor.fetchall():
                kept.setdefault(key, []).append(tuple(row))
        return kept
    for chunk in _chunks(keys):
        rows = (
            Entry.objects.filter(bucket=bucket, key__in=chunk)
            .order_by("key", "-revision")
            .values_list("key", "id", "revision", "operation", "size", "expires_at")
        )
        for key, *row in rows:
            kept.setdefault(key, []).append(tuple(row))
    return kept


def entries_latest_live(*, bucket: Bucket, keys: list[str]) -> dict[str, Entry]:
    """The latest live value of each of ``keys`` that has one (``store.live_entries`` for a key list).

    One statement with an array parameter on PostgreSQL, chunked ``IN`` lists elsewhere.
    """
    now = clock.now()
    if _postgres():
        rows = Entry.objects.raw(
            f"SELECT * FROM {_TABLE} WHERE bucket_id = %s AND key = ANY(%s) AND is_latest "  # noqa: S608
            "AND operation = %s AND (expires_at IS NULL OR expires_at > %s)",
            [bucket.pk, keys, PUT, now],
        )
        return {row.key: row for row in rows}
    found: dict[str, Entry] = {}
    for chunk in _chunks(keys):
        found.update((row.key, row) for row in store.live_entries(bucket=bucket).filter(key__in=chunk))
    return found


@transaction.atomic
def entries_write_many(*, bucket: str, writes: Sequence[BulkWrite]) -> list[Entry]:
    """Apply ``writes`` to ``bucket`` in order, in one transaction; the new entries, in the same order.

    A key may appear only once per call (a second write of it is refused), so
    every write sees the key as it was before the call.
    """
    locked = store.bucket_lock(bucket)
    now = clock.now()
    failures: list[BulkFailure] = []
    keys: list[str] = []
    seen: set[str] = set()
    for index, write in enumerate(writes):
        try:
            if write.operation not in (PUT, DELETE, PURGE):
                raise InvalidArgument(f"unknown operation {write.operation!r}")
            if write.if_absent and write.if_revision is not None:
                raise InvalidArgument("if_absent and if_revision exclude each other")
            validate_key(write.key, key_format=locked.key_format)
            if write.key in seen:
                raise InvalidArgument(f"key {write.key!r} appears more than once")
        except DomainError as error:
            failures.append(BulkFailure(index, write.key, error))
            continue
        seen.add(write.key)
        keys.append(write.key)
    kept_by_key = _kept_rows(locked, keys)

    counters = Counters.of(locked)
    removed_ids: list[int] = []
    demoted_ids: list[int] = []
    planned: list[tuple[BulkWrite, datetime | None]] = []
    refused = {failure.index for failure in failures}
    for index, write in enumerate(writes):
        if index in refused:
            continue
        try:
            plan = write_plan(
                bucket=locked,
                counters=counters,
                key=write.key,
                kept=kept_by_key.get(write.key, []),
                operation=write.operation,
                size=len(write.value),
                now=now,
                if_absent=write.if_absent,
                if_revision=write.if_revision,
                expires_at=write.expires_at,
            )
        except DomainError as error:
            failures.append(BulkFailure(index, write.key, error))
            continue
        counters = plan.counters
        removed_ids.extend(plan.removed_ids)
        if plan.demoted_id is not None:
            demoted_ids.append(plan.demoted_id)
        planned.append((write, plan.expires_at))
    if failures:
        conflicts = sum(isinstance(failure.error, (KeyExists, RevisionMismatch)) for failure in failures)
        if conflicts:
            metrics.CAS_CONFLICTS.inc(conflicts)
        raise BulkWriteRejected(sorted(failures, key=lambda failure: failure.index))
    if not planned:
        return []

    first_revision = locked.last_revision + 1
    entries = [
        Entry(
            bucket=locked,
            key=write.key,
            revision=first_revision + offset,
            operation=write.operation,
            value=write.value,
            size=len(write.value),
            created_at=now,
            expires_at=expires_at,
            is_latest=True,
        )
        for offset, (write, expires_at) in enumerate(planned)
    ]
    if _postgres():
        _apply_postgres(locked, removed_ids, demoted_ids, entries)
    else:
        for chunk in _chunks(removed_ids):
            Entry.objects.filter(id__in=chunk).delete()
        # Before the insert: at most one latest row per key is a constraint.
        for chunk in _chunks(demoted_ids):
            Entry.objects.filter(id__in=chunk).update(is_latest=False)
        entries = Entry.objects.bulk_create(entries, batch_size=_CHUNK)
    Bucket.objects.filter(pk=locked.pk).update(
        last_revision=first_revision + len(planned) - 1,
        values_count=counters.values_count,
        bytes_total=counters.bytes_total,
        live_keys=counters.live_keys,
    )
    events = [
        change_event(
            bucket=public_name(locked.name),
            key=entry.key,
            value=bytes(entry.value),
            revision=entry.revision,
            operation=entry.operation,
            created_at=now,
            sealed=locked.sealed,
        )
        for entry in entries
    ]
    group = bucket_group(locked.name)
    transaction.on_commit(lambda: publish_many(group, events))
    written: dict[str, int] = {}
    for entry in entries:
        written[entry.operation] = written.get(entry.operation, 0) + 1
    for operation, count in written.items():
        transaction.on_commit(functools.partial(metrics.WRITES.labels(operation).inc, count))
    return entries


def _apply_postgres(bucket: Bucket, removed_ids: list[int], demoted_ids: list[int], entries: list[Entry]) -> None:
    """The delete, demote and insert of a bulk write as three array-parameter statements; sets the new ids."""
    with connection.cursor() as cursor:
        if removed_ids:
            cursor.execute(f"DELETE FROM {_TABLE} WHERE id = ANY(%s)", [removed_ids])  # noqa: S608
        if demoted_ids:
            # Before the insert: at most one latest row per key is a constraint.
            cursor.execute(f"UPDATE {_TABLE} SET is_latest = false WHERE id = ANY(%s)", [demoted_ids])  # noqa: S608
        cursor.execute(
            f"INSERT INTO {_TABLE} "  # noqa: S608
            "(bucket_id, key, revision, operation, value, size, created_at, expires_at, is_latest) "
            "SELECT %s, k, r, o, v, s, %s, e, true FROM unnest("
            "%s::text[], %s::bigint[], %s::text[], %s::bytea[], %s::integer[], %s::timestamptz[]"
            ") AS t(k, r, o, v, s, e) RETURNING id, revision",
            [
                bucket.pk,
                entries[0].created_at,
                [entry.key for entry in entries],
                [entry.revision for entry in entries],
                [entry.operation for entry in entries],
                [entry.value for entry in entries],
                [entry.size for entry in entries],
                [entry.expires_at for entry in entries],
            ],
        )
        ids = {revision: entry_id for entry_id, revision in cursor.fetchall()}
    for entry in entries:
        entry.pk = ids[entry.revision]
        entry._state.adding = False
        entry._state.db = connection.alias
