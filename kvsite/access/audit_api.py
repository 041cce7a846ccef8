"""``GET /api/v1/audit``: the audit log for admins, newest first, cursor-paginated.

Declared on ``audit`` as a whole with ``kv-audit:read``: a scoped key reaches it only with an
``audit`` scope, since the log holds every tenant's rows.

Checked with no expression of type ``Any`` allowed (pyproject.toml): request data reaches a
service only as typed values, and bodies come typed from ``outputs``.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.core.exceptions import InvalidArgument
from kvsite.access.audit import audit_list
from kvsite.access.guard import AUDIT, Need, whole
from kvsite.access.guarded import GuardedApi
from kvsite.access.outputs import AUDIT_LIST_RESPONSES, audit_page_body
from kvsite.access.permissions import AUDIT_READ
from kvsite.models import AuditEvent
from kvsite.schema import operation_schema


def _moment(raw: str | None, *, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidArgument(f"{name} must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 100
    if not raw.isdigit():
        raise InvalidArgument("limit must be a positive integer")
    return int(raw)


class AuditListApi(GuardedApi):
    access = {"GET": Need(AUDIT_READ, resource=whole(AUDIT))}

    @operation_schema(
        operation_id="audit_list",
        parameters=[
            OpenApiParameter("action", str, enum=AuditEvent.Action.values),
            OpenApiParameter("actor", str, description="'api_key:<id>', 'user:<id>' or an actor name"),
            OpenApiParameter("namespace", str, description="internal bucket name, or a user bucket's name"),
            OpenApiParameter("since", str, description="ISO 8601; events at or after"),
            OpenApiParameter("until", str, description="ISO 8601; events before"),
            OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
            OpenApiParameter("limit", int, description="page size, 1-1000 (default 100)"),
        ],
        responses=AUDIT_LIST_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        """The audit log, newest first. Needs kv-audit:read (a scoped key: the scope audit)."""
        query = request.query_params
        page = audit_list(
            action=query.get("action") or None,
            actor=query.get("actor") or None,
            namespace=query.get("namespace") or None,
            since=_moment(query.get("since"), name="since"),
            until=_moment(query.get("until"), name="until"),
            cursor=query.get("cursor") or None,
            limit=_limit(query.get("limit")),
        )
        return Response(audit_page_body(page))
