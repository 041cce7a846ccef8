"""The bucket & key REST API (/api/v1/kv/buckets): declare, parse, call the storage core, render.

Each view declares, per method, the permission it needs and the resource it touches
(``buckets.kv.access``: the bucket, or the namespace that owns it); ``DeclaredAccess``
decides before the handler runs. The bucket API's rules (public names, buckets that
namespaces own, audited bucket changes) are ``services``.
"""

from collections.abc import Mapping
from typing import ClassVar

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.core import store
from buckets.core.exceptions import DomainError
from buckets.kv import services as kv
from buckets.kv.access import bucket_named
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
from kvsite.access.audit import Action as AuditAction
from kvsite.access.audit import audit_actor_from_request, audit_refused
from kvsite.access.authentication import request_principal
from kvsite.access.guard import BUCKET, Need, Resource, decide, whole
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_DELETE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
)
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput
from kvsite.http.preconditions import IF_MATCH_DESCRIPTION

ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404)}


def _etag(revision: int) -> str:
    return f'"{revision}"'


class BucketChangeApi(GuardedApi):
    """Base of the views that create or delete buckets: every refusal is on record, the access decision's too."""

    # The methods whose refusals are audited, and as what.
    audited: ClassVar[Mapping[str, str]] = {}

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        action = self.audited.get(str(request.method))
        if action is None:
            return
        # A create's name is in the body, unread until access is decided: that refusal names no bucket.
        audit_refused(
            request=request,
            action=action,
            error=error,
            namespace=kv.bucket_audit_name(str(self.kwargs.get("bucket", ""))),
        )


class BucketListCreateApi(BucketChangeApi):
    # The name of a new bucket is in the body: the route declares the kind, and post decides
    # on the bucket once the body is parsed. A listing shows the buckets the scopes reach.
    access = {
        "GET": Need(NAMESPACE_READ, resource=whole(BUCKET)),
        "POST": Need(NAMESPACE_WRITE, resource=whole(BUCKET)),
    }
    audited = {"POST": AuditAction.WRITE}
    body_max_bytes = DEFAULT_BODY_MAX_BYTES

    @extend_schema(operation_id="kv_bucket_list", responses={200: BucketListOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        buckets = [bucket_info(bucket) for bucket in kv.bucket_list(principal=request_principal(request))]
        return Response({"buckets": buckets, "count": len(buckets)})

    @extend_schema(
        operation_id="kv_bucket_create",
        request=BucketCreateInput,
        responses={201: BucketInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        params = bucket_create_input(request.data)
        actor = audit_actor_from_request(request)
        resource = Resource(BUCKET, params["name"])
        with kv.bucket_refusals(actor=actor, action=AuditAction.WRITE, name=params["name"]):
            decide(request_principal(request), self.access["POST"].permissions, resource)
        self.resource = resource
        bucket = kv.bucket_create(actor=actor, **params)
        return Response(bucket_info(bucket), status=201)


class BucketDetailApi(BucketChangeApi):
    access = {
        "GET": Need(NAMESPACE_READ, resource=bucket_named),
        "DELETE": Need(NAMESPACE_DELETE, resource=bucket_named),
    }
    audited = {"DELETE": AuditAction.DELETE}

    @extend_schema(operation_id="kv_bucket_info", responses={200: BucketInfoOutput, **ERRORS})
    def get(self, request: Request, bucket: str) -> Response:
        return Response(bucket_info(kv.bucket_get(name=bucket)))

    @extend_schema(operation_id="kv_bucket_delete", responses={204: None, 409: OpenApiResponse(ErrorOutput), **ERRORS})
    def delete(self, request: Request, bucket: str) -> Response:
        kv.bucket_delete(actor=audit_actor_from_request(request), name=bucket, resource=self.resource)
        return Response(status=204)


class KeyListApi(GuardedApi):
    access = {"GET": Need(ENTRY_READ, resource=bucket_named)}

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
        page = store.key_list(bucket=kv.bucket_for_reads(name=bucket), **key_list_input(request.query_params))
        body = {"keys": page.keys, "count": len(page.keys)}
        if page.next_cursor:
            body["next_cursor"] = page.next_cursor
        return Response(body)


class KeyDetailApi(GuardedApi):
    access = {
        "GET": Need(ENTRY_READ, resource=bucket_named),
        "PUT": Need(ENTRY_WRITE, resource=bucket_named),
        "DELETE": Need(ENTRY_DELETE, resource=bucket_named),
    }
    # A value is the body itself; a bucket's own max_value_size (at most this) is the store's 413.
    body_max_bytes = settings.KV_VALUE_SIZE_CEILING

    @extend_schema(
        operation_id="kv_key_get",
        parameters=[OpenApiParameter("revision", int, description="Read this kept revision instead of the latest")],
        responses={200: EntryOutput, **ERRORS},
    )
    def get(self, request: Request, bucket: str, key: str) -> Response:
        internal = kv.bucket_for_reads(name=bucket)
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
            409: OpenApiResponse(ErrorOutput),
            412: OpenApiResponse(ErrorOutput),
            413: OpenApiResponse(ErrorOutput),
            507: OpenApiResponse(ErrorOutput),
            **ERRORS,
        },
    )
    def put(self, request: Request, bucket: str, key: str) -> Response:
        internal = kv.bucket_for_writes(name=bucket, resource=self.resource)
        entry = store.entry_put(bucket=internal, key=key, **key_put_input(request))
        return Response({"revision": entry.revision}, headers={"ETag": _etag(entry.revision)})

    @extend_schema(
        operation_id="kv_key_delete",
        parameters=[
            OpenApiParameter("purge", bool, description="Remove the whole history, leaving a purge marker"),
            OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description=IF_MATCH_DESCRIPTION),
        ],
        responses={204: None, 409: OpenApiResponse(ErrorOutput), 412: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def delete(self, request: Request, bucket: str, key: str) -> Response:
        internal = kv.bucket_for_writes(name=bucket, resource=self.resource)
        purge, if_match = key_delete_input(request)
        remove = store.entry_purge if purge else store.entry_delete
        remove(bucket=internal, key=key, if_match=if_match)
        return Response(status=204)


class KeyHistoryApi(GuardedApi):
    access = {"GET": Need(ENTRY_READ, resource=bucket_named)}

    @extend_schema(operation_id="kv_key_history", responses={200: HistoryOutput, **ERRORS})
    def get(self, request: Request, bucket: str, key: str) -> Response:
        history = store.entry_history(bucket=kv.bucket_for_reads(name=bucket), key=key)
        entries = [entry_body(entry) for entry in history]
        return Response({"entries": entries, "count": len(entries)})
