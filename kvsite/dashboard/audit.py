"""The audit page: filter by action, actor, namespace and time; newest first, cursor-paged."""

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from buckets.core.exceptions import InvalidArgument
from buckets.core.names import APP_PREFIX, SYS_CONFIG_PREFIX, SYS_SECRETS_PREFIX
from kvsite.access.audit import audit_list
from kvsite.access.guard import AUDIT, Need, whole
from kvsite.access.permissions import AUDIT_READ

from .access import dashboard_view
from .forms import AuditFilterForm
from .pagination import trail_pop, trail_push

PAGE_SIZE = 50
# Shown and typed as "config:<env>" / "secrets:<env>": internal bucket names stay out of the page.
NAMESPACE_KINDS = {"config:": SYS_CONFIG_PREFIX, "secrets:": SYS_SECRETS_PREFIX}


def namespace_label(namespace: str) -> str:
    """How a namespace reads on the page: a user bucket's name, ``config:<env>`` or ``secrets:<env>``."""
    if namespace.startswith(APP_PREFIX):
        return namespace[len(APP_PREFIX) :]
    for label, prefix in NAMESPACE_KINDS.items():
        if namespace.startswith(prefix):
            return label + namespace[len(prefix) :]
    return namespace


def namespace_filter(typed: str) -> str:
    """The namespace ``audit_list`` understands for what was typed (a label or a bucket name)."""
    for label, prefix in NAMESPACE_KINDS.items():
        if typed.startswith(label):
            return prefix + typed[len(label) :].strip()
    return typed


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dashboard_view({"GET": Need(AUDIT_READ, resource=whole(AUDIT))})
def audit_index(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    page = None
    error = ""
    filters: dict[str, str] = {}
    if form.is_bound and not form.is_valid():
        error = "Check the filters."
    else:
        data = form.cleaned_data if form.is_bound else {}
        filters = {
            name: request.GET[name]
            for name in ("action", "actor", "namespace", "since", "until")
            if request.GET.get(name)
        }
        try:
            page = audit_list(
                action=data.get("action") or None,
                actor=(data.get("actor") or "").strip() or None,
                namespace=namespace_filter((data.get("namespace") or "").strip()) or None,
                since=_utc(data.get("since")),
                until=_utc(data.get("until")),
                cursor=data.get("cursor") or None,
                limit=PAGE_SIZE,
            )
        except InvalidArgument as failure:
            error = failure.message
    cursor = request.GET.get("cursor") or None
    trail = request.GET.get("trail", "")
    next_url = previous_url = first_url = None
    if page is not None and page.next_cursor:
        next_url = "?" + urlencode({**filters, "cursor": page.next_cursor, "trail": trail_push(trail, cursor)})
    if cursor:
        previous_cursor, previous_trail = trail_pop(trail)
        previous = {**filters, "cursor": previous_cursor or "", "trail": previous_trail}
        previous_url = "?" + urlencode({name: value for name, value in previous.items() if value})
        first_url = "?" + urlencode(filters)
    events = [
        {"event": event, "namespace": namespace_label(event.namespace)} for event in (page.events if page else [])
    ]
    return render(
        request,
        "dashboard/audit/index.html",
        {
            "form": form,
            "events": events,
            "error": error,
            "next_url": next_url,
            "previous_url": previous_url,
            "first_url": first_url,
        },
    )
