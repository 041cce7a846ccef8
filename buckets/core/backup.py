"""Export and import of buckets with their full kept history (JSON Lines).

The export is a faithful copy: revisions, timestamps, operations and the
stored bytes (secret values stay sealed: they are stored sealed). Import writes
rows directly rather than replaying puts, because replaying would renumber
revisions and restamp times; it therefore rebuilds what the write path
maintains (latest flags, counters) from the rows it restores, in one
transaction per bucket.

Line format::

    {"type": "bucket", "name": "APP_x", "description": ..., "ttl_seconds": ..., ...}
    {"type": "entry", "key": ..., "revision": 3, "operation": "put", "value": "<base64>",
     "created_at": "...Z", "expires_at": null}
"""

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from buckets.core.events import rfc3339
from buckets.core.exceptions import BucketExists, InvalidArgument
from buckets.models import Bucket, Entry

FORMAT_VERSION = 1
BUCKET_FIELDS = (
    "description",
    "ttl_seconds",
    "max_value_size",
    "max_bytes",
    "history",
    "max_keys",
    "key_format",
    "last_revision",
)
ENTRY_BATCH = 2000

# A line as json.loads reads it: its fields are checked as they are used.
Record = dict[str, Any]


def _parse_time(raw: object) -> datetime | None:
    if not raw:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"not a timestamp: {raw!r}")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _required_time(raw: object, *, name: str) -> datetime:
    """A timestamp the line must carry (its column cannot be null); ValueError naming it otherwise."""
    moment = _parse_time(raw)
    if moment is None:
        raise ValueError(f"{name} is missing")
    return moment


def bucket_export(*, bucket: Bucket) -> Iterator[dict[str, object]]:
    """The bucket's header line, then every kept entry in revision order."""
    yield {
        "type": "bucket",
        "format": FORMAT_VERSION,
        "name": bucket.name,
        "created_at": rfc3339(bucket.created_at),
        **{name: getattr(bucket, name) for name in BUCKET_FIELDS},
    }
    entries = Entry.objects.filter(bucket=bucket).order_by("revision")
    for entry in entries.iterator(chunk_size=ENTRY_BATCH):
        yield {
            "type": "entry",
            "key": entry.key,
            "revision": entry.revision,
            "operation": entry.operation,
            "value": base64.b64encode(bytes(entry.value)).decode(),
            "created_at": rfc3339(entry.created_at),
            "expires_at": rfc3339(entry.expires_at) if entry.expires_at else None,
        }


def export_lines(*, names: list[str] | None = None) -> Iterator[str]:
    buckets = Bucket.objects.order_by("name")
    if names:
        buckets = buckets.filter(name__in=names)
        missing = set(names) - set(buckets.values_list("name", flat=True))
        if missing:
            raise InvalidArgument(f"no such bucket: {', '.join(sorted(missing))}")
    for bucket in buckets:
        for record in bucket_export(bucket=bucket):
            yield json.dumps(record, separators=(",", ":")) + "\n"


@dataclass
class ImportReport:
    buckets: dict[str, int] = field(default_factory=dict)


def _entry_from(record: Record, bucket: Bucket) -> Entry:
    try:
        value = base64.b64decode(record["value"], validate=True)
        return Entry(
            bucket=bucket,
            key=record["key"],
            revision=int(record["revision"]),
            operation=Entry.Operation(record["operation"]),
            value=value,
            size=len(value),
            created_at=_required_time(record["created_at"], name="created_at"),
            expires_at=_parse_time(record.get("expires_at")),
            is_latest=False,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidArgument(f"malformed entry line: {error}") from None


@transaction.atomic
def bucket_import(*, header: Record, entries: Iterable[Record], replace: bool = False) -> int:
    """Restore one bucket exactly; refuses a non-empty existing bucket unless ``replace``."""
    if header.get("format") != FORMAT_VERSION:
        raise InvalidArgument(f"unsupported export format {header.get('format')!r}")
    name = header["name"]
    try:
        created_at = _required_time(header.get("created_at"), name="created_at")
    except ValueError as error:
        raise InvalidArgument(f"malformed bucket header: {error}") from None
    existing = Bucket.objects.select_for_update().filter(name=name).first()
    if existing is not None:
        if existing.last_revision and not replace:
            raise BucketExists(name)
        Entry.objects.filter(bucket=existing).delete()
        existing.delete()
    bucket = Bucket.objects.create(
        name=name,
        created_at=created_at,
        **{name: header[name] for name in BUCKET_FIELDS},
    )
    restored = 0
    batch: list[Entry] = []
    for record in entries:
        batch.append(_entry_from(record, bucket))
        if len(batch) >= ENTRY_BATCH:
            Entry.objects.bulk_create(batch)
            restored += len(batch)
            batch = []
    Entry.objects.bulk_create(batch)
    restored += len(batch)

    rows = Entry.objects.filter(bucket=bucket)
    latest = rows.values("key").annotate(revision=Max("revision")).values_list("revision", flat=True)
    rows.filter(revision__in=latest).update(is_latest=True)
    sizes = list(rows.values_list("size", flat=True))
    bucket.values_count = len(sizes)
    bucket.bytes_total = sum(sizes)
    bucket.live_keys = rows.filter(is_latest=True, operation=Entry.Operation.PUT).count()
    if rows.filter(revision__gt=bucket.last_revision).exists():
        raise InvalidArgument(f"bucket {name}: an entry's revision is above the bucket's last_revision")
    bucket.save(update_fields=["values_count", "bytes_total", "live_keys"])
    return restored


def _records(lines: Iterable[str]) -> Iterator[tuple[int, Record]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InvalidArgument(f"line {number} is not JSON") from None
        if not isinstance(record, dict) or record.get("type") not in ("bucket", "entry"):
            raise InvalidArgument(f"line {number}: expected a bucket header or an entry")
        yield number, record


def import_lines(*, lines: Iterable[str], replace: bool = False) -> ImportReport:
    """Restore every bucket of an export, one transaction per bucket, streaming.

    Entries are handed to ``bucket_import`` as they are read, so memory stays flat
    whatever the bucket's size.
    """
    report = ImportReport()
    records = _records(lines)
    lookahead = next(records, None)
    while lookahead is not None:
        number, header = lookahead
        if header["type"] != "bucket":
            raise InvalidArgument(f"line {number}: an entry before any bucket header")
        lookahead = None

        def entries() -> Iterator[Record]:
            nonlocal lookahead
            for item in records:
                if item[1]["type"] == "bucket":
                    lookahead = item
                    return
                yield item[1]

        report.buckets[header["name"]] = bucket_import(header=header, entries=entries(), replace=replace)
    return report
