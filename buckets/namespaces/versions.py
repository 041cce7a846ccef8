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
from buckets.namespaces.access import actor_decide, resource_of, secrets_withheld
from buckets.namespaces.entries import Shown, audit_read, entry_shown, entry_write
from buckets.namespaces.exceptions import EntryNotFound, VersionNotFound
from buckets.namespaces.records import REASON_ROLLBACK, REASON_ROTATION, Record, record_decode
from buckets.namespaces.services import namespace_for
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_refusals
from kvsite.access.guard import Resource
from kvsite.access.permissions import ENTRY_WRITE, SECRET_ROTATE


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
    # A secret namespace's: a response showing the value is never to be stored by a cache.
    secret: bool = False


def _kept_entries(namespace: Namespace, key_path: str) -> list[Entry]:
    """The entry's kept versions as stored, oldest first (the puts after its last delete marker)."""
    try:
        history = store.entry_history(bucket=namespace.bucket.name, key=key_path)
    except (KeyNotFound, BucketNotFound):
        raise EntryNotFound(key_path) from None
    if not history or history[-1].operation != store.PUT:
        raise EntryNotFound(key_path)
    start = max((i + 1 for i, entry in enumerate(history) if entry.operation != store.PUT), default=0)
    return history[start:]


def _kept_versions(namespace: Namespace, key_path: str) -> list[tuple[Entry, Record]]:
    """The entry's kept versions with their records, oldest first."""
    return [(entry, record_decode(entry, namespace=namespace)) for entry in _kept_entries(namespace, key_path)]


def namespace_entry_versions(
    *, namespace_id: uuid.UUID, key_path: str, decided: Resource | None = None, actor: AuditActor
) -> list[EntryVersion] | None:
    """Every kept version, newest first: number, who, why, when, and the value.

    None for a secret namespace's entry and a caller without kv-secret:read: it learns
    that the entry exists (EntryNotFound otherwise), and nothing of its versions.
    """
    with audit_refusals(actor=actor, action=Action.READ, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        inputs.check_key_path(key_path)
        versions: list[EntryVersion] | None = None
        if secrets_withheld(actor, namespace):
            _kept_entries(namespace, key_path)  # EntryNotFound, like any read; nothing is opened
        else:
            versions = [
                EntryVersion(
                    version=record.version,
                    value_type=record.type,
                    value=record.value,
                    value_shown=True,
                    changed_by=record.changed_by,
                    reason=record.reason,
                    created_at=entry.created_at,
                    entry_id=entry.id,
                    secret=namespace.is_secret,
                )
                for entry, record in reversed(_kept_versions(namespace, key_path))
            ]
    detail = "versions withheld" if versions is None else f"{len(versions)} versions listed with values"
    audit_read(actor=actor, namespace=namespace, key_path=key_path, detail=detail)
    return versions


def namespace_entry_rotate(
    *, namespace_id: uuid.UUID, key_path: str, value: Any, decided: Resource | None = None, actor: AuditActor
) -> Shown:
    """A secret's new value as its next version, reason ``rotation`` (same type, metadata and TTL)."""
    with audit_operation(actor=actor, action=Action.ROTATE, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
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
        return entry_shown(entry, record, namespace=namespace, withheld=secrets_withheld(actor, namespace))


def namespace_entry_rollback(
    *, namespace_id: uuid.UUID, key_path: str, version: Any, decided: Resource | None = None, actor: AuditActor
) -> Shown:
    """A new version whose value (type and metadata) is kept version ``version``'s, reason ``rollback``.

    Secret namespaces need kv-secret:rotate; others kv-entry:write. The route declares
    either; which one applies is the namespace's kind, decided here on the same resource.
    """
    with audit_operation(actor=actor, action=Action.ROLLBACK, key_path=key_path) as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        actor_decide(actor, SECRET_ROTATE if namespace.is_secret else ENTRY_WRITE, resource_of(namespace))
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
        return entry_shown(entry, record, namespace=namespace, withheld=secrets_withheld(actor, namespace))
