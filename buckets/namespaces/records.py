"""The stored form of a namespace entry: one record per core value, sealed in secret namespaces.

Each core value is one compact JSON object (exact numbers)::

    {"kvns": 1, "id": "<uuid hex>", "type": "STRING", "value": ..., "metadata": {...},
     "version": 3, "createdAt": "...Z", "changedBy": "api_key:7", "reason": "update",
     "ttlSeconds": null}

``value`` is in its wire form (base64 for BINARY). ``version`` is the entry's
own counter (1 on creation, +1 per write), ``id`` and ``createdAt`` are carried
from version to version, ``ttlSeconds`` is what a rotation or rollback applies
again. In a secret namespace the whole record is sealed with
``buckets.core.sealing`` for (bucket, key path), so the stored bytes are an
envelope: the plaintext is never stored, master-key rotation re-seals these
values like any other secret, and change events carry no value.

A value not written by this dialect (bytes put through the bucket API) reads as
version 1 of a STRING (UTF-8) or BINARY entry.
"""

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from buckets.core import sealing
from buckets.core.events import rfc3339
from buckets.models import Entry, Namespace
from kvsite.access.audit import AuditActor
from kvsite.http.jsonbody import JsonNumber, dump_json_exact

VALUE_TYPES = ("STRING", "JSON", "NUMBER", "BOOLEAN", "BINARY")
REASON_UPDATE, REASON_ROTATION, REASON_ROLLBACK = "update", "rotation", "rollback"
_RECORD_FORMAT = 1


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


def record_encode(record: Record, *, namespace: Namespace, key_path: str) -> bytes:
    """The bytes to store for ``record`` under ``key_path``: sealed if the namespace is secret."""
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
        return sealing.value_seal(plaintext=raw, bucket=namespace.bucket.name, key=key_path)
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


def record_decode(entry: Entry, *, namespace: Namespace, exact: bool = True) -> Record:
    """The record of a stored entry; ``exact=False`` when only its header (id, version, times) is used."""
    raw = bytes(entry.value)
    if namespace.is_secret:
        raw = sealing.value_open(envelope=raw, bucket=namespace.bucket.name, key=entry.key)
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


def record_next(
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
    """The record a write stores after ``current`` (None: the entry is new)."""
    return Record(
        id=current.id if current else uuid.uuid4().hex,
        type=value_type,
        value=value,
        metadata=metadata,
        version=current.version + 1 if current else 1,
        created_at=current.created_at if current else now,
        changed_by=f"{actor.type}:{actor.id or actor.name}",
        reason=reason,
        ttl_seconds=ttl_seconds,
    )
