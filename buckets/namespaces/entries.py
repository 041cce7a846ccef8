"""Typed, hierarchical entries of a namespace, stored as records in the namespace's bucket.

Record format: each core value is one compact JSON object (exact numbers)::

    {"kvns": 1, "id": "<uuid hex>", "type": "STRING", "value": ..., "metadata": {...},
     "version": 3, "createdAt": "...Z", "changedBy": "api_key:7", "reason": "update",
     "ttlSeconds": null}

``value`` is in its wire form (base64 for BINARY). ``version`` is the entry's
own counter (1 on creation, +1 per write), ``id`` and ``createdAt`` are carried
from version to version, ``ttlSeconds`` is what a rotation or rollback applies
again. In a secret namespace the whole record is sealed with
``secrets_app.crypto`` for (bucket, key path), so the stored bytes are an
envelope: the plaintext is never stored, master-key rotation re-seals these
values like any other secret, and change events carry no value.

A value not written by this dialect (bytes put through the bucket API) reads as
version 1 of a STRING (UTF-8) or BINARY entry.

Writes read the current record and then write with the core's ``if_revision``
(``if_absent`` for a new entry), so computing the next version is race-free: a
concurrent write makes the core refuse, and the write is retried on the newer
record -- or, when the caller named a ``version``, refused with 409 ``aborted``.

Deleting an entry purges it (the core's purge: its kept versions go too), so a
re-created entry starts again at version 1 and version numbers stay unambiguous.

Audit: every write, rotation, rollback and every read of a secret namespace is
recorded with its outcome; successful reads of non-secret entries are not (see
the README), refused ones are.
"""

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from buckets.core import bulk, clock, store
from buckets.core.events import rfc3339
from buckets.core.exceptions import BucketNotFound, KeyExists, KeyNotFound, RevisionMismatch
from buckets.core.keys import validate_key
from buckets.models import Entry, Namespace
from buckets.namespaces.services import actor_may, check_ttl, namespace_access, namespace_for
from kvsite.access.audit import Action, AuditActor, audit_operation, audit_record, audit_refusals
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_READ,
    SECRET_READ,
    SECRET_ROTATE,
)
from kvsite.http.errors import Aborted, DomainError, InvalidArgument, NotFound
from kvsite.http.jsonbody import JsonNumber, dump_json_exact, json_depth, json_whole_number
from secrets_app import crypto

VALUE_TYPES = ("STRING", "JSON", "NUMBER", "BOOLEAN", "BINARY")
REASON_UPDATE, REASON_ROTATION, REASON_ROLLBACK = "update", "rotation", "rollback"
MAX_BULK_ITEMS = 1000
MAX_PAGE = 1000
DEFAULT_PAGE = 100
# The last segment of a multi-segment key path may not be a sub-resource's name:
# ".../rotate", ".../versions" and ".../rollback" are routes of their own.
RESERVED_SEGMENTS = frozenset({"rotate", "versions", "rollback"})
# How often a write without ``version`` re-reads after losing a race.
WRITE_ATTEMPTS = 5
_RECORD_FORMAT = 1
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class EntryNotFound(NotFound):
    def __init__(self, key_path: str) -> None:
        super().__init__(f"entry {key_path!r} not found")


class VersionNotFound(NotFound):
    def __init__(self, key_path: str, version: int) -> None:
        super().__init__(f"entry {key_path!r} has no kept version {version}")


class VersionMismatch(Aborted):
    def __init__(self, key_path: str, expected: int, current: int | None) -> None:
        message = (
            f"entry {key_path!r} is at version {current}, not {expected}"
            if current is not None
            else f"entry {key_path!r} does not exist (expected version {expected})"
        )
        super().__init__(message, currentVersion=current)
        self.current = current


class BulkRejected(DomainError):
    """A bulk call refused as a whole; ``errors`` names each refused item (index, keyPath, error, code)."""

    def __init__(self, *, operation: str, total: int, failures: list[tuple[int, str, DomainError]]) -> None:
        errors = []
        for index, key_path, error in failures:
            item = {"index": index, "keyPath": key_path, "error": error.message, "code": error.code}
            if isinstance(error, VersionMismatch):
                item["currentVersion"] = error.current
            errors.append(item)
        super().__init__(
            f"bulk {operation}: {len(failures)} of {total} item(s) refused; nothing was written", errors=errors
        )
        self.status, self.code = failures[0][2].status, failures[0][2].code


# --- Records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    id: str
    type: str
    value: Any = field(repr=False)
    metadata: dict
    version: int
    created_at: datetime
    changed_by: str
    reason: str
    ttl_seconds: int | None


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


def _record_encode(record: Record, *, namespace: Namespace, key_path: str) -> bytes:
    raw = dump_json_exact(
        {
            "kvns": _RECORD_FORMAT,
            "id": record.id,
            "type": record.type,
            "value": record.value,
            "metadata": record.metadata,
            "version": record.version,
            "createdAt": rfc3339(record.created_at),
            "changedBy": record.changed_by,
            "reason": record.reason,
            "ttlSeconds": record.ttl_seconds,
        }
    )
    if namespace.is_secret:
        return crypto.value_seal(plaintext=raw, bucket=namespace.bucket.name, key=key_path)
    return raw


def _foreign(raw: bytes, entry: Entry) -> Record:
    try:
        value_type, value = "STRING", raw.decode()
    except UnicodeDecodeError:
        value_type, value = "BINARY", base64.b64encode(raw).decode()
    return Record(
        id=uuid.uuid5(uuid.NAMESPACE_OID, f"{entry.bucket_id}:{entry.key}").hex,
        type=value_type,
        value=value,
        metadata={},
        version=1,
        created_at=entry.created_at,
        changed_by="",
        reason=REASON_UPDATE,
        ttl_seconds=None,
    )


def _record_decode(entry: Entry, *, namespace: Namespace, exact: bool = True) -> Record:
    """The record of a stored entry; ``exact=False`` when only its header (id, version, times) is used."""
    raw = bytes(entry.value)
    if namespace.is_secret:
        raw = crypto.value_open(envelope=raw, bucket=namespace.bucket.name, key=entry.key)
    try:
        # Without the exact-number hooks json.loads stays in its C scanner: twice as fast.
        data = json.loads(raw, parse_float=JsonNumber, parse_int=JsonNumber) if exact else json.loads(raw)
    except ValueError:
        return _foreign(raw, entry)
    if not isinstance(data, dict) or data.get("kvns") != _RECORD_FORMAT or data.get("type") not in VALUE_TYPES:
        return _foreign(raw, entry)
    ttl = data.get("ttlSeconds")
    return Record(
        id=data["id"],
        type=data["type"],
        value=data["value"],
        metadata=data.get("metadata") or {},
        version=int(data["version"]),
        created_at=datetime.fromisoformat(data["createdAt"]),
        changed_by=data.get("changedBy", ""),
        reason=data.get("reason", REASON_UPDATE),
        ttl_seconds=None if ttl is None else int(ttl),
    )


def _entry_view(entry: Entry, record: Record, *, shown: bool) -> NamespaceEntry:
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
    )


def _changed_by(actor: AuditActor) -> str:
    return f"{actor.type}:{actor.id or actor.name}"


# --- Input rules -----------------------------------------------------------------------------


def validate_key_path(key_path: object) -> str:
    """A key path: key rules of the core, '/'-separated non-empty segments, no reserved last segment."""
    if not isinstance(key_path, str):
        raise InvalidArgument("keyPath must be a string")
    validate_key(key_path)
    segments = key_path.split("/")
    if "" in segments:
        raise InvalidArgument("keyPath segments must not be empty (no leading, trailing or double '/')")
    if len(segments) > 1 and segments[-1] in RESERVED_SEGMENTS:
        raise InvalidArgument(f"keyPath must not end in /{segments[-1]} (a sub-resource of entries)")
    return key_path


def typed_value(value: Any, value_type: Any) -> Any:
    """The value in its stored (wire) form, if it matches ``value_type``; else 400 naming the field."""
    if value_type not in VALUE_TYPES:
        raise InvalidArgument(f"valueType must be one of {', '.join(VALUE_TYPES)}")
    if value_type == "STRING" and isinstance(value, str):
        return value
    if value_type == "JSON" and isinstance(value, (dict, list)):
        return value
    if value_type == "NUMBER" and isinstance(value, JsonNumber) and value.is_finite():
        return value
    if value_type == "NUMBER" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return JsonNumber(repr(value))
    if value_type == "BOOLEAN" and isinstance(value, bool):
        return value
    if value_type == "BINARY" and isinstance(value, str):
        if not _B64_RE.match(value):
            raise InvalidArgument("value must be base64 for valueType BINARY")
        try:
            # Canonical base64 out: what comes back decodes to the same bytes.
            return base64.b64encode(base64.b64decode(value, validate=True)).decode()
        except binascii.Error:
            raise InvalidArgument("value must be base64 for valueType BINARY") from None
    expected = {
        "STRING": "a string",
        "JSON": "a JSON object or array",
        "NUMBER": "a finite number",
        "BOOLEAN": "true or false",
        "BINARY": "a base64 string",
    }[value_type]
    raise InvalidArgument(f"value must be {expected} for valueType {value_type}")


def _check_metadata(metadata: Any) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidArgument("metadata must be a JSON object")
    if json_depth(metadata, 16) > 16:
        raise InvalidArgument("metadata is nested too deeply")
    return metadata


def _check_version(version: Any, *, name: str = "version") -> int | None:
    if version is None:
        return None
    number = json_whole_number(version)
    if number is None or number < 1:
        raise InvalidArgument(f"{name} must be a positive integer")
    return number


@dataclass(frozen=True)
class EntryInput:
    """One checked write: what a PUT body or a bulk item says."""

    key_path: str
    value_type: str
    value: Any = field(repr=False)
    metadata: dict
    ttl_seconds: int | None
    version: int | None


def entry_input(
    *,
    key_path: Any,
    value: Any,
    value_type: Any,
    ttl_seconds: Any = None,
    metadata: Any = None,
    version: Any = None,
) -> EntryInput:
    """Check one write's fields; InvalidArgument (400) names the first that is wrong."""
    return EntryInput(
        key_path=validate_key_path(key_path),
        value_type=value_type,
        value=typed_value(value, value_type),
        metadata=_check_metadata(metadata),
        ttl_seconds=check_ttl(ttl_seconds, field="ttlSeconds"),
        version=_check_version(version),
    )


# --- Core access ------------------------------------------------------------------------------


def _current(namespace: Namespace, key_path: str) -> tuple[Entry, Record] | None:
    try:
        entry = store.entry_get(bucket=namespace.bucket.name, key=key_path)
    except (KeyNotFound, BucketNotFound):
        return None
    return entry, _record_decode(entry, namespace=namespace)


def _expiry(ttl_seconds: int | None, now: datetime) -> datetime | None:
    return now + timedelta(seconds=ttl_seconds) if ttl_seconds else None


def _next_record(
    *,
    current: Record | None,
    value_type: str,
    value: Any,
    metadata: dict,
    ttl_seconds: int | None,
    reason: str,
    actor: AuditActor,
    now: datetime,
) -> Record:
    return Record(
        id=current.id if current else uuid.uuid4().hex,
        type=value_type,
        value=value,
        metadata=metadata,
        version=current.version + 1 if current else 1,
        created_at=current.created_at if current else now,
        changed_by=_changed_by(actor),
        reason=reason,
        ttl_seconds=ttl_seconds,
    )


# What a write stores, given the current record (None: absent): (type, value, metadata, ttl).
Build = Callable[[Record | None], tuple[str, Any, dict, int | None]]


def _write(
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
    for _ in range(WRITE_ATTEMPTS):
        current = _current(namespace, key_path)
        current_record = current[1] if current else None
        if must_exist and current is None:
            raise EntryNotFound(key_path)
        current_version = current_record.version if current_record else None
        if expected_version is not None and expected_version != current_version:
            raise VersionMismatch(key_path, expected_version, current_version)
        value_type, value, metadata, ttl = build(current_record)
        now = clock.now()
        record = _next_record(
            current=current_record,
            value_type=value_type,
            value=value,
            metadata=metadata,
            ttl_seconds=ttl,
            reason=reason,
            actor=actor,
            now=now,
        )
        raw = _record_encode(record, namespace=namespace, key_path=key_path)
        try:
            entry = store.entry_put(
                bucket=namespace.bucket.name,
                key=key_path,
                value=raw,
                if_absent=current is None,
                if_revision=current[0].revision if current else None,
                expires_at=_expiry(ttl, now),
            )
        except (RevisionMismatch, KeyExists):
            continue  # written concurrently: decide again on the newer record
        return entry, record
    raise Aborted(f"entry {key_path!r} kept changing; try again")


def _shows_values(namespace: Namespace, actor: AuditActor) -> bool:
    """Whether a single-entry read shows the value: always for plain namespaces, with kv-secret:read for secret ones."""
    return not namespace.is_secret or actor_may(actor, SECRET_READ, bucket=namespace.bucket.name)


def _record_read(*, actor: AuditActor, namespace: Namespace, key_path: str = "", entry_id=None, detail: str) -> None:
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


# --- Single entries --------------------------------------------------------------------------


def namespace_entry_get(*, namespace_id: uuid.UUID, key_path: str, actor: AuditActor) -> NamespaceEntry:
    """The entry's latest version; a secret value only for holders of kv-secret:read."""
    with audit_refusals(actor=actor, action=Action.READ, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_READ)
        scope.namespace = namespace.bucket.name
        validate_key_path(key_path)
        current = _current(namespace, key_path)
        if current is None:
            raise EntryNotFound(key_path)
        entry, record = current
        shown = _shows_values(namespace, actor)
    _record_read(
        actor=actor,
        namespace=namespace,
        key_path=key_path,
        entry_id=entry.id,
        detail="value revealed" if shown else "value withheld",
    )
    return _entry_view(entry, record, shown=shown)


def namespace_entry_put(
    *,
    namespace_id: uuid.UUID,
    key_path: str,
    value: Any,
    value_type: Any,
    ttl_seconds: Any = None,
    metadata: Any = None,
    version: Any = None,
    actor: AuditActor,
) -> NamespaceEntry:
    """Create or replace an entry; with ``version``, only if it is at that version (409 ``aborted``)."""
    with audit_operation(actor=actor, action=Action.WRITE, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_WRITE)
        scope.namespace = namespace.bucket.name
        checked = entry_input(
            key_path=key_path,
            value=value,
            value_type=value_type,
            ttl_seconds=ttl_seconds,
            metadata=metadata,
            version=version,
        )
        ttl = checked.ttl_seconds or namespace.default_ttl_seconds
        entry, record = _write(
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
        return _entry_view(entry, record, shown=_shows_values(namespace, actor))


def namespace_entry_delete(*, namespace_id: uuid.UUID, key_path: str, actor: AuditActor) -> None:
    """Delete an entry with its kept versions (a purge)."""
    with audit_operation(actor=actor, action=Action.DELETE, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_DELETE)
        scope.namespace = namespace.bucket.name
        validate_key_path(key_path)
        try:
            marker = store.entry_purge(bucket=namespace.bucket.name, key=key_path)
        except KeyNotFound:
            raise EntryNotFound(key_path) from None
        scope.entry_id = marker.id


# --- Listing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryPage:
    entries: list[NamespaceEntry]
    next_cursor: str | None


def namespace_entry_list(
    *,
    namespace_id: uuid.UUID,
    prefix: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE,
    actor: AuditActor,
) -> EntryPage:
    """Live entries under ``prefix`` (whole segments), by key path, ``limit`` at a time.

    ``prefix=config/data`` matches ``config/data`` and ``config/data/...`` but not
    ``config/database``: the core's index range for the plain prefix bounds the
    walk, a segment filter inside it does the rest. Values are never listed for
    secret namespaces; for others only with kv-entry:read.
    """
    with audit_refusals(actor=actor, action=Action.READ) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=NAMESPACE_READ)
        scope.namespace = namespace.bucket.name
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
        prefix = (prefix or "").rstrip("/")
        if prefix:
            validate_key_path(prefix)
        after = store.decode_cursor(cursor) if cursor else None
        rows = store.live_entries(bucket=namespace.bucket, prefix=prefix or None, after=after)
        if prefix:
            rows = rows.filter(Q(key=prefix) | Q(key__startswith=prefix + "/"))
        page = list(rows[: limit + 1])
        shown = not namespace.is_secret and actor_may(actor, ENTRY_READ, bucket=namespace.bucket.name)
        entries = [_entry_view(row, _record_decode(row, namespace=namespace), shown=shown) for row in page[:limit]]
    next_cursor = store.encode_cursor(page[limit - 1].key) if len(page) > limit else None
    _record_read(actor=actor, namespace=namespace, key_path=prefix, detail=f"{len(entries)} entries listed")
    return EntryPage(entries=entries, next_cursor=next_cursor)


# --- Bulk ---------------------------------------------------------------------------------------


def bulk_list_checked(items: Any, *, name: str) -> list:
    """``items`` if it is a list of 1 to MAX_BULK_ITEMS items; nothing in it is looked at."""
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{name} must be a non-empty list")
    if len(items) > MAX_BULK_ITEMS:
        raise InvalidArgument(f"{name} holds {len(items)} items; at most {MAX_BULK_ITEMS} are allowed per call")
    return items


def _bulk_keys(keys: Any, *, operation: str) -> list[str]:
    """Checked key paths of a bulk get/delete; every bad one is named."""
    failures: list[tuple[int, str, DomainError]] = []
    seen: set[str] = set()
    for index, key_path in enumerate(bulk_list_checked(keys, name="keys")):
        try:
            validate_key_path(key_path)
            if key_path in seen:
                raise InvalidArgument("keyPath appears more than once")
            seen.add(key_path)
        except DomainError as error:
            failures.append((index, key_path if isinstance(key_path, str) else "", error))
    if failures:
        raise BulkRejected(operation=operation, total=len(keys), failures=failures)
    return keys


def _live(namespace: Namespace, keys: list[str]) -> dict[str, Entry]:
    return bulk.entries_latest_live(bucket=namespace.bucket, keys=keys)


@dataclass(frozen=True)
class BulkGetResult:
    entries: list[NamespaceEntry]
    missing: list[str]


def namespace_entries_bulk_get(*, namespace_id: uuid.UUID, keys: Any, actor: AuditActor) -> BulkGetResult:
    """The live entries among ``keys`` (in the order asked) and the keys that have none."""
    with audit_refusals(actor=actor, action=Action.READ) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_READ)
        scope.namespace = namespace.bucket.name
        keys = _bulk_keys(keys, operation="get")
        found = _live(namespace, keys)
        shown = _shows_values(namespace, actor)
        entries = [
            _entry_view(found[key], _record_decode(found[key], namespace=namespace), shown=shown)
            for key in keys
            if key in found
        ]
        missing = [key for key in keys if key not in found]
    _record_read(actor=actor, namespace=namespace, detail=f"bulk get of {len(keys)} keys, {len(entries)} found")
    return BulkGetResult(entries=entries, missing=missing)


def _bulk_item(item: Any) -> EntryInput:
    if not isinstance(item, dict):
        raise InvalidArgument("each entry must be an object {keyPath, value, valueType, ...}")
    unknown = sorted(set(item) - {"keyPath", "value", "valueType", "ttlSeconds", "metadata", "version"})
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}")
    if "value" not in item:
        raise InvalidArgument("value is required")
    return entry_input(
        key_path=item.get("keyPath"),
        value=item["value"],
        value_type=item.get("valueType"),
        ttl_seconds=item.get("ttlSeconds"),
        metadata=item.get("metadata"),
        version=item.get("version"),
    )


def _bulk_apply(*, namespace: Namespace, operation: str, plan: Callable[[], list]) -> list[Entry]:
    """Run ``plan`` on the current entries and write its result; re-plan when a concurrent write intervened.

    ``plan`` returns the ``bulk.BulkWrite`` list, conditioned on the revisions it
    saw, or raises BulkRejected for the items it refuses itself.
    """
    for _ in range(WRITE_ATTEMPTS):
        writes = plan()
        try:
            return bulk.entries_write_many(bucket=namespace.bucket.name, writes=writes)
        except bulk.BulkWriteRejected as rejected:
            if all(isinstance(f.error, (RevisionMismatch, KeyExists)) for f in rejected.failures):
                continue  # another writer got there between our read and our write
            raise BulkRejected(
                operation=operation,
                total=len(writes),
                failures=[(f.index, f.key, f.error) for f in rejected.failures],
            ) from None
    raise Aborted(f"bulk {operation}: the entries kept changing; try again")


def namespace_entries_bulk_set(*, namespace_id: uuid.UUID, entries: Any, actor: AuditActor) -> list[NamespaceEntry]:
    """Write up to 1000 entries in one transaction, or none: BulkRejected lists every refused item."""
    with audit_operation(actor=actor, action=Action.WRITE) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_WRITE)
        scope.namespace = namespace.bucket.name
        items = bulk_list_checked(entries, name="entries")
        scope.detail = f"bulk set of {len(items)} entries"
        inputs: list[EntryInput] = []
        failures: list[tuple[int, str, DomainError]] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            key_path = item.get("keyPath") if isinstance(item, dict) else None
            try:
                checked = _bulk_item(item)
                if checked.key_path in seen:
                    raise InvalidArgument("keyPath appears more than once")
                seen.add(checked.key_path)
                inputs.append(checked)
            except DomainError as error:
                failures.append((index, key_path if isinstance(key_path, str) else "", error))
        if failures:
            raise BulkRejected(operation="set", total=len(items), failures=failures)
        records: list[Record] = []

        def plan() -> list[bulk.BulkWrite]:
            current = _live(namespace, [item.key_path for item in inputs])
            now = clock.now()
            writes, refused = [], []
            records.clear()
            for index, item in enumerate(inputs):
                entry = current.get(item.key_path)
                record = _record_decode(entry, namespace=namespace, exact=False) if entry else None
                version = record.version if record else None
                if item.version is not None and item.version != version:
                    refused.append((index, item.key_path, VersionMismatch(item.key_path, item.version, version)))
                    continue
                ttl = item.ttl_seconds or namespace.default_ttl_seconds
                new = _next_record(
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
                    bulk.BulkWrite(
                        key=item.key_path,
                        value=_record_encode(new, namespace=namespace, key_path=item.key_path),
                        expires_at=_expiry(ttl, now),
                        if_absent=entry is None,
                        if_revision=entry.revision if entry else None,
                    )
                )
            if refused:
                raise BulkRejected(operation="set", total=len(inputs), failures=refused)
            return writes

        written = _bulk_apply(namespace=namespace, operation="set", plan=plan)
        shown = _shows_values(namespace, actor)
        return [_entry_view(entry, record, shown=shown) for entry, record in zip(written, records, strict=True)]


def namespace_entries_bulk_delete(*, namespace_id: uuid.UUID, keys: Any, actor: AuditActor) -> int:
    """Delete (purge) up to 1000 entries in one transaction, or none if any is missing."""
    with audit_operation(actor=actor, action=Action.DELETE) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_DELETE)
        scope.namespace = namespace.bucket.name
        keys = _bulk_keys(keys, operation="delete")
        scope.detail = f"bulk delete of {len(keys)} entries"

        def plan() -> list[bulk.BulkWrite]:
            current = _live(namespace, keys)
            missing = [(index, key, EntryNotFound(key)) for index, key in enumerate(keys) if key not in current]
            if missing:
                raise BulkRejected(operation="delete", total=len(keys), failures=missing)
            return [bulk.BulkWrite(key=key, operation=store.PURGE, if_revision=current[key].revision) for key in keys]

        return len(_bulk_apply(namespace=namespace, operation="delete", plan=plan))


# --- Versions, rotation, rollback -------------------------------------------------------------


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
    return [(entry, _record_decode(entry, namespace=namespace)) for entry in history[start:]]


def namespace_entry_versions(*, namespace_id: uuid.UUID, key_path: str, actor: AuditActor) -> list[EntryVersion]:
    """Every kept version, newest first: number, who, why, when; values as a single read shows them."""
    with audit_refusals(actor=actor, action=Action.READ, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=ENTRY_READ)
        scope.namespace = namespace.bucket.name
        validate_key_path(key_path)
        shown = _shows_values(namespace, actor)
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
    _record_read(actor=actor, namespace=namespace, key_path=key_path, detail=detail)
    return versions


def namespace_entry_rotate(*, namespace_id: uuid.UUID, key_path: str, value: Any, actor: AuditActor) -> NamespaceEntry:
    """A secret's new value as its next version, reason ``rotation`` (same type, metadata and TTL)."""
    with audit_operation(actor=actor, action=Action.ROTATE, key_path=key_path) as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=SECRET_ROTATE)
        scope.namespace = namespace.bucket.name
        if not namespace.is_secret:
            raise InvalidArgument("rotate is for entries of secret namespaces")
        validate_key_path(key_path)

        def build(current: Record | None) -> tuple[str, Any, dict, int | None]:
            return current.type, typed_value(value, current.type), current.metadata, current.ttl_seconds

        entry, record = _write(
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
        return _entry_view(entry, record, shown=_shows_values(namespace, actor))


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
        validate_key_path(key_path)
        version = _check_version(version)
        if version is None:
            raise InvalidArgument('body must be {"version": <positive integer>}')
        old = next((record for _, record in _kept_versions(namespace, key_path) if record.version == version), None)
        if old is None:
            raise VersionNotFound(key_path, version)
        entry, record = _write(
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
        return _entry_view(entry, record, shown=_shows_values(namespace, actor))
