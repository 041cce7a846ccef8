"""Bulk calls of the namespaces dialect: get, set and delete up to 1000 entries, each set or delete in one transaction.

A bulk set or delete is all or nothing: every item is checked first
(``inputs``), then the whole plan is written by the core's ``entries_write_many``
conditioned on the revisions it was planned on; BulkRejected names every refused
item. A plan outrun by a concurrent write is made again (``entries.write_retrying``).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buckets.core import clock, store
from buckets.core.bulk import BulkWrite, BulkWriteRejected, entries_latest_live, entries_write_many
from buckets.core.exceptions import KeyExists, RevisionMismatch
from buckets.models import Entry, Namespace
from buckets.namespaces import inputs
from buckets.namespaces.access import secrets_withheld
from buckets.namespaces.entries import (
    Shown,
    WithheldEntry,
    audit_read,
    entry_shown,
    entry_view,
    expiry_at,
    write_retrying,
)
from buckets.namespaces.exceptions import BulkRejected, EntryNotFound, RecordMalformed, VersionMismatch
from buckets.namespaces.records import REASON_UPDATE, Record, record_decode, record_encode, record_next
from buckets.namespaces.services import namespace_for
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_refusals
from kvsite.access.guard import Resource


def _live(namespace: Namespace, keys: list[str]) -> dict[str, Entry]:
    return entries_latest_live(bucket=namespace.bucket, keys=keys)


@dataclass(frozen=True)
class BulkGetResult:
    entries: list[Shown]
    missing: list[str]


def namespace_entries_bulk_get(
    *, namespace_id: uuid.UUID, keys: Any, decided: Resource | None = None, actor: AuditActor
) -> BulkGetResult:
    """The live entries among ``keys`` (in the order asked) and the keys that have none."""
    with audit_refusals(actor=actor, action=Action.READ) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        keys = inputs.check_bulk_keys(keys, operation="get")
        found = _live(namespace, keys)
        withheld = secrets_withheld(actor, namespace)
        entries: list[Shown] = [
            # Withheld, nothing is opened.
            WithheldEntry(key_path=key)
            if withheld
            else entry_view(
                found[key], record_decode(found[key], namespace=namespace), shown=True, secret=namespace.is_secret
            )
            for key in keys
            if key in found
        ]
        missing = [key for key in keys if key not in found]
    audit_read(actor=actor, namespace=namespace, detail=f"bulk get of {len(keys)} keys, {len(entries)} found")
    return BulkGetResult(entries=entries, missing=missing)


def _bulk_apply(*, namespace: Namespace, operation: str, plan: Callable[[], list[BulkWrite]]) -> list[Entry]:
    """Run ``plan`` on the current entries and write its result; re-plan when a concurrent write intervened.

    ``plan`` returns the writes, conditioned on the revisions it saw, or raises
    BulkRejected for the items it refuses itself.
    """

    def attempt() -> list[Entry] | None:
        writes = plan()
        try:
            return entries_write_many(bucket=namespace.bucket.name, writes=writes)
        except BulkWriteRejected as rejected:
            if all(isinstance(f.error, (RevisionMismatch, KeyExists)) for f in rejected.failures):
                return None  # another writer got there between our read and our write
            raise BulkRejected(
                operation=operation,
                total=len(writes),
                failures=[(f.index, f.key, f.error) for f in rejected.failures],
            ) from None

    return write_retrying(attempt, gave_up=f"bulk {operation}: the entries kept changing; try again")


def namespace_entries_bulk_set(
    *, namespace_id: uuid.UUID, entries: Any, decided: Resource | None = None, actor: AuditActor
) -> list[Shown]:
    """Write up to 1000 entries in one transaction, or none: BulkRejected lists every refused item."""
    with audit_operation(actor=actor, action=Action.WRITE) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        items = inputs.check_bulk_list(entries, name="entries")
        scope.detail = f"bulk set of {len(items)} entries"
        checked = inputs.check_bulk_entries(items)
        records: list[Record] = []

        def plan() -> list[BulkWrite]:
            current = _live(namespace, [item.key_path for item in checked])
            now = clock.now()
            writes, refused = [], []
            records.clear()
            for index, item in enumerate(checked):
                entry = current.get(item.key_path)
                try:
                    record = record_decode(entry, namespace=namespace, exact=False) if entry else None
                except RecordMalformed as malformed:
                    refused.append((index, item.key_path, malformed))
                    continue
                version = record.version if record else None
                if item.version is not None and item.version != version:
                    refused.append((index, item.key_path, VersionMismatch(item.key_path, item.version, version)))
                    continue
                ttl = item.ttl_seconds or namespace.default_ttl_seconds
                new = record_next(
                    current=record,
                    value_type=item.value_type,
                    value=item.value,
                    metadata=item.metadata,
                    ttl_seconds=ttl,
                    reason=REASON_UPDATE,
                    actor=actor,
                    now=now,
                )
                records.append(new)
                writes.append(
                    BulkWrite(
                        key=item.key_path,
                        value=record_encode(new, namespace=namespace, key_path=item.key_path),
                        expires_at=expiry_at(ttl, now),
                        if_absent=entry is None,
                        if_revision=entry.revision if entry else None,
                    )
                )
            if refused:
                raise BulkRejected(operation="set", total=len(checked), failures=refused)
            return writes

        written = _bulk_apply(namespace=namespace, operation="set", plan=plan)
        withheld = secrets_withheld(actor, namespace)
        return [
            entry_shown(entry, record, namespace=namespace, withheld=withheld)
            for entry, record in zip(written, records, strict=True)
        ]


def namespace_entries_bulk_delete(
    *, namespace_id: uuid.UUID, keys: Any, decided: Resource | None = None, actor: AuditActor
) -> int:
    """Delete (purge) up to 1000 entries in one transaction, or none if any is missing."""
    with audit_operation(actor=actor, action=Action.DELETE) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        keys = inputs.check_bulk_keys(keys, operation="delete")
        scope.detail = f"bulk delete of {len(keys)} entries"

        def plan() -> list[BulkWrite]:
            current = _live(namespace, keys)
            missing = [(index, key, EntryNotFound(key)) for index, key in enumerate(keys) if key not in current]
            if missing:
                raise BulkRejected(operation="delete", total=len(keys), failures=missing)
            return [BulkWrite(key=key, operation=store.PURGE, if_revision=current[key].revision) for key in keys]

        return len(_bulk_apply(namespace=namespace, operation="delete", plan=plan))
