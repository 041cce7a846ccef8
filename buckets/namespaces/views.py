"""The KV Service namespaces API: parse (``inputs``), call the dialect's services, render.

camelCase JSON throughout. Bodies are parsed exactly and rendered exactly, so a
NUMBER comes back as the digits it was sent as. Each view declares, per method, the
permission it needs on ``namespace:<applicationId>/<name>`` (``access``), decided before
the handler reads the body; a refusal there is audited as the operation's own would be
(``NamespaceApi.access_refused``). A view reads a body's shape (an object of known
fields); the checks of the values and audit happen in the services, which receive the
resource decided on; errors come from the project's one handler. Each view declares the
largest body it takes (``body_max_bytes``). A response that carries a secret value says
``Cache-Control: no-store``.
"""

import uuid
from collections.abc import Iterable, Mapping
from typing import ClassVar

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.core.events import rfc3339
from buckets.core.exceptions import DomainError
from buckets.core.keys import MAX_KEY_BYTES
from buckets.core.names import public_name
from buckets.namespaces import bulk, entries, inputs, services, versions
from buckets.namespaces.access import NAMESPACES, namespace_named
from buckets.namespaces.entries import NamespaceEntry, Shown, WithheldEntry
from buckets.namespaces.records import VALUE_TYPES
from buckets.namespaces.services import ShownNamespace
from buckets.namespaces.versions import EntryVersion
from kvsite.access.audit import Action, audit_actor_from_request, audit_refused
from kvsite.access.guard import Need, Resource
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import (
    ENTRY_DELETE,
    ENTRY_READ,
    ENTRY_WRITE,
    NAMESPACE_DELETE,
    NAMESPACE_READ,
    NAMESPACE_WRITE,
    SECRET_ROTATE,
)
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput
from kvsite.http.jsonbody import ExactJsonBodyParser, JsonBodyParser, request_json
from kvsite.http.negotiation import ExactJsonRenderer
from kvsite.http.preconditions import parse_positive_int

ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404, 409, 413)}
# A value is at most a bucket's value size; the body gets room for escaping and framing.
ENTRY_BODY_BYTES = 4 * settings.KV_DEFAULT_MAX_VALUE_SIZE + 64 * 1024
SMALL_BODY_BYTES = DEFAULT_BODY_MAX_BYTES
# A full list of the longest keys (a key's characters escape to at most 2 bytes, '/' as \/), quoted, and framing.
BULK_KEYS_BODY_BYTES = inputs.MAX_BULK_ITEMS * (2 * MAX_KEY_BYTES + 8) + 4 * 1024
# As many entries as fit the largest value a bucket may hold.
BULK_SET_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
BULK_SET_MAX_VALUES = 100_000


class NamespaceApi(GuardedApi):
    """Base of these views: exact JSON in and out; refusals of the declared access on the audit log."""

    renderer_classes = [ExactJsonRenderer]
    parser_classes = [ExactJsonBodyParser]
    body_max_bytes = SMALL_BODY_BYTES
    # The audit action of each method's operation, which a refusal before the handler is recorded as.
    audit_actions: ClassVar[Mapping[str, str]] = {
        "GET": Action.READ,
        "PUT": Action.WRITE,
        "POST": Action.WRITE,
        "DELETE": Action.DELETE,
    }

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        namespace_id = self.kwargs.get("ns_id")
        audit_refused(
            request=request,
            action=self.audit_actions.get(str(request.method), Action.READ),
            error=error,
            # The namespace's bucket, as its operations' rows name it, once the call named one the caller may not touch.
            namespace=services.namespace_audit_name(namespace_id) if resource and namespace_id else "",
            key_path=str(self.kwargs.get("key_path", "")),
            detail=f"namespace {namespace_id}" if namespace_id else "",
        )


class BulkKeysApi(NamespaceApi):
    """Base of bulk get and delete: a list of key paths.

    Read with plain numbers: a number has no place in these bodies, and building
    an exact one per number would make a body of a million of them cost seconds
    to refuse.
    """

    parser_classes = [JsonBodyParser]
    body_max_bytes = BULK_KEYS_BODY_BYTES
    body_list_limits = {"keys": inputs.MAX_BULK_ITEMS}


def _time(moment) -> str | None:
    return rfc3339(moment) if moment is not None else None


# --- Output -------------------------------------------------------------------------------


def namespace_body(shown: ShownNamespace) -> dict:
    """A namespace; a secret one's ``description`` only when the service showed it."""
    namespace = shown.namespace
    body: dict = {"id": str(namespace.id), "name": namespace.name}
    if shown.description_shown:
        body["description"] = namespace.description
    return body | {
        "applicationId": namespace.application_id,
        "isSecretNamespace": namespace.is_secret,
        "defaultTtlSeconds": namespace.default_ttl_seconds,
        # The bucket API's name of a plain namespace; secret ones have none there.
        "bucket": None if namespace.is_secret else public_name(namespace.bucket.name),
        "createdAt": _time(namespace.created_at),
        "updatedAt": _time(namespace.updated_at),
    }


def entry_body(entry: Shown) -> dict:
    """One entry; ``value`` only when the service showed it, the key path alone when it withheld a secret's."""
    if isinstance(entry, WithheldEntry):
        return {"keyPath": entry.key_path}
    body = {
        "id": entry.id,
        "keyPath": entry.key_path,
        "valueType": entry.value_type,
        "version": entry.version,
        "expiresAt": _time(entry.expires_at),
        "metadata": entry.metadata,
        "createdAt": _time(entry.created_at),
        "updatedAt": _time(entry.updated_at),
        "changedBy": entry.changed_by,
        "reason": entry.reason,
    }
    if entry.value_shown:
        body["value"] = entry.value
    return body


def version_body(version: EntryVersion) -> dict:
    body = {
        "version": version.version,
        "valueType": version.value_type,
        "changedBy": version.changed_by,
        "reason": version.reason,
        "createdAt": _time(version.created_at),
    }
    if version.value_shown:
        body["value"] = version.value
    return body


def entries_response(body: dict, shown: Iterable[Shown | EntryVersion], *, status: int = 200) -> Response:
    """``body``, never to be stored by a cache when it carries a secret value."""
    secret = any(
        isinstance(item, (NamespaceEntry, EntryVersion)) and item.secret and item.value_shown for item in shown
    )
    return Response(body, status=status, headers={"Cache-Control": "no-store"} if secret else None)


WITHHELD = "Absent from a secret namespace's entries for a caller without kv-secret:read (only keyPath is shown)."

NamespaceOutput = inline_serializer(
    "Namespace",
    {
        "id": serializers.UUIDField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(
            required=False, help_text="Absent from a secret namespace for a caller without kv-secret:read."
        ),
        "applicationId": serializers.CharField(),
        "isSecretNamespace": serializers.BooleanField(),
        "defaultTtlSeconds": serializers.IntegerField(allow_null=True),
        "bucket": serializers.CharField(allow_null=True),
        "createdAt": serializers.DateTimeField(),
        "updatedAt": serializers.DateTimeField(),
    },
)
NamespaceInput = inline_serializer(
    "NamespaceInput",
    {
        "name": serializers.CharField(),
        "description": serializers.CharField(required=False),
        "applicationId": serializers.CharField(),
        "isSecretNamespace": serializers.BooleanField(required=False),
        "defaultTtlSeconds": serializers.IntegerField(required=False, allow_null=True),
    },
)
EntryOutput = inline_serializer(
    "NamespaceEntry",
    {
        "id": serializers.CharField(required=False, help_text=WITHHELD),
        "keyPath": serializers.CharField(),
        "value": serializers.JSONField(
            required=False, help_text="Absent from listings of secret namespaces, and where kv-secret:read is missing."
        ),
        "valueType": serializers.ChoiceField(choices=VALUE_TYPES, required=False, help_text=WITHHELD),
        "version": serializers.IntegerField(required=False, help_text=WITHHELD),
        "expiresAt": serializers.DateTimeField(allow_null=True, required=False, help_text=WITHHELD),
        "metadata": serializers.DictField(required=False, help_text=WITHHELD),
        "createdAt": serializers.DateTimeField(required=False, help_text=WITHHELD),
        "updatedAt": serializers.DateTimeField(required=False, help_text=WITHHELD),
        "changedBy": serializers.CharField(required=False, help_text=WITHHELD),
        "reason": serializers.CharField(required=False, help_text=WITHHELD),
    },
)
EntryInput = inline_serializer(
    "NamespaceEntryInput",
    {
        "value": serializers.JSONField(),
        "valueType": serializers.ChoiceField(choices=VALUE_TYPES),
        "ttlSeconds": serializers.IntegerField(required=False, allow_null=True),
        "metadata": serializers.DictField(required=False),
        "version": serializers.IntegerField(required=False),
    },
)
EntryPageOutput = inline_serializer(
    "NamespaceEntryPage", {"entries": EntryOutput.__class__(many=True), "nextCursor": serializers.CharField()}
)
KeysInput = inline_serializer("NamespaceKeys", {"keys": serializers.ListField(child=serializers.CharField())})
BulkGetOutput = inline_serializer(
    "NamespaceBulkGet",
    {"entries": EntryOutput.__class__(many=True), "missing": serializers.ListField(child=serializers.CharField())},
)
BulkSetInput = inline_serializer(
    "NamespaceBulkSet",
    {
        "entries": inline_serializer(
            "NamespaceBulkSetItem",
            {"keyPath": serializers.CharField(), **EntryInput.fields},
            many=True,
        )
    },
)
BulkSetOutput = inline_serializer("NamespaceBulkSetResult", {"entries": EntryOutput.__class__(many=True)})
BulkDeleteOutput = inline_serializer("NamespaceBulkDeleteResult", {"deleted": serializers.IntegerField()})
VersionsOutput = inline_serializer(
    "NamespaceEntryVersions",
    {
        "keyPath": serializers.CharField(),
        "versions": inline_serializer(
            "NamespaceEntryVersion",
            {
                "version": serializers.IntegerField(),
                "valueType": serializers.CharField(),
                "value": serializers.JSONField(required=False),
                "changedBy": serializers.CharField(),
                "reason": serializers.CharField(),
                "createdAt": serializers.DateTimeField(),
            },
            many=True,
            required=False,
            help_text="Absent for a secret namespace's entry and a caller without kv-secret:read.",
        ),
    },
)
RotateInput = inline_serializer("NamespaceRotate", {"value": serializers.JSONField()})
RollbackInput = inline_serializer("NamespaceRollback", {"version": serializers.IntegerField(min_value=1)})


# --- Namespaces ----------------------------------------------------------------------------


class NamespaceListCreateApi(NamespaceApi):
    # The body names the namespace a POST creates: the service decides on it once it is read.
    access = {"GET": Need(NAMESPACE_READ, resource=NAMESPACES), "POST": Need(NAMESPACE_WRITE, resource=NAMESPACES)}

    @extend_schema(
        operation_id="namespace_list",
        parameters=[OpenApiParameter("applicationId", str, description="Only this application's namespaces")],
        responses={200: inline_serializer("NamespaceList", {"namespaces": NamespaceOutput.__class__(many=True)})},
    )
    def get(self, request: Request) -> Response:
        actor = audit_actor_from_request(request)
        rows = services.namespace_list(application_id=request.query_params.get("applicationId") or None, actor=actor)
        return Response(
            {"namespaces": [namespace_body(services.namespace_shown(namespace=row, actor=actor)) for row in rows]}
        )

    @extend_schema(operation_id="namespace_create", request=NamespaceInput, responses={201: NamespaceOutput, **ERRORS})
    def post(self, request: Request) -> Response:
        actor = audit_actor_from_request(request)
        namespace = services.namespace_create(**inputs.namespace_create_input(request_json(request)), actor=actor)
        return Response(namespace_body(services.namespace_shown(namespace=namespace, actor=actor)), status=201)


class NamespaceDetailApi(NamespaceApi):
    access = {
        "GET": Need(NAMESPACE_READ, resource=namespace_named),
        "PUT": Need(NAMESPACE_WRITE, resource=namespace_named),
        "DELETE": Need(NAMESPACE_DELETE, resource=namespace_named),
    }

    @extend_schema(operation_id="namespace_get", responses={200: NamespaceOutput, **ERRORS})
    def get(self, request: Request, ns_id: uuid.UUID) -> Response:
        actor = audit_actor_from_request(request)
        namespace = services.namespace_get(namespace_id=ns_id, decided=self.resource, actor=actor)
        return Response(namespace_body(services.namespace_shown(namespace=namespace, actor=actor)))

    @extend_schema(operation_id="namespace_update", request=NamespaceInput, responses={200: NamespaceOutput, **ERRORS})
    def put(self, request: Request, ns_id: uuid.UUID) -> Response:
        changes = inputs.namespace_update_input(request_json(request))
        actor = audit_actor_from_request(request)
        namespace = services.namespace_update(namespace_id=ns_id, decided=self.resource, actor=actor, **changes)
        return Response(namespace_body(services.namespace_shown(namespace=namespace, actor=actor)))

    @extend_schema(operation_id="namespace_delete", responses={204: None, **ERRORS})
    def delete(self, request: Request, ns_id: uuid.UUID) -> Response:
        services.namespace_delete(namespace_id=ns_id, decided=self.resource, actor=audit_actor_from_request(request))
        return Response(status=204)


# --- Entries -------------------------------------------------------------------------------


class EntryListApi(NamespaceApi):
    access = {"GET": Need(NAMESPACE_READ, resource=namespace_named)}

    @extend_schema(
        operation_id="namespace_entry_list",
        parameters=[
            OpenApiParameter("prefix", str, description="Whole path segments: config/database"),
            OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
            OpenApiParameter("limit", int, description=f"1-{inputs.MAX_PAGE}, default {entries.DEFAULT_PAGE}"),
        ],
        responses={200: EntryPageOutput, **ERRORS},
    )
    def get(self, request: Request, ns_id: uuid.UUID) -> Response:
        limit = parse_positive_int(request.query_params.get("limit"), name="limit")
        page = entries.namespace_entry_list(
            namespace_id=ns_id,
            prefix=request.query_params.get("prefix") or None,
            cursor=request.query_params.get("cursor") or None,
            limit=entries.DEFAULT_PAGE if limit is None else limit,
            decided=self.resource,
            actor=audit_actor_from_request(request),
        )
        body = {"entries": [entry_body(entry) for entry in page.entries], "nextCursor": page.next_cursor}
        return entries_response(body, page.entries)


class EntryDetailApi(NamespaceApi):
    access = {
        "GET": Need(ENTRY_READ, resource=namespace_named),
        "PUT": Need(ENTRY_WRITE, resource=namespace_named),
        "DELETE": Need(ENTRY_DELETE, resource=namespace_named),
    }
    body_max_bytes = ENTRY_BODY_BYTES
    # A namespace's bucket takes records of at most this (the default value size): a body that
    # cannot carry one that small is refused before it is parsed (kvsite.http.jsonbody).
    body_value_max_bytes = settings.KV_DEFAULT_MAX_VALUE_SIZE

    @extend_schema(operation_id="namespace_entry_get", responses={200: EntryOutput, **ERRORS})
    def get(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        entry = entries.namespace_entry_get(
            namespace_id=ns_id, key_path=key_path, decided=self.resource, actor=audit_actor_from_request(request)
        )
        return entries_response(entry_body(entry), [entry])

    @extend_schema(operation_id="namespace_entry_put", request=EntryInput, responses={200: EntryOutput, **ERRORS})
    def put(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        entry = entries.namespace_entry_put(
            namespace_id=ns_id,
            key_path=key_path,
            **inputs.entry_put_input(request_json(request)),
            decided=self.resource,
            actor=audit_actor_from_request(request),
        )
        return entries_response(entry_body(entry), [entry])

    @extend_schema(operation_id="namespace_entry_delete", responses={204: None, **ERRORS})
    def delete(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        entries.namespace_entry_delete(
            namespace_id=ns_id, key_path=key_path, decided=self.resource, actor=audit_actor_from_request(request)
        )
        return Response(status=204)


class EntryRotateApi(NamespaceApi):
    access = {"POST": Need(SECRET_ROTATE, resource=namespace_named)}
    audit_actions = {"POST": Action.ROTATE}
    body_max_bytes = ENTRY_BODY_BYTES
    # A namespace's bucket takes records of at most this (the default value size): a body that
    # cannot carry one that small is refused before it is parsed (kvsite.http.jsonbody).
    body_value_max_bytes = settings.KV_DEFAULT_MAX_VALUE_SIZE

    @extend_schema(operation_id="namespace_entry_rotate", request=RotateInput, responses={200: EntryOutput, **ERRORS})
    def post(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        value = inputs.entry_rotate_input(request_json(request))
        entry = versions.namespace_entry_rotate(
            namespace_id=ns_id,
            key_path=key_path,
            value=value,
            decided=self.resource,
            actor=audit_actor_from_request(request),
        )
        return entries_response(entry_body(entry), [entry])


class EntryVersionsApi(NamespaceApi):
    access = {"GET": Need(ENTRY_READ, resource=namespace_named)}

    @extend_schema(operation_id="namespace_entry_versions", responses={200: VersionsOutput, **ERRORS})
    def get(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        kept = versions.namespace_entry_versions(
            namespace_id=ns_id, key_path=key_path, decided=self.resource, actor=audit_actor_from_request(request)
        )
        if kept is None:
            return Response({"keyPath": key_path})
        return entries_response({"keyPath": key_path, "versions": [version_body(version) for version in kept]}, kept)


class EntryRollbackApi(NamespaceApi):
    # Either: a secret namespace's rollback needs kv-secret:rotate, a plain one's kv-entry:write (the service decides).
    access = {"POST": Need(SECRET_ROTATE, ENTRY_WRITE, resource=namespace_named)}
    audit_actions = {"POST": Action.ROLLBACK}

    @extend_schema(
        operation_id="namespace_entry_rollback", request=RollbackInput, responses={200: EntryOutput, **ERRORS}
    )
    def post(self, request: Request, ns_id: uuid.UUID, key_path: str) -> Response:
        version = inputs.entry_rollback_input(request_json(request))
        entry = versions.namespace_entry_rollback(
            namespace_id=ns_id,
            key_path=key_path,
            version=version,
            decided=self.resource,
            actor=audit_actor_from_request(request),
        )
        return entries_response(entry_body(entry), [entry])


# --- Bulk ----------------------------------------------------------------------------------


class BulkGetApi(BulkKeysApi):
    access = {"POST": Need(ENTRY_READ, resource=namespace_named)}
    audit_actions = {"POST": Action.READ}

    @extend_schema(operation_id="namespace_bulk_get", request=KeysInput, responses={200: BulkGetOutput, **ERRORS})
    def post(self, request: Request, ns_id: uuid.UUID) -> Response:
        keys = inputs.bulk_input(request_json(request), name="keys")
        result = bulk.namespace_entries_bulk_get(
            namespace_id=ns_id, keys=keys, decided=self.resource, actor=audit_actor_from_request(request)
        )
        body = {"entries": [entry_body(entry) for entry in result.entries], "missing": result.missing}
        return entries_response(body, result.entries)


class BulkSetApi(NamespaceApi):
    access = {"POST": Need(ENTRY_WRITE, resource=namespace_named)}
    body_max_bytes = BULK_SET_BODY_BYTES
    body_list_limits = {"entries": inputs.MAX_BULK_ITEMS}
    # Each entry becomes a record in the namespace's bucket (at most the default value size).
    body_item_max_bytes = settings.KV_DEFAULT_MAX_VALUE_SIZE
    # Numbers are parsed exactly (about 1 us each): 8 MiB could hold four million of them, seconds
    # of CPU to parse or even to step over; a thousand entries of 100 values each is room enough.
    body_max_values = BULK_SET_MAX_VALUES

    @extend_schema(operation_id="namespace_bulk_set", request=BulkSetInput, responses={200: BulkSetOutput, **ERRORS})
    def post(self, request: Request, ns_id: uuid.UUID) -> Response:
        items = inputs.bulk_input(request_json(request), name="entries")
        written = bulk.namespace_entries_bulk_set(
            namespace_id=ns_id, entries=items, decided=self.resource, actor=audit_actor_from_request(request)
        )
        return entries_response({"entries": [entry_body(entry) for entry in written]}, written)


class BulkDeleteApi(BulkKeysApi):
    access = {"POST": Need(ENTRY_DELETE, resource=namespace_named)}
    audit_actions = {"POST": Action.DELETE}

    @extend_schema(operation_id="namespace_bulk_delete", request=KeysInput, responses={200: BulkDeleteOutput, **ERRORS})
    def post(self, request: Request, ns_id: uuid.UUID) -> Response:
        keys = inputs.bulk_input(request_json(request), name="keys")
        deleted = bulk.namespace_entries_bulk_delete(
            namespace_id=ns_id, keys=keys, decided=self.resource, actor=audit_actor_from_request(request)
        )
        return Response({"deleted": deleted})
