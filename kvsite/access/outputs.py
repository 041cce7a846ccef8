"""The access API's response bodies: their shapes (for the schema), their responses, and how they are rendered.

The view modules (``audit_api``, ``tickets_api``) are type-checked with no expression of type
``Any`` allowed; DRF's serializer classes and their ``.data`` are ``Any`` to mypy, so they are
named here, and the views get plain typed values from this module.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from kvsite.access.audit import AuditPage
from kvsite.access.tickets import IssuedTicket
from kvsite.http.errors import ErrorOutput
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


def audit_page_body(page: AuditPage) -> dict[str, object]:
    """A page of the audit log as ``AuditPageOutput`` (``next_cursor`` only when older events follow)."""
    events: object = AuditEventOutput(page.events, many=True).data
    body: dict[str, object] = {"events": events, "count": len(page.events)}
    if page.next_cursor:
        body["next_cursor"] = page.next_cursor
    return body


AUDIT_LIST_RESPONSES: dict[int, object] = {
    200: AuditPageOutput,
    400: OpenApiResponse(ErrorOutput, description="a malformed filter, cursor or limit"),
    401: OpenApiResponse(ErrorOutput),
    403: OpenApiResponse(ErrorOutput, description="needs kv-audit:read"),
}


class WsTicketOutput(serializers.Serializer[IssuedTicket]):
    ticket = serializers.CharField(help_text="Pass as ?ticket= when opening one WebSocket; single use.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid if unused.")


def ws_ticket_body(issued: IssuedTicket) -> dict[str, object]:
    """An issued ticket as ``WsTicketOutput``."""
    return {"ticket": issued.ticket, "expires_in": issued.expires_in}


WS_TICKET_RESPONSES: dict[int, object] = {
    201: WsTicketOutput,
    401: OpenApiResponse(ErrorOutput),
    403: OpenApiResponse(ErrorOutput),
}
