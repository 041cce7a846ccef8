"""``GET /api/v1/audit``: the audit log for admins, newest first, cursor-paginated."""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvsite.access.audit import audit_list
from kvsite.access.authentication import request_principal
from kvsite.access.permissions import AUDIT_READ
from kvsite.http.errors import ErrorOutput, InvalidArgument
from kvsite.models import AuditEvent


class AuditEventOutput(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "action",
            "namespace",
            "key_path",
            "entry_id",
            "actor_type",
            "actor_id",
            "actor_name",
            "success",
            "reason",
            "detail",
            "client_ip",
            "request_id",
        ]


class AuditPageOutput(serializers.Serializer[dict[str, object]]):
    events = AuditEventOutput(many=True)
    count = serializers.IntegerField()
    next_cursor = serializers.CharField(required=False, help_text="Present when older events follow.")


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


class AuditListApi(APIView):
    @extend_schema(
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
        responses={
            200: AuditPageOutput,
            400: OpenApiResponse(ErrorOutput, description="a malformed filter, cursor or limit"),
            401: OpenApiResponse(ErrorOutput),
            403: OpenApiResponse(ErrorOutput, description="needs kv-audit:read"),
        },
    )
    def get(self, request: Request) -> Response:
        request_principal(request).require(AUDIT_READ)
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
        body = {"events": AuditEventOutput(page.events, many=True).data, "count": len(page.events)}
        if page.next_cursor:
            body["next_cursor"] = page.next_cursor
        return Response(body)
