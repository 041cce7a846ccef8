"""Reads the dashboard needs beyond the services' own: page rows, environment lists, who changed what.

Nothing here writes. Listings that can grow large walk an index range with a
cursor (``store.key_list``) and never count the whole set.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, QuerySet

from buckets.core import store
from buckets.core.names import APP_PREFIX, SYS_CONFIG_PREFIX, SYS_SECRETS_PREFIX
from buckets.models import Bucket, Entry
from buckets.namespaces.services import SECRET_BUCKET_PREFIX
from kvsite.access.audit import Action
from kvsite.models import ApiKey, AuditEvent

KEY_PAGE_SIZE = 100


def user_buckets(*, search: str = "") -> QuerySet[Bucket]:
    """User (``APP_``) buckets by name, optionally those whose name contains ``search``; never ``SYS_`` ones."""
    buckets = store.bucket_list(prefix=APP_PREFIX)
    if search:
        buckets = buckets.filter(name__icontains=search)
    return buckets


@dataclass(frozen=True)
class KeyRow:
    key: str
    revision: int
    size: int
    updated_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class KeyRowsPage:
    rows: list[KeyRow]
    next_cursor: str | None
    # The page covers keys after ``after`` (None: from the start) up to ``until`` (None: to the end).
    after: str | None
    until: str | None


def key_rows(*, bucket: str, pattern: str | None, cursor: str | None, limit: int = KEY_PAGE_SIZE) -> KeyRowsPage:
    """One page of a bucket's live keys with their latest revision, size and time.

    The keys come from ``store.key_list`` (an index range from the cursor on, so
    page 1,000 costs what page 1 does); their details are one more query on
    exactly those keys.
    """
    page = store.key_list(bucket=bucket, pattern=pattern, limit=limit, cursor=cursor)
    details = {
        row[0]: row
        for row in Entry.objects.filter(bucket__name=bucket, key__in=page.keys, is_latest=True).values_list(
            "key", "revision", "size", "created_at", "expires_at"
        )
    }
    rows = [KeyRow(*details[key]) for key in page.keys if key in details]
    return KeyRowsPage(
        rows=rows,
        next_cursor=page.next_cursor,
        after=store.decode_cursor(cursor) if cursor else None,
        until=page.keys[-1] if page.next_cursor and page.keys else None,
    )


def _environments(prefix: str) -> list[str]:
    # Secret namespaces (the namespaces API) share the SYS_secrets_ prefix but are not environments.
    names = store.bucket_list(prefix=prefix).exclude(name__startswith=SECRET_BUCKET_PREFIX)
    return [name[len(prefix) :] for name in names.values_list("name", flat=True)]


def config_environments() -> list[str]:
    """Environments with config documents (each is a ``SYS_config_<env>`` bucket)."""
    return _environments(SYS_CONFIG_PREFIX)


def secret_environments() -> list[str]:
    """Environments with secrets (each is a ``SYS_secrets_<env>`` bucket)."""
    return _environments(SYS_SECRETS_PREFIX)


def last_writers(*, namespace: str, names: list[str]) -> dict[str, AuditEvent]:
    """The latest successful write audit row of each of ``names`` in ``namespace``: who changed it last."""
    writers: dict[str, AuditEvent] = {}
    if not names:
        return writers
    rows = AuditEvent.objects.filter(
        namespace=namespace, key_path__in=names, action__in=[Action.WRITE, Action.ROLLBACK], success=True
    ).order_by("-id")
    for event in rows.iterator():
        writers.setdefault(event.key_path, event)
        if len(writers) == len(names):
            break
    return writers


def entry_writers(*, namespace: str, entry_ids: list[int]) -> dict[int, AuditEvent]:
    """The successful audit row that wrote each entry (by entry id), where one was recorded."""
    rows = AuditEvent.objects.filter(namespace=namespace, entry_id__in=entry_ids, success=True).exclude(
        action__in=[Action.READ, Action.REVEAL]
    )
    return {event.entry_id: event for event in rows.order_by("id")}


def api_keys() -> QuerySet[ApiKey]:
    """Every API key, active first, newest first."""
    return ApiKey.objects.order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
