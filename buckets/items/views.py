"""The items API (/kv/items, /kv/limits): declare, rate-limit, parse, call buckets.items.services, render.

Every route touches the caller's own account, ``items:<account>`` (``buckets.items.access``);
``DeclaredAccess`` decides before the handler runs, which then works on the account decided.

Every response, errors included, is the envelope ``{"requestId", "data",
"error"}`` with ``X-Request-Id`` = requestId. Errors come from the project's one
handler (``kvsite.http.errors.api_exception_handler``) and are only re-wrapped here.
Bodies are rendered with the exact JSON encoder, so a stored value goes out as
the bytes it was stored as, never through a float.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.core.events import rfc3339
from buckets.core.exceptions import InvalidArgument, NotFound
from buckets.core.keys import MAX_KEY_BYTES
from buckets.items import ratelimit
from buckets.items import services as items
from buckets.items.access import items_account
from buckets.items.inputs import item_put_input
from kvsite.access.guard import Need
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import ENTRY_DELETE, ENTRY_READ, ENTRY_WRITE
from kvsite.http.errors import api_exception_handler, error_body, items_envelope
from kvsite.http.jsonbody import MAX_DEPTH, ExactJsonBodyParser, request_json
from kvsite.http.negotiation import ExactJsonRenderer
from kvsite.http.paths import path_is_utf8, query_is_utf8
from kvsite.http.preconditions import parse_positive_int

logger = logging.getLogger("kvsite.api")

# The value is measured as stored (compact, unescaped UTF-8); the body may be
# pretty-printed, or escape all non-ASCII text as clients such as Python's
# json.dumps do by default (up to 3 body bytes per stored byte), so it gets room
# beyond the value limit.
BODY_SLACK_FACTOR = 4
BODY_SLACK_BYTES = 64 * 1024


# --- Envelope -------------------------------------------------------------------------


def request_id_of(request: Request) -> str:
    """The id RequestIdMiddleware gave the request (one is made if it did not run)."""
    django_request = getattr(request, "_request", request)
    request_id = getattr(django_request, "request_id", None)
    if not request_id:
        request_id = uuid.uuid4().hex
        django_request.request_id = request_id
    return request_id


def envelope(request: Request, *, data: Any = None, error: dict | None = None) -> dict:
    return items_envelope(request_id_of(request), data=data, error=error)


def items_exception_handler(exc: Exception, context: dict) -> Response:
    """The project's error response, re-wrapped as an envelope; unknown errors are a logged 500.

    Unlike the default, nothing is re-raised: under DEBUG Django would answer
    with an HTML page, and every items response must be an envelope.
    """
    response = api_exception_handler(exc, context)
    if response is None:
        request = context["request"]
        logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        response = Response(error_body("internal server error", "internal"), status=500)
    body = response.data
    error: dict[str, Any] = {"code": body["code"], "message": body["error"]}
    if "current_revision" in body:
        current = body["current_revision"]
        error["currentVersion"] = None if current is None else str(current)
    if "retry_after" in body:
        error["retryAfterSeconds"] = body["retry_after"]
        response["Retry-After"] = str(body["retry_after"])
    response.data = envelope(context["request"], error=error)
    return response


class ItemsApi(GuardedApi):
    """Base of the items views: envelope, exact JSON in and out, and the account the route decided on."""

    renderer_classes = [ExactJsonRenderer]
    parser_classes = [ExactJsonBodyParser]
    # OPTIONS is a 405 like any method a path does not have (no CORS preflight to answer).
    http_method_names = ["get", "put", "delete", "head"]

    def get_exception_handler(self):
        return items_exception_handler

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if isinstance(response, Response) and not getattr(response, "exception", False):
            response.data = envelope(request, data=response.data)
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-Id"] = request_id_of(request)
        return response

    def account(self, *, kind: str | None) -> str:
        """The account the route decided on (``items:<account>``), once a ``kind`` token of its rate limit is taken."""
        account = self.resource.name
        if kind is not None:
            ratelimit.ratelimit_take(account=account, kind=kind)
        return account


# --- Input ------------------------------------------------------------------------------


def item_key(request: Request, key: str) -> str:
    """``key`` as routed, unless the client's percent-escapes in it are not UTF-8.

    A server reads such escapes as something else (U+FFFD, or ``%XX`` text), so two keys
    would alias one; they are refused instead, on every serving path (kvsite.http.paths).
    """
    if not path_is_utf8(request):
        raise InvalidArgument("key is not valid UTF-8: its percent-escapes must spell UTF-8 bytes")
    return key


def _time(moment: datetime | None) -> str | None:
    # A just-written expiry keeps the caller's offset; responses are always in UTC.
    return rfc3339(moment.astimezone(UTC)) if moment is not None else None


def _figure(number: float) -> int | float:
    return int(number) if number == int(number) else number


# --- OpenAPI ----------------------------------------------------------------------------


def _enveloped(name: str, data) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "requestId": serializers.CharField(),
            "data": data,
            "error": serializers.JSONField(allow_null=True, help_text="null on success"),
        },
    )


ItemsErrorOutput = inline_serializer(
    "ItemsError",
    {
        "requestId": serializers.CharField(),
        "data": serializers.JSONField(allow_null=True, help_text="null on failure"),
        "error": inline_serializer(
            "ItemsErrorDetail", {"code": serializers.CharField(), "message": serializers.CharField()}
        ),
    },
)
ERRORS = {status: OpenApiResponse(ItemsErrorOutput) for status in (400, 401, 403, 404, 405, 429)}
ItemWrittenOutput = _enveloped(
    "ItemWritten",
    inline_serializer(
        "ItemWrittenData",
        {
            "key": serializers.CharField(),
            "version": serializers.CharField(),
            "expiresAt": serializers.DateTimeField(allow_null=True),
        },
    ),
)
ItemOutput = _enveloped(
    "Item",
    inline_serializer(
        "ItemData",
        {
            "key": serializers.CharField(),
            "value": serializers.JSONField(help_text="Any JSON, exactly as stored"),
            "version": serializers.CharField(),
            "expiresAt": serializers.DateTimeField(allow_null=True),
        },
    ),
)
ItemDeletedOutput = _enveloped(
    "ItemDeleted", inline_serializer("ItemDeletedData", {"deleted": serializers.BooleanField()})
)
ItemListOutput = _enveloped(
    "ItemList",
    inline_serializer(
        "ItemListData",
        {
            "items": inline_serializer(
                "ItemSummary",
                {
                    "key": serializers.CharField(),
                    "version": serializers.CharField(),
                    "expiresAt": serializers.DateTimeField(allow_null=True),
                    "updatedAt": serializers.DateTimeField(),
                },
                many=True,
            ),
            "nextCursor": serializers.CharField(allow_null=True),
        },
    ),
)
ItemLimitsOutput = _enveloped("ItemLimits", serializers.JSONField())
ItemPutInput = inline_serializer(
    "ItemPut",
    {
        "value": serializers.JSONField(help_text="Any JSON"),
        "ttlSeconds": serializers.IntegerField(required=False, min_value=1, max_value=items.MAX_TTL_SECONDS),
        "expiresAt": serializers.DateTimeField(required=False, help_text="RFC 3339; excludes ttlSeconds"),
        "ifVersion": serializers.CharField(
            required=False, help_text='A version (string or number); 0 or "0": create only'
        ),
    },
)


# --- Views --------------------------------------------------------------------------------


class ItemDetailApi(ItemsApi):
    access = {
        "GET": Need(ENTRY_READ, resource=items_account),
        "PUT": Need(ENTRY_WRITE, resource=items_account),
        "DELETE": Need(ENTRY_DELETE, resource=items_account),
    }
    body_max_bytes = BODY_SLACK_FACTOR * settings.KV_ITEMS_MAX_VALUE_BYTES + BODY_SLACK_BYTES

    @property
    def body_value_max_bytes(self) -> int:
        """A body that cannot carry a value this small is refused before it is parsed (kvsite.http.jsonbody)."""
        return settings.KV_ITEMS_MAX_VALUE_BYTES

    # The body wraps the value in one more level.
    body_max_depth = MAX_DEPTH + 1

    @extend_schema(operation_id="items_get", responses={200: ItemOutput, **ERRORS})
    def get(self, request: Request, key: str) -> Response:
        account = self.account(kind=ratelimit.READ)
        item = items.item_get(account=account, key=item_key(request, key))
        return Response(
            {"key": item.key, "value": item.value, "version": item.version, "expiresAt": _time(item.expires_at)}
        )

    @extend_schema(
        operation_id="items_put",
        request=ItemPutInput,
        responses={
            200: ItemWrittenOutput,
            412: OpenApiResponse(ItemsErrorOutput),
            413: OpenApiResponse(ItemsErrorOutput),
            507: OpenApiResponse(ItemsErrorOutput),
            **ERRORS,
        },
    )
    def put(self, request: Request, key: str) -> Response:
        account = self.account(kind=ratelimit.WRITE)
        key = item_key(request, key)
        item = items.item_put(account=account, key=key, **item_put_input(request_json(request)))
        return Response({"key": item.key, "version": item.version, "expiresAt": _time(item.expires_at)})

    @extend_schema(operation_id="items_delete", responses={200: ItemDeletedOutput, **ERRORS})
    def delete(self, request: Request, key: str) -> Response:
        account = self.account(kind=ratelimit.WRITE)
        items.item_delete(account=account, key=item_key(request, key))
        return Response({"deleted": True})


class ItemListApi(ItemsApi):
    access = {"GET": Need(ENTRY_READ, resource=items_account)}

    @extend_schema(
        operation_id="items_list",
        parameters=[
            OpenApiParameter("prefix", str, description="Only keys starting with this"),
            OpenApiParameter("limit", int, description=f"Page size, 1-{items.LIST_LIMIT_MAX} (default 50)"),
            OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
        ],
        responses={200: ItemListOutput, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        account = self.account(kind=ratelimit.READ)
        if not query_is_utf8(request):
            raise InvalidArgument("the query string is not valid UTF-8: its percent-escapes must spell UTF-8 bytes")
        params = request.query_params
        limit = parse_positive_int(params.get("limit"), name="limit")
        page = items.item_list(
            account=account,
            prefix=params.get("prefix", ""),
            limit=items.LIST_LIMIT_DEFAULT if limit is None else limit,
            cursor=params.get("cursor") or None,
        )
        return Response(
            {
                "items": [
                    {
                        "key": item.key,
                        "version": item.version,
                        "expiresAt": _time(item.expires_at),
                        "updatedAt": rfc3339(item.updated_at),
                    }
                    for item in page.items
                ],
                "nextCursor": page.next_cursor,
            }
        )


class ItemLimitsApi(ItemsApi):
    access = {"GET": Need(ENTRY_READ, resource=items_account)}

    @extend_schema(operation_id="items_limits", responses={200: ItemLimitsOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        # Looking at the limits takes no token: a client that is being limited can still see why.
        account = self.account(kind=None)
        usage = items.items_usage(account=account)
        rates, tokens = {}, {}
        for kind in ratelimit.KINDS:
            limit = ratelimit.ratelimit_for(kind)
            left = ratelimit.ratelimit_peek(account=account, kind=kind).tokens
            rates[kind] = {
                "perSecond": None if limit.unlimited else _figure(limit.rate),
                "burst": None if limit.unlimited else _figure(limit.burst),
            }
            tokens[kind] = None if left is None else int(left)
        return Response(
            {
                "account": account,
                "limits": {
                    "keyBytes": MAX_KEY_BYTES,
                    "valueBytes": usage.max_value_bytes,
                    "keysPerAccount": usage.max_keys,
                    "ttlSeconds": {"min": items.MIN_TTL_SECONDS, "max": items.MAX_TTL_SECONDS},
                    "listPageSize": items.LIST_LIMIT_MAX,
                    "valueDepth": MAX_DEPTH,
                    "reads": rates[ratelimit.READ],
                    "writes": rates[ratelimit.WRITE],
                },
                "usage": {
                    "keys": usage.keys,
                    "bytes": usage.bytes,
                    "readTokens": tokens[ratelimit.READ],
                    "writeTokens": tokens[ratelimit.WRITE],
                },
            }
        )


class ItemsNotFoundApi(ItemsApi):
    """Any other path under /kv/: a 404 envelope, whoever asks and however."""

    authentication_classes: list = []
    permission_classes: list = []
    schema = None  # not an operation

    @property
    def default_response_headers(self) -> dict:
        return {}  # no Allow header: nothing is allowed at a path that does not exist

    def http_method_not_allowed(self, request: Request, *args, **kwargs):
        raise NotFound("not found")
