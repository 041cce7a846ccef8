"""Typed, hierarchical entries of a namespace: read, write, delete, list; the one compare-and-swap write loop.

An entry is a key of the namespace's bucket holding a record (``records``).
Writes read the current record and then write with the core's ``if_revision``
(``if_absent`` for a new entry), so computing the next version is race-free: a
concurrent write makes the core refuse, and the write is retried on the newer
record -- or, when the caller named a ``version``, refused with 409 ``aborted``.
Every conditioned write (put, bulk set and delete, rotation, rollback) retries
through ``write_retrying``.

Deleting an entry purges it (the core's purge: its kept versions go too), so a
re-created entry starts again at version 1 and version numbers stay unambiguous.

What a caller is shown: a plain namespace's entries whole (listings carry values with
kv-entry:read); a secret namespace's with kv-secret:read (listings never carry values),
and without it their key paths alone (``WithheldEntry``): metadata, types, versions,
times and authors are the secret's business too.

Audit: every write, rotation, rollback and every read of a secret namespace is
recorded with its outcome; successful reads of non-secret entries are not (see
the README), refused ones are.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Q

from buckets.core import clock, store
from buckets.core.exceptions import Aborted, BucketNotFound, KeyExists, KeyNotFound, RevisionMismatch
from buckets.models import Entry, Namespace
from buckets.namespaces import inputs
from buckets.namespaces.access import actor_may, secrets_withheld
from buckets.namespaces.exceptions import EntryNotFound, VersionMismatch
from buckets.namespaces.records import REASON_UPDATE, Record, record_decode, record_encode, record_next
from buckets.namespaces.services import namespace_for
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_record, audit_refusals
from kvsite.access.guard import Resource
from kvsite.access.permissions import ENTRY_READ

DEFAULT_PAGE = 100
# How often a write without ``version`` re-reads after losing a race.
WRITE_ATTEMPTS = 5

T = TypeVar("T")


# --- Entries as shown ------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceEntry:
    """An entry as the API shows it; ``value`` is None when withheld (``value_shown`` False)."""

    id: str
    key_path: str
    value_type: str
    value: Any = field(repr=False)
    value_shown: bool
    version: int
    metadata: dict
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    changed_by: str
    reason: str
    entry_id: int
    # A secret namespace's: a response showing the value is never to be stored by a cache.
    secret: bool = False


@dataclass(frozen=True)
class WithheldEntry:
    """A secret namespace's entry shown to a caller without kv-secret:read: its key path, nothing else."""

    key_path: str


Shown = NamespaceEntry | WithheldEntry


def entry_view(entry: Entry, record: Record, *, shown: bool, secret: bool = False) -> NamespaceEntry:
    """The entry stored as ``entry`` holding ``record``; its value only if ``shown``."""
    return NamespaceEntry(
        id=record.id,
        key_path=entry.key,
        value_type=record.type,
        value=record.value if shown else None,
        value_shown=shown,
        version=record.version,
        metadata=record.metadata,
        created_at=record.created_at,
        updated_at=entry.created_at,
        expires_at=entry.expires_at,
        changed_by=record.changed_by,
        reason=record.reason,
        entry_id=entry.id,
        secret=secret,
    )


def entry_shown(entry: Entry, record: Record, *, namespace: Namespace, withheld: bool) -> Shown:
    """What a read or a write answers with: the whole entry, or its key path (``secrets_withheld``)."""
    if withheld:
        return WithheldEntry(key_path=entry.key)
    return entry_view(entry, record, shown=True, secret=namespace.is_secret)


def audit_read(*, actor: AuditActor, namespace: Namespace, key_path: str = "", entry_id=None, detail: str) -> None:
    """The success row of a read; only secret namespaces' reads are recorded (see the module docstring)."""
    if namespace.is_secret:
        audit_record(
            actor=actor,
            action=Action.READ,
            namespace=namespace.bucket.name,
            key_path=key_path,
            entry_id=entry_id,
            detail=detail,
        )


# --- Writes ----------------------------------------------------------------------------------


def expiry_at(ttl_seconds: int | None, now: datetime) -> datetime | None:
    """When a value written ``now`` with ``ttl_seconds`` expires (None: never)."""
    return now + timedelta(seconds=ttl_seconds) if ttl_seconds else None


def write_retrying(attempt: Callable[[], T | None], *, gave_up: str) -> T:
    """What ``attempt`` wrote, asked again while it returns None: a concurrent write got between its read and write.

    An attempt reads, decides on what it read and writes conditioned on it, so a
    lost race is a refusal of the core, never a lost update. After WRITE_ATTEMPTS
    lost races: Aborted (409) saying ``gave_up``.
    """
    for _ in range(WRITE_ATTEMPTS):
        written = attempt()
        if written is not None:
            return written
    raise Aborted(gave_up)


def _current(namespace: Namespace, key_path: str) -> tuple[Entry, Record] | None:
    try:
        entry = store.entry_get(bucket=namespace.bucket.name, key=key_path)
    except (KeyNotFound, BucketNotFound):
        return None
    return entry, record_decode(entry, namespace=namespace)


# What a write stores, given the current record (None: absent): (type, value, metadata, ttl).
Build = Callable[[Record | None], tuple[str, Any, dict, int | None]]


def entry_write(
    *,
    namespace: Namespace,
    key_path: str,
    build: Build,
    reason: str,
    expected_version: int | None,
    must_exist: bool,
    actor: AuditActor,
) -> tuple[Entry, Record]:
    """Read the current record, build the next one, write it conditioned on what was read."""

    def attempt() -> tuple[Entry, Record] | None:
        current = _current(namespace, key_path)
        current_record = current[1] if current else None
        if must_exist and current is None:
            raise EntryNotFound(key_path)
        current_version = current_record.version if current_record else None
        if expected_version is not None and expected_version != current_version:
            raise VersionMismatch(key_path, expected_version, current_version)
        value_type, value, metadata, ttl = build(current_record)
        now = clock.now()
        record = record_next(
            current=current_record,
            value_type=value_type,
            value=value,
            metadata=metadata,
            ttl_seconds=ttl,
            reason=reason,
            actor=actor,
            now=now,
        )
        raw = record_encode(record, namespace=namespace, key_path=key_path)
        try:
            entry = store.entry_put(
                bucket=namespace.bucket.name,
                key=key_path,
                value=raw,
                if_absent=current is None,
                if_revision=current[0].revision if current else None,
                expires_at=expiry_at(ttl, now),
            )
        except (RevisionMismatch, KeyExists):
            return None
        return entry, record

    return write_retrying(attempt, gave_up=f"entry {key_path!r} kept changing; try again")


# --- Single entries --------------------------------------------------------------------------


def namespace_entry_get(
    *, namespace_id: uuid.UUID, key_path: str, decided: Resource | None = None, actor: AuditActor
) -> Shown:
    """The entry's latest version; a secret one's only for holders of kv-secret:read (its key path otherwise)."""
    with audit_refusals(actor=actor, action=Action.READ, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        inputs.check_key_path(key_path)
        withheld = secrets_withheld(actor, namespace)
        current = _current(namespace, key_path)
        if current is None:
            raise EntryNotFound(key_path)
        entry, record = current
    audit_read(
        actor=actor,
        namespace=namespace,
        key_path=key_path,
        entry_id=entry.id,
        detail="value withheld" if withheld else "value revealed",
    )
    return entry_shown(entry, record, namespace=namespace, withheld=withheld)


def namespace_entry_put(
    *,
    namespace_id: uuid.UUID,
    key_path: str,
    value: Any,
    value_type: Any,
    ttl_seconds: Any = None,
    metadata: Any = None,
    version: Any = None,
    decided: Resource | None = None,
    actor: AuditActor,
) -> Shown:
    """Create or replace an entry; with ``version``, only if it is at that version (409 ``aborted``)."""
    with audit_operation(actor=actor, action=Action.WRITE, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        checked = inputs.check_entry(
            key_path=key_path,
            value=value,
            value_type=value_type,
            ttl_seconds=ttl_seconds,
            metadata=metadata,
            version=version,
        )
        ttl = checked.ttl_seconds or namespace.default_ttl_seconds
        entry, record = entry_write(
            namespace=namespace,
            key_path=key_path,
            build=lambda _current: (checked.value_type, checked.value, checked.metadata, ttl),
            reason=REASON_UPDATE,
            expected_version=checked.version,
            must_exist=False,
            actor=actor,
        )
        scope.entry_id = entry.id
        scope.detail = f"version {record.version}"
        return entry_shown(entry, record, namespace=namespace, withheld=secrets_withheld(actor, namespace))


def namespace_entry_delete(
    *, namespace_id: uuid.UUID, key_path: str, decided: Resource | None = None, actor: AuditActor
) -> None:
    """Delete an entry with its kept versions (a purge)."""
    with audit_operation(actor=actor, action=Action.DELETE, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        inputs.check_key_path(key_path)
        try:
            marker = store.entry_purge(bucket=namespace.bucket.name, key=key_path)
        except KeyNotFound:
            raise EntryNotFound(key_path) from None
        scope.entry_id = marker.id


# --- Listing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryPage:
    entries: list[Shown]
    next_cursor: str | None


def namespace_entry_list(
    *,
    namespace_id: uuid.UUID,
    prefix: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    decided: Resource | None = None,
    actor: AuditActor,
) -> EntryPage:
    """Live entries under ``prefix`` (whole segments), by key path, ``limit`` at a time.

    ``prefix=config/data`` matches ``config/data`` and ``config/data/...`` but not
    ``config/database``: the core's index range for the plain prefix bounds the
    walk, a segment filter inside it does the rest. Values are never listed for
    secret namespaces (nor anything but key paths without kv-secret:read); for
    others only with kv-entry:read.
    """
    with audit_refusals(actor=actor, action=Action.READ) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        inputs.check_page_limit(limit)
        prefix = inputs.check_prefix(prefix)
        after = store.decode_cursor(cursor) if cursor else None
        rows = store.live_entries(bucket=namespace.bucket, prefix=prefix or None, after=after)
        if prefix:
            rows = rows.filter(Q(key=prefix) | Q(key__startswith=prefix + "/"))
        page = list(rows[: limit + 1])
        entries: list[Shown]
        if secrets_withheld(actor, namespace):
            # Key paths only: nothing is opened.
            entries = [WithheldEntry(key_path=row.key) for row in page[:limit]]
        else:
            shown = not namespace.is_secret and actor_may(actor, ENTRY_READ, namespace)
            entries = [entry_view(row, record_decode(row, namespace=namespace), shown=shown) for row in page[:limit]]
    next_cursor = store.encode_cursor(page[limit - 1].key) if len(page) > limit else None
    audit_read(actor=actor, namespace=namespace, key_path=prefix, detail=f"{len(entries)} entries listed")
    return EntryPage(entries=entries, next_cursor=next_cursor)
