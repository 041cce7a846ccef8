"""Config documents: JSON objects with revisions, feature flags, app settings.

Each environment is one ``SYS_config_<env>`` bucket of the storage core, created
on first write; a document is a key whose value is the object's compact JSON.
Revisions, conditions, history, events and TTL all come from the core.

Every change (write, merge patch, rollback, delete) is audited in its own transaction,
under the name the API gives it: ``config:<env>`` and the document's name. Failed and
refused changes are recorded after their rollback.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from buckets.configs.merge_patch import apply_merge_patch
from buckets.core import store
from buckets.core.conditions import IfMatch
from buckets.core.exceptions import (
    Aborted,
    BucketNotFound,
    IfMatchFailed,
    InvalidArgument,
    KeyNotFound,
    RevisionMismatch,
    ValueTooLarge,
)
from buckets.core.keys import validate_key
from buckets.core.names import SYS_CONFIG_PREFIX, validate_bucket_name
from buckets.models import Entry
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_record, audit_refusals
from kvsite.access.guard import Resource
from kvsite.http.jsonbody import dump_json

DEFAULT_ENVIRONMENT = "default"
MAX_DOCUMENT_BYTES = 1024 * 1024
# A PATCH without If-Match retries its internal compare-and-swap this often.
PATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class ConfigDocument:
    name: str
    data: dict[str, Any] | None  # None: a deletion in the history
    revision: int
    updated_at: datetime
    operation: str = "put"


def config_bucket(environment: str) -> str:
    try:
        validate_bucket_name(environment)
    except InvalidArgument:
        raise InvalidArgument("environment id must be 1-64 letters, digits, '-' or '_'") from None
    return SYS_CONFIG_PREFIX + environment


def _ensure_bucket(bucket: str) -> None:
    store.bucket_ensure(name=bucket, history=settings.KV_CONFIG_HISTORY, max_value_size=MAX_DOCUMENT_BYTES)


def _validated(name: str, data: Any) -> bytes:
    validate_key(name)
    if not isinstance(data, dict):
        raise InvalidArgument("config data must be a JSON object")
    encoded = dump_json(data)
    if len(encoded) > MAX_DOCUMENT_BYTES:
        raise ValueTooLarge(f"config document is {len(encoded)} bytes; at most {MAX_DOCUMENT_BYTES} are allowed")
    return encoded


def _document(entry: Entry) -> ConfigDocument:
    data = json.loads(bytes(entry.value)) if entry.operation == Entry.Operation.PUT else None
    return ConfigDocument(
        name=entry.key, data=data, revision=entry.revision, updated_at=entry.created_at, operation=entry.operation
    )


def config_list(*, environment: str) -> list[ConfigDocument]:
    """Every live document of the environment (without data), by name."""
    try:
        bucket = store.bucket_get(name=config_bucket(environment))
    except BucketNotFound:
        return []
    rows = store.live_entries(bucket=bucket).only("key", "revision", "created_at", "operation")
    return [ConfigDocument(name=row.key, data=None, revision=row.revision, updated_at=row.created_at) for row in rows]


def config_get(*, environment: str, name: str, revision: int | None = None) -> ConfigDocument:
    try:
        entry = store.entry_get(bucket=config_bucket(environment), key=name, revision=revision)
    except BucketNotFound:
        raise KeyNotFound(name) from None
    return _document(entry)


def config_audit_name(environment: str) -> str:
    """The name an environment's audit rows carry: the API's resource, ``config:<env>``."""
    return str(Resource("config", environment))


def _put(
    *,
    environment: str,
    name: str,
    data: Any,
    if_absent: bool = False,
    if_revision: int | None = None,
    if_match: IfMatch | None = None,
) -> Entry:
    value = _validated(name, data)
    bucket = config_bucket(environment)
    _ensure_bucket(bucket)
    return store.entry_put(
        bucket=bucket, key=name, value=value, if_absent=if_absent, if_revision=if_revision, if_match=if_match
    )


def config_set(
    *,
    environment: str,
    name: str,
    data: Any,
    if_absent: bool = False,
    if_revision: int | None = None,
    if_match: IfMatch | None = None,
    actor: AuditActor,
) -> ConfigDocument:
    """Replace the whole document (create it if absent, unless conditions say otherwise)."""
    namespace = config_audit_name(environment)
    with audit_operation(
        actor=actor, action=Action.WRITE, namespace=namespace, key_path=name, detail="whole document"
    ) as scope:
        entry = _put(
            environment=environment,
            name=name,
            data=data,
            if_absent=if_absent,
            if_revision=if_revision,
            if_match=if_match,
        )
        scope.entry_id = entry.id
        return _document(entry)


def config_patch(
    *, environment: str, name: str, patch: Any, if_match: IfMatch | None = None, actor: AuditActor
) -> ConfigDocument:
    """Apply an RFC 7396 merge patch to an existing document.

    The read and the write are joined by compare-and-swap on the read revision, so
    a concurrent writer is never overwritten: the patch is re-applied to the newer
    document, which must still satisfy ``if_match`` (412 otherwise). Each attempt is
    its own transaction, so the one that wins commits with its audit row; a lost race
    is no record, and a patch refused in the end is recorded once.
    """
    namespace = config_audit_name(environment)
    with audit_refusals(actor=actor, action=Action.WRITE, namespace=namespace, key_path=name):
        if not isinstance(patch, dict):
            raise InvalidArgument("a merge patch of a config document must be a JSON object")
        for _ in range(PATCH_ATTEMPTS):
            current = config_get(environment=environment, name=name)
            if if_match is not None and not if_match.accepts(current.revision, live_value=True):
                raise IfMatchFailed(name, if_match, current.revision)
            merged = apply_merge_patch(current.data, patch)
            try:
                with transaction.atomic():
                    entry = _put(environment=environment, name=name, data=merged, if_revision=current.revision)
                    audit_record(
                        actor=actor,
                        action=Action.WRITE,
                        namespace=namespace,
                        key_path=name,
                        entry_id=entry.id,
                        detail="merge patch",
                    )
            except RevisionMismatch as lost:
                latest = lost.details.get("current_revision")
                continue
            return _document(entry)
        # Every attempt lost to another writer: the document exists and moved on, so say where it is
        # (a 409 the client may retry, not the 412 of a precondition it never sent).
        raise Aborted(
            f"config {name!r} changed under this patch {PATCH_ATTEMPTS} times; it is at revision {latest}: try again",
            current_revision=latest,
        )


def config_delete(
    *,
    environment: str,
    name: str,
    if_revision: int | None = None,
    if_match: IfMatch | None = None,
    actor: AuditActor,
) -> None:
    """Delete the document: a tombstone, its history stays (``config_rollback`` can bring it back)."""
    namespace = config_audit_name(environment)
    with audit_operation(actor=actor, action=Action.DELETE, namespace=namespace, key_path=name) as scope:
        try:
            marker = store.entry_delete(
                bucket=config_bucket(environment), key=name, if_revision=if_revision, if_match=if_match
            )
        except BucketNotFound:
            raise KeyNotFound(name) from None
        scope.entry_id = marker.id


def config_history(*, environment: str, name: str) -> list[ConfigDocument]:
    """Kept revisions, newest first; deletions have ``data`` None."""
    try:
        entries = store.entry_history(bucket=config_bucket(environment), key=name)
    except BucketNotFound:
        raise KeyNotFound(name) from None
    return [_document(entry) for entry in reversed(entries)]


def config_rollback(*, environment: str, name: str, revision: int, actor: AuditActor) -> ConfigDocument:
    """A new revision whose data is that of the kept ``revision``."""
    namespace = config_audit_name(environment)
    detail = f"to the data of revision {revision}"
    with audit_operation(
        actor=actor, action=Action.ROLLBACK, namespace=namespace, key_path=name, detail=detail
    ) as scope:
        old = config_get(environment=environment, name=name, revision=revision)
        entry = _put(environment=environment, name=name, data=old.data)
        scope.entry_id = entry.id
        return _document(entry)
