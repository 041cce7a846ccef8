"""The bucket & key REST API: parse, authorize, call the storage core, render."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buckets.api.serializers import (
    BucketCreateInput,
    BucketInfoOutput,
    BucketListOutput,
    EntryOutput,
    HistoryOutput,
    KeyListOutput,
    RevisionOutput,
    bucket_info,
    entry_body,
)
from buckets.core import store
from buckets.core.names import APP_PREFIX, app_bucket, new_app_bucket, public_name
from kvsite.access.audit import Action as AuditAction
from kvsite.access.audit import audit_actor_from_request, audit_refusals
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_DELETE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
)
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput, ValueTooLarge
from kvsite.http.preconditions import (
    IF_MATCH_DESCRIPTION,
    parse_bool,
    parse_if_match,
    parse_positive_int,
    parse_revision,
    parse_write_condition,
)

ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404)}


def _authorized_bucket(request: Request, name: str, permission: str) -> str:
    """Check ``permission`` on the user bucket ``name``; return its internal name."""
    internal = app_bucket(name)
    request.user.require(permission, bucket=name)
    return internal


def _etag(revision: int) -> str:
    return f'"{revision}"'


class BucketListCreateApi(APIView):
    body_max_bytes = DEFAULT_BODY_MAX_BYTES

    @extend_schema(operation_id="kv_bucket_list", responses={200: BucketListOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        request.user.require(NAMESPACE_READ)
        buckets = [
            bucket_info(bucket)
            for bucket in store.bucket_list(prefix=APP_PREFIX)
            if request.user.can_access_bucket(public_name(bucket.name))
        ]
        return Response({"buckets": buckets, "count": len(buckets)})

    @extend_schema(
        operation_id="kv_bucket_create",
        request=BucketCreateInput,
        responses={201: BucketInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        params = BucketCreateInput(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        actor = audit_actor_from_request(request)
        with audit_refusals(actor=actor, action=AuditAction.WRITE) as scope:
            scope.namespace = new_app_bucket(data["name"])
            request.user.require(NAMESPACE_WRITE, bucket=data["name"])
            bucket = store.bucket_create(
                name=scope.namespace,
                description=data["description"],
                ttl_seconds=data["ttl_seconds"],
                max_value_size=data["max_value_size"],
                max_bytes=data["max_bytes"],
                history=data["history"],
                audit=actor,
            )
        return Response(bucket_info(bucket), status=201)


class BucketDetailApi(APIView):
    @extend_schema(operation_id="kv_bucket_info", responses={200: BucketInfoOutput, **ERRORS})
    def get(self, request: Request, bucket: str) -> Response:
        internal = _authorized_bucket(request, bucket, NAMESPACE_READ)
        return Response(bucket_info(store.bucket_get(name=internal)))

    @extend_schema(operation_id="kv_bucket_delete", responses={204: None, **ERRORS})
    def delete(self, request: Request, bucket: str) -> Response:
        actor = audit_actor_from_request(request)
        with audit_refusals(actor=actor, action=AuditAction.DELETE) as scope:
            scope.namespace = app_bucket(bucket)
            internal = _authorized_bucket(request, bucket, NAMESPACE_DELETE)
            store.bucket_delete(name=internal, audit=actor)
        return Response(status=204)


class KeyListApi(APIView):
    @extend_schema(
        operation_id="kv_key_list",
        parameters=[
            OpenApiParameter("filter", str, description="NATS wildcard pattern: user.*, user.>, or an exact key"),
            OpenApiParameter("limit", int, description="Page size (1-10000); without it every key is returned"),
            OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
        ],
        responses={200: KeyListOutput, **ERRORS},
    )
    def get(self, request: Request, bucket: str) -> Response:
        internal = _authorized_bucket(request, bucket, ENTRY_READ)
        page = store.key_list(
            bucket=internal,
            pattern=request.query_params.get("filter") or None,
            limit=parse_positive_int(request.query_params.get("limit"), name="limit"),
            cursor=request.query_params.get("cursor") or None,
        )
        body = {"keys": page.keys, "count": len(page.keys)}
        if page.next_cursor:
            body["next_cursor"] = page.next_cursor
        return Response(body)


class KeyDetailApi(APIView):
    # A value is the body itself; a bucket's own max_value_size (at most this) is the store's 413.
    body_max_bytes = settings.KV_VALUE_SIZE_CEILING

    @extend_schema(
        operation_id="kv_key_get",
        parameters=[OpenApiParameter("revision", int, description="Read this kept revision instead of the latest")],
        responses={200: EntryOutput, **ERRORS},
    )
    def get(self, request: Request, bucket: str, key: str) -> Response:
        internal = _authorized_bucket(request, bucket, ENTRY_READ)
        raw_revision = request.query_params.get("revision")
        revision = parse_revision(raw_revision, what="revision") if raw_revision is not None else None
        entry = store.entry_get(bucket=internal, key=key, revision=revision)
        return Response(entry_body(entry), headers={"ETag": _etag(entry.revision)})

    @extend_schema(
        operation_id="kv_key_put",
        request={"application/octet-stream": OpenApiTypes.BINARY, "*/*": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description=IF_MATCH_DESCRIPTION),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="'*': create only"),
        ],
        responses={
            200: RevisionOutput,
            412: OpenApiResponse(ErrorOutput),
            413: OpenApiResponse(ErrorOutput),
            507: OpenApiResponse(ErrorOutput),
            **ERRORS,
        },
    )
    def put(self, request: Request, bucket: str, key: str) -> Response:
        internal = _authorized_bucket(request, bucket, ENTRY_WRITE)
        condition = parse_write_condition(request.headers)
        try:
            value = request.body
        except RequestDataTooBig:
            raise ValueTooLarge("request body is larger than any bucket allows") from None
        entry = store.entry_put(
            bucket=internal, key=key, value=value, if_absent=condition.if_absent, if_match=condition.if_match
        )
        return Response({"revision": entry.revision}, headers={"ETag": _etag(entry.revision)})

    @extend_schema(
        operation_id="kv_key_delete",
        parameters=[
            OpenApiParameter("purge", bool, description="Remove the whole history, leaving a purge marker"),
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description=IF_MATCH_DESCRIPTION),
        ],
        responses={204: None, 412: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def delete(self, request: Request, bucket: str, key: str) -> Response:
        internal = _authorized_bucket(request, bucket, ENTRY_DELETE)
        purge = parse_bool(request.query_params.get("purge"), name="purge")
        if_match = parse_if_match(request.headers.get("If-Match"))
        remove = store.entry_purge if purge else store.entry_delete
        remove(bucket=internal, key=key, if_match=if_match)
        return Response(status=204)


class KeyHistoryApi(APIView):
    @extend_schema(operation_id="kv_key_history", responses={200: HistoryOutput, **ERRORS})
    def get(self, request: Request, bucket: str, key: str) -> Response:
        internal = _authorized_bucket(request, bucket, ENTRY_READ)
        entries = [entry_body(entry) for entry in store.entry_history(bucket=internal, key=key)]
        return Response({"entries": entries, "count": len(entries)})
