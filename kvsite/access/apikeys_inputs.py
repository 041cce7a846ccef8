"""The key management API's request body, parsed into the typed values ``apikey_create`` takes.

Unknown members are refused, not ignored: a misspelt ``"scope"`` must not issue an unrestricted key.
"""

from dataclasses import dataclass
from datetime import datetime

from rest_framework import serializers
from rest_framework.request import Request

from buckets.core.exceptions import InvalidArgument
from kvsite.access.apikeys import expiry_parse
from kvsite.access.permissions import ALL_PERMISSIONS, ROLE_PERMISSIONS
from kvsite.http.jsonbody import request_json

FIELDS = ("name", "role", "permissions", "scopes", "account", "expires")


class ApiKeyIssueBody(serializers.Serializer[dict[str, object]]):
    """The body's shape, for the schema (``apikey_issue_input`` reads it)."""

    name = serializers.CharField(max_length=100)
    role = serializers.ChoiceField(choices=sorted(ROLE_PERMISSIONS))
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(ALL_PERMISSIONS)), required=False, help_text="Beyond the role's."
    )
    scopes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="'kind:glob' limits (bucket:orders-*, config:prod, secrets:prod, namespace:app/*, items:acct, "
        "audit, metrics, apikeys); none: unrestricted. A scoped caller must give scopes within its own.",
    )
    account = serializers.CharField(
        required=False, allow_null=True, help_text="Items account; a key may name only its own (default: key-<id>)."
    )
    expires = serializers.CharField(
        required=False, allow_null=True, help_text="30d, 12h, 2w, 2027-01-01 or an ISO 8601 date-time; default never."
    )


# For the views' schema declarations, which may not name a serializer class (its type holds Any).
APIKEY_ISSUE_REQUEST: object = ApiKeyIssueBody


@dataclass(frozen=True)
class ApiKeyIssue:
    """What ``POST /api/v1/apikeys`` asks for."""

    name: str
    role: str
    permissions: tuple[str, ...]
    scopes: tuple[str, ...]
    account: str | None
    expires_at: datetime | None


def _text(body: dict[str, object], field: str, *, required: bool) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string")
    return value


def _texts(body: dict[str, object], field: str) -> tuple[str, ...]:
    value = body.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidArgument(f"{field} must be a list of strings")
    return tuple(item for item in value if isinstance(item, str))


def apikey_issue_input(request: Request) -> ApiKeyIssue:
    """The key a request asks for; InvalidArgument (400) naming the first member that is wrong."""
    body: object = request_json(request)
    if not isinstance(body, dict):
        raise InvalidArgument("body must be a JSON object")
    unknown = sorted(str(member) for member in body if member not in FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown member {', '.join(unknown)}; a key is asked for with {', '.join(FIELDS)}")
    expires = _text(body, "expires", required=False)
    return ApiKeyIssue(
        name=_text(body, "name", required=True) or "",
        role=_text(body, "role", required=True) or "",
        permissions=_texts(body, "permissions"),
        scopes=_texts(body, "scopes"),
        account=_text(body, "account", required=False),
        expires_at=expiry_parse(expires) if expires is not None else None,
    )
