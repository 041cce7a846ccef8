"""The bucket & key REST API (/api/v1/kv/buckets): parse, authorize, call the storage core, render.

The bucket API's rules (public names, permissions on them, audited bucket
changes) are ``services``; a key operation authorizes its bucket before it
parses the rest of the request, then calls the core.
"""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buckets.core import store
from buckets.kv import services as kv
from buckets.kv.inputs import (
    BucketCreateInput,
    bucket_create_input,
    key_delete_input,
    key_list_input,
    key_put_input,
    key_revision_input,
)
from buckets.kv.outputs import (
    BucketInfoOutput,
    BucketListOutput,
    EntryOutput,
    HistoryOutput,
    KeyListOutput,
    RevisionOutput,
    bucket_info,
    entry_body,
)
from kvsite.access.audit import audit_actor_from_request
from kvsite.access.permissions import ENTRY_DELETE, ENTRY_READ, ENTRY_WRITE
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput
from kvsite.http.preconditions import IF_MATCH_DESCRIPTION

ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404)}


def _etag(revision: int) -> str:
    return f'"{revision}"'


class BucketListCreateApi(APIView):
    body_max_bytes = DEFAULT_BODY_MAX_BYTES

    @extend_schema(operation_id="kv_bucket_list", responses={200: BucketListOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        buckets = [bucket_info(bucket) for bucket in kv.bucket_list(principal=request.user)]
        return Response({"buckets": buckets, "count": len(buckets)})

    @extend_schema(
        operation_id="kv_bucket_create",
        request=BucketCreateInput,
        responses={201: BucketInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        params = bucket_create_input(request.data)
        bucket = kv.bucket_create(actor=audit_actor_from_request(request), **params)
        return Response(bucket_info(bucket), status=201)


class BucketDetailApi(APIView):
    @extend_schema(operation_id="kv_bucket_info", responses={200: BucketInfoOutput, **ERRORS})
    def get(self, request: Request, bucket: str) -> Response:
        return Response(bucket_info(kv.bucket_get(principal=request.user, name=bucket)))

    @extend_schema(operation_id="kv_bucket_delete", responses={204: None, **ERRORS})
    def delete(self, request: Request, bucket: str) -> Response:
        kv.bucket_delete(actor=audit_actor_from_request(request), name=bucket)
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
        internal = kv.bucket_authorize(principal=request.user, name=bucket, permission=ENTRY_READ)
        page = store.key_list(bucket=internal, **key_list_input(request.query_params))
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
        internal = kv.bucket_authorize(principal=request.user, name=bucket, permission=ENTRY_READ)
        entry = store.entry_get(bucket=internal, key=key, revision=key_revision_input(request.query_params))
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
        internal = kv.bucket_authorize(principal=request.user, name=bucket, permission=ENTRY_WRITE)
        entry = store.entry_put(bucket=internal, key=key, **key_put_input(request))
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
        internal = kv.bucket_authorize(principal=request.user, name=bucket, permission=ENTRY_DELETE)
        purge, if_match = key_delete_input(request)
        remove = store.entry_purge if purge else store.entry_delete
        remove(bucket=internal, key=key, if_match=if_match)
        return Response(status=204)


class KeyHistoryApi(APIView):
    @extend_schema(operation_id="kv_key_history", responses={200: HistoryOutput, **ERRORS})
    def get(self, request: Request, bucket: str, key: str) -> Response:
        internal = kv.bucket_authorize(principal=request.user, name=bucket, permission=ENTRY_READ)
        entries = [entry_body(entry) for entry in store.entry_history(bucket=internal, key=key)]
        return Response({"entries": entries, "count": len(entries)})
