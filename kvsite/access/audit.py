"""The audit log: who did what to which namespace and key, and whether it was allowed.

A successful operation writes its audit row inside the operation's own
transaction, so a change without its record cannot commit. A refused or failed
one (403, 404, a tampered value...) rolls its transaction back and is then
recorded on its own, so refusals are never lost with the rollback.

Rows are append-only: ``AuditEvent`` refuses updates and deletes, its admin is
read-only, and no API writes it except through ``audit_record``.
"""

import ipaddress
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from buckets.core.cursors import decode_cursor, encode_cursor
from buckets.core.exceptions import DomainError, InvalidArgument
from buckets.core.names import APP_PREFIX
from kvsite.access.permissions import Principal
from kvsite.models import AuditEvent

logger = logging.getLogger(__name__)

Action = AuditEvent.Action
MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditActor:
    """Who acts and from where: a principal (API key or staff user) or the system."""

    type: str
    id: str
    name: str
    principal: Principal | None = None
    client_ip: str | None = None
    request_id: str = ""


def audit_actor_system(*, name: str) -> AuditActor:
    """The actor of management commands and other work nobody requested over HTTP."""
    return AuditActor(type="system", id="", name=name)


def _client_ip(remote_addr: str) -> str | None:
    # Only the socket peer: X-Forwarded-For is whatever the client wants it to be
    # unless a trusted proxy rewrites it, which kvsite cannot know.
    try:
        return str(ipaddress.ip_address(remote_addr))
    except ValueError:
        return None


def audit_actor_from_request(request: Request | HttpRequest, *, principal: Principal | None = None) -> AuditActor:
    """The actor of a request: ``principal`` (the dashboard's staff user), else an authenticated DRF request's."""
    if principal is None:
        # The stubs type request.user as a Django user; DRF holds whatever authenticated it, a Principal here.
        user: object = request.user
        principal = user if isinstance(user, Principal) else None
    return AuditActor(
        type=principal.kind if principal else "anonymous",
        id=str(principal.id) if principal else "",
        name=principal.name if principal else "",
        principal=principal,
        client_ip=_client_ip(request.META.get("REMOTE_ADDR", "")),
        request_id=getattr(request, "request_id", "") or "",
    )


def audit_record(
    *,
    actor: AuditActor,
    action: str,
    namespace: str = "",
    key_path: str = "",
    entry_id: int | None = None,
    success: bool = True,
    reason: str = "",
    detail: str = "",
) -> AuditEvent:
    """Append one audit row (in the caller's transaction, if there is one)."""
    return AuditEvent.objects.create(
        timestamp=timezone.now(),
        namespace=namespace[:80],
        entry_id=entry_id,
        key_path=key_path[:512],
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name[:150],
        success=success,
        reason=reason[:500],
        detail=detail[:500],
        client_ip=actor.client_ip,
        request_id=actor.request_id[:64],
    )


@dataclass
class AuditScope:
    """What an audited operation touched; filled in as the operation learns it."""

    namespace: str = ""
    key_path: str = ""
    entry_id: int | None = None
    detail: str = ""


def _scope_record(*, actor: AuditActor, action: str, scope: AuditScope, success: bool = True, reason: str = "") -> None:
    audit_record(
        actor=actor,
        action=action,
        namespace=scope.namespace,
        key_path=scope.key_path,
        entry_id=scope.entry_id,
        success=success,
        reason=reason,
        detail=scope.detail,
    )


def _record_failure(*, actor: AuditActor, action: str, scope: AuditScope, error: Exception) -> None:
    reason = error.message if isinstance(error, DomainError) else "internal error"
    try:
        _scope_record(actor=actor, action=action, scope=scope, success=False, reason=reason)
    except Exception:
        # The original error is what the caller must see; a broken database fails both.
        logger.exception("could not record the failed %s on %s", action, scope.namespace)
    # Outer scopes (a view around a core call) must not record the same failure twice. Any exception
    # may be marked (it takes attributes, but not weak references), so no class declares the mark.
    error.audited = True  # type: ignore[attr-defined]


@contextmanager
def audit_operation(
    *, actor: AuditActor, action: str, namespace: str = "", key_path: str = "", detail: str = ""
) -> Iterator[AuditScope]:
    """Run the block in one transaction that also holds its success row; record failures after rollback."""
    scope = AuditScope(namespace=namespace, key_path=key_path, detail=detail)
    try:
        with transaction.atomic():
            yield scope
            _scope_record(actor=actor, action=action, scope=scope)
    except Exception as error:
        if not getattr(error, "audited", False):
            _record_failure(actor=actor, action=action, scope=scope, error=error)
        raise


@contextmanager
def audit_refusals(*, actor: AuditActor, action: str, namespace: str = "", key_path: str = "") -> Iterator[AuditScope]:
    """Record a refusal raised in the block (e.g. a view's permission check); success is the core's to record."""
    scope = AuditScope(namespace=namespace, key_path=key_path)
    try:
        yield scope
    except DomainError as error:
        if not getattr(error, "audited", False):
            _record_failure(actor=actor, action=action, scope=scope, error=error)
        raise


def audit_refused(
    *, request: Request, action: str, error: DomainError, namespace: str = "", key_path: str = "", detail: str = ""
) -> None:
    """Record a call refused before its handler ran (``GuardedApi.access_refused``), as its operation would have."""
    scope = AuditScope(namespace=namespace, key_path=key_path, detail=detail)
    _record_failure(actor=audit_actor_from_request(request), action=action, scope=scope, error=error)


# --- Reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None


def _cursor_encode(event_id: int) -> str:
    return encode_cursor(str(event_id))


def _cursor_decode(cursor: str) -> int:
    decoded = decode_cursor(cursor)
    if not decoded.isascii() or not decoded.isdigit() or len(decoded) > 19:
        raise InvalidArgument("invalid cursor")
    return int(decoded)


def audit_list(
    *,
    action: str | None = None,
    actor: str | None = None,
    namespace: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> AuditPage:
    """Audit events, newest first, ``limit`` at a time.

    The cursor is the last id of the previous page, so pages stay stable while
    new events arrive. ``actor`` matches ``type:id`` (``api_key:3``) or a name;
    ``namespace`` the internal name or a user bucket's public one.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    events = AuditEvent.objects.all()
    if action:
        if action.upper() not in Action.values:
            raise InvalidArgument(f"action must be one of {', '.join(Action.values)}")
        events = events.filter(action=action.upper())
    if actor:
        kind, separator, actor_id = actor.partition(":")
        by_name = Q(actor_name=actor)
        events = events.filter(by_name | Q(actor_type=kind, actor_id=actor_id) if separator else by_name)
    if namespace:
        events = events.filter(namespace__in=[namespace, APP_PREFIX + namespace])
    if since:
        events = events.filter(timestamp__gte=since)
    if until:
        events = events.filter(timestamp__lt=until)
    if cursor:
        events = events.filter(id__lt=_cursor_decode(cursor))
    rows = list(events.order_by("-id")[: limit + 1])
    if len(rows) > limit:
        return AuditPage(events=rows[:limit], next_cursor=_cursor_encode(rows[limit - 1].id))
    return AuditPage(events=rows, next_cursor=None)


def audit_bucket_created(actor: AuditActor) -> Callable[[str], None]:
    """The core's ``record`` hook for ``bucket_create``: the creation's audit row, in its transaction."""
    return lambda name: _bucket_change(actor=actor, action=Action.WRITE, name=name, detail="bucket created")


def audit_bucket_deleted(actor: AuditActor) -> Callable[[str], None]:
    """The core's ``record`` hook for ``bucket_delete``: the deletion's audit row, in its transaction."""
    return lambda name: _bucket_change(actor=actor, action=Action.DELETE, name=name, detail="bucket deleted")


def _bucket_change(*, actor: AuditActor, action: str, name: str, detail: str) -> None:
    audit_record(actor=actor, action=action, namespace=name, detail=detail)


@dataclass(frozen=True)
class AuditedRotation:
    """A master-key rotation's journal (``buckets.core.rotation.RotationJournal``) as ROTATE audit rows."""

    actor: AuditActor

    def resealed(self, *, bucket: str, count: int, primary: str) -> None:
        audit_record(
            actor=self.actor,
            action=Action.ROTATE,
            namespace=bucket,
            detail=f"re-sealed {count} values under master key {primary}",
        )

    def unreadable(self, *, bucket: str, key: str, entry_id: int, reason: str) -> None:
        audit_record(
            actor=self.actor,
            action=Action.ROTATE,
            namespace=bucket,
            key_path=key,
            entry_id=entry_id,
            success=False,
            reason=reason,
        )
