"""The access API's response bodies: their shapes (for the schema), their responses, and how they are rendered.

The view modules (``audit_api``, ``tickets_api``, ``apikeys_api``) are type-checked with no expression of type
``Any`` allowed; DRF's serializer classes and their ``.data`` are ``Any`` to mypy, so they are
named here, and the views get plain typed values from this module.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from kvsite.access.apikeys import IssuedApiKey
from kvsite.access.audit import AuditPage
from kvsite.access.tickets import IssuedTicket
from kvsite.http.errors import ErrorOutput
from kvsite.models import ApiKey, AuditEvent


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


# --- API keys: a listing never shares its serializer with the one response that holds a token. ------


class ApiKeyOutput(serializers.ModelSerializer[ApiKey]):
    permissions = serializers.ListField(
        child=serializers.CharField(), help_text="Permissions beyond the role's (role 'none': all it has)."
    )
    scopes = serializers.ListField(child=serializers.CharField(), help_text="'kind:glob' limits; empty: unrestricted.")

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "permissions",
            "scopes",
            "account",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]


class ApiKeyListOutput(serializers.Serializer[dict[str, object]]):
    keys = ApiKeyOutput(many=True)
    count = serializers.IntegerField()


class IssuedApiKeyOutput(serializers.Serializer[IssuedApiKey]):
    token = serializers.CharField(help_text="The bearer token: in this response only, never stored, never shown again.")
    id = serializers.IntegerField(source="api_key.pk")
    name = serializers.CharField(source="api_key.name")
    prefix = serializers.CharField(source="api_key.prefix")
    role = serializers.CharField(source="api_key.role")
    permissions = serializers.ListField(child=serializers.CharField(), source="api_key.permissions")
    scopes = serializers.ListField(child=serializers.CharField(), source="api_key.scopes")
    account = serializers.CharField(source="api_key.account")
    created_at = serializers.DateTimeField(source="api_key.created_at")
    expires_at = serializers.DateTimeField(source="api_key.expires_at", allow_null=True)


def apikey_list_body(keys: list[ApiKey]) -> dict[str, object]:
    """Keys as ``ApiKeyListOutput``: what each may do, never a token or its hash."""
    rendered: object = ApiKeyOutput(keys, many=True).data
    return {"keys": rendered, "count": len(keys)}


def apikey_issued_body(issued: IssuedApiKey) -> dict[str, object]:
    """A new key with its token, as ``IssuedApiKeyOutput``: the one body that ever holds a token."""
    rendered: dict[str, object] = dict(IssuedApiKeyOutput(issued).data)
    return rendered


APIKEY_LIST_RESPONSES: dict[int, object] = {
    200: ApiKeyListOutput,
    401: OpenApiResponse(ErrorOutput),
    403: OpenApiResponse(ErrorOutput, description="needs apikeys:manage (a scoped key: an apikeys scope)"),
}
APIKEY_ISSUED_RESPONSES: dict[int, object] = {
    201: OpenApiResponse(IssuedApiKeyOutput, description="Sent with Cache-Control: no-store."),
    400: OpenApiResponse(ErrorOutput, description="a malformed name, role, permission, scope, account or expiry"),
    401: OpenApiResponse(ErrorOutput),
    403: OpenApiResponse(
        ErrorOutput, description="needs apikeys:manage; and no key issues one with more permissions or wider scopes"
    ),
}
APIKEY_REVOKED_RESPONSES: dict[int, object] = {
    204: OpenApiResponse(description="Revoked (or revoked already)."),
    401: OpenApiResponse(ErrorOutput),
    403: OpenApiResponse(ErrorOutput, description="needs apikeys:manage"),
    404: OpenApiResponse(ErrorOutput, description="no such key, or one beyond the caller's own authority"),
}
