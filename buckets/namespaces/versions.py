"""An entry's kept versions: listing them, rotating a secret to a new version, rolling back to an old one.

A namespace's bucket keeps the history of each key (``services``: every version
the core allows for secret namespaces, 10 for others); the versions of an entry
are the puts after its last delete marker. Rotation and rollback write a new
version through the same compare-and-swap loop as any write (``entries``).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from buckets.core import store
from buckets.core.exceptions import BucketNotFound, InvalidArgument, KeyNotFound
from buckets.models import Entry, Namespace
from buckets.namespaces import inputs
from buckets.namespaces.entries import NamespaceEntry, audit_read, entry_view, entry_write, values_shown
from buckets.namespaces.exceptions import EntryNotFound, VersionNotFound
from buckets.namespaces.records import REASON_ROLLBACK, REASON_ROTATION, Record, record_decode
from buckets.namespaces.services import namespace_access, namespace_for
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_refusals
from kvsite.access.permissions import ENTRY_READ, ENTRY_WRITE, SECRET_ROTATE


@dataclass(frozen=True)
class EntryVersion:
    version: int
    value_type: str
    value: Any = field(repr=False)
    value_shown: bool = False
    changed_by: str = ""
    reason: str = ""
    created_at: datetime | None = None
    entry_id: int = 0


def _kept_versions(namespace: Namespace, key_path: str) -> list[tuple[Entry, Record]]:
    """The entry's kept versions, oldest first (the puts after its last delete marker)."""
    try:
        history = store.entry_history(bucket=namespace.bucket.name, key=key_path)
    except (KeyNotFound, BucketNotFound):
        raise EntryNotFound(key_path) from None
    if not history or history[-1].operation != store.PUT:
        raise EntryNotFound(key_path)
    start = max((i + 1 for i, entry in enumerate(history) if entry.operation != store.PUT), default=0)
    return [(entry, record_decode(entry, namespace=namespace)) for entry in history[start:]]


def namespace_entry_versions(*, namespace_id: uuid.UUID, key_path: str, actor: AuditActor) -> list[EntryVersion]:
    """Every kept version, newest first: number, who, why, when; values as a single read shows them."""
    with audit_refusals(actor=actor, action=Action.READ, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_READ)
        scope.namespace = namespace.bucket.name
        inputs.check_key_path(key_path)
        shown = values_shown(namespace, actor)
        versions = [
            EntryVersion(
                version=record.version,
                value_type=record.type,
                value=record.value if shown else None,
                value_shown=shown,
                changed_by=record.changed_by,
                reason=record.reason,
                created_at=entry.created_at,
                entry_id=entry.id,
            )
            for entry, record in reversed(_kept_versions(namespace, key_path))
        ]
    detail = f"{len(versions)} versions listed" + (" with values" if shown else "")
    audit_read(actor=actor, namespace=namespace, key_path=key_path, detail=detail)
    return versions


def namespace_entry_rotate(*, namespace_id: uuid.UUID, key_path: str, value: Any, actor: AuditActor) -> NamespaceEntry:
    """A secret's new value as its next version, reason ``rotation`` (same type, metadata and TTL)."""
    with audit_operation(actor=actor, action=Action.ROTATE, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=SECRET_ROTATE)
        scope.namespace = namespace.bucket.name
        if not namespace.is_secret:
            raise InvalidArgument("rotate is for entries of secret namespaces")
        inputs.check_key_path(key_path)

        def build(current: Record | None) -> tuple[str, Any, dict, int | None]:
            return current.type, inputs.typed_value(value, current.type), current.metadata, current.ttl_seconds

        entry, record = entry_write(
            namespace=namespace,
            key_path=key_path,
            build=build,
            reason=REASON_ROTATION,
            expected_version=None,
            must_exist=True,
            actor=actor,
        )
        scope.entry_id = entry.id
        scope.detail = f"rotated to version {record.version}"
        return entry_view(entry, record, shown=values_shown(namespace, actor))


def namespace_entry_rollback(
    *, namespace_id: uuid.UUID, key_path: str, version: Any, actor: AuditActor
) -> NamespaceEntry:
    """A new version whose value (type and metadata) is kept version ``version``'s, reason ``rollback``.

    Secret namespaces need kv-secret:rotate; others kv-entry:write.
    """
    with audit_operation(actor=actor, action=Action.ROLLBACK, key_path=key_path) as scope:
        actor.require_any(SECRET_ROTATE, ENTRY_WRITE)
        namespace = namespace_for(namespace_id=namespace_id)
        scope.namespace = namespace.bucket.name
        permission = SECRET_ROTATE if namespace.is_secret else ENTRY_WRITE
        actor.require(permission, bucket=namespace.bucket.name)
        inputs.check_key_path(key_path)
        version = inputs.check_rollback_version(version)
        old = next((record for _, record in _kept_versions(namespace, key_path) if record.version == version), None)
        if old is None:
            raise VersionNotFound(key_path, version)
        entry, record = entry_write(
            namespace=namespace,
            key_path=key_path,
            build=lambda _current: (old.type, old.value, old.metadata, old.ttl_seconds),
            reason=REASON_ROLLBACK,
            expected_version=None,
            must_exist=True,
            actor=actor,
        )
        scope.entry_id = entry.id
        scope.detail = f"rolled back to version {version} as version {record.version}"
        return entry_view(entry, record, shown=values_shown(namespace, actor))
