"""The Ironflow config API: JSON documents per environment, with revisions.

Every route is declared on ``config:<environment>`` (``inputs.config_resource``): reads need
``config:read``, changes ``config:write``, and ``DeclaredAccess`` decides before a handler runs.
Handlers act on the environment that was decided on (``self.resource``), never on a second reading
of the request.
"""

from collections.abc import Mapping
from typing import ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.configs import services as configs
from buckets.configs.inputs import (
    ENVIRONMENT_HEADER,
    ENVIRONMENT_QUERY,
    config_resource,
    environment_tried,
    rollback_revision,
)
from buckets.configs.services import ConfigDocument
from buckets.core.events import rfc3339
from buckets.core.exceptions import DomainError
from kvsite.access.audit import Action, audit_actor_from_request, audit_refused
from kvsite.access.guard import Need, Resource
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import CONFIG_READ, CONFIG_WRITE
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput
from kvsite.http.jsonbody import request_json
from kvsite.http.preconditions import IF_MATCH_DESCRIPTION, parse_if_match, parse_write_condition

ENVIRONMENT = OpenApiParameter(
    ENVIRONMENT_HEADER, str, OpenApiParameter.HEADER, description="Environment (default: 'default')"
)
ENVIRONMENT_PARAMETER = OpenApiParameter(
    ENVIRONMENT_QUERY, str, description=f"Environment, instead of {ENVIRONMENT_HEADER} (both: they must agree)"
)
IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description=IF_MATCH_DESCRIPTION)
ENVIRONMENTS = [ENVIRONMENT, ENVIRONMENT_PARAMETER]
ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404, 412, 413)}
# Room for the JSON framing around a maximal document.
MAX_BODY_BYTES = configs.MAX_DOCUMENT_BYTES + 1024
# {"revision": n} needs far less, but a cap below the default would make every route's
# body between the two pay the guard's route lookup (kvsite.http.bodies.smallest_body_cap).
ROLLBACK_BODY_BYTES = DEFAULT_BODY_MAX_BYTES

ConfigListOutput = inline_serializer(
    "ConfigList",
    {
        "configs": inline_serializer(
            "ConfigSummary",
            {
                "name": serializers.CharField(),
                "revision": serializers.IntegerField(),
                "updatedAt": serializers.DateTimeField(),
            },
            many=True,
        )
    },
)
ConfigOutput = inline_serializer(
    "ConfigDocument",
    {
        "name": serializers.CharField(),
        "data": serializers.DictField(),
        "revision": serializers.IntegerField(),
        "updatedAt": serializers.DateTimeField(),
    },
)
ConfigRevisionOutput = inline_serializer(
    "ConfigRevision", {"name": serializers.CharField(), "revision": serializers.IntegerField()}
)
ConfigHistoryOutput = inline_serializer(
    "ConfigHistory",
    {
        "name": serializers.CharField(),
        "history": inline_serializer(
            "ConfigHistoryEntry",
            {
                "revision": serializers.IntegerField(),
                "data": serializers.DictField(allow_null=True),
                "operation": serializers.CharField(),
                "updatedAt": serializers.DateTimeField(),
            },
            many=True,
        ),
    },
)
RollbackInput = inline_serializer("ConfigRollback", {"revision": serializers.IntegerField(min_value=1)})

READ = Need(CONFIG_READ, resource=config_resource)
WRITE = Need(CONFIG_WRITE, resource=config_resource)


def saved(document: ConfigDocument) -> Response:
    return Response({"name": document.name, "revision": document.revision}, headers={"ETag": f'"{document.revision}"'})


class ConfigApi(GuardedApi):
    """Base of the config views: declared on ``config:<environment>``; a refused change is audited.

    The services record each change with its failures; a refusal by the declaration comes before
    the handler, so it is recorded here, named as the change would have been.
    """

    # The audit action of each method that changes a document.
    changes: ClassVar[Mapping[str, str]] = {}

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        action = self.changes.get(str(request.method))
        if action is None:
            return  # reads are not on the audit log, refused or not
        audit_refused(
            request=request,
            action=action,
            error=error,
            # The environment tried, as the change would have named it, even when refused before it was resolved.
            namespace=configs.config_audit_name(resource.name if resource else environment_tried(request)),
            key_path=str(self.kwargs.get("name", "")),
        )


class ConfigListApi(ConfigApi):
    access = {"GET": READ}

    @extend_schema(operation_id="config_list", parameters=ENVIRONMENTS, responses={200: ConfigListOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        """The environment's documents (name, revision, last update), by name. Needs config:read on config:<env>."""
        documents = configs.config_list(environment=self.resource.name)
        return Response(
            {
                "configs": [
                    {"name": doc.name, "revision": doc.revision, "updatedAt": rfc3339(doc.updated_at)}
                    for doc in documents
                ]
            }
        )


class ConfigDetailApi(ConfigApi):
    access = {"GET": READ, "POST": WRITE, "PATCH": WRITE, "DELETE": WRITE}
    changes = {"POST": Action.WRITE, "PATCH": Action.WRITE, "DELETE": Action.DELETE}
    body_max_bytes = MAX_BODY_BYTES

    @extend_schema(operation_id="config_get", parameters=ENVIRONMENTS, responses={200: ConfigOutput, **ERRORS})
    def get(self, request: Request, name: str) -> Response:
        """One document: its data and revision (also the ETag). Needs config:read on config:<env>."""
        doc = configs.config_get(environment=self.resource.name, name=name)
        return Response(
            {"name": doc.name, "data": doc.data, "revision": doc.revision, "updatedAt": rfc3339(doc.updated_at)},
            headers={"ETag": f'"{doc.revision}"'},
        )

    @extend_schema(
        operation_id="config_set",
        request={"application/json": {"type": "object"}},
        parameters=[
            *ENVIRONMENTS,
            IF_MATCH,
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="'*': create only"),
        ],
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        """Replace the whole document, or create it (If-None-Match: * creates only). Needs config:write on config:<env>.

        If-Match replaces only the revision it names.
        """
        condition = parse_write_condition(request.headers)
        data = request_json(request)
        document = configs.config_set(
            environment=self.resource.name,
            name=name,
            data=data,
            if_absent=condition.if_absent,
            if_match=condition.if_match,
            actor=audit_actor_from_request(request),
        )
        return saved(document)

    @extend_schema(
        operation_id="config_patch",
        request={"application/merge-patch+json": {"type": "object"}, "application/json": {"type": "object"}},
        parameters=[*ENVIRONMENTS, IF_MATCH],
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        """Apply an RFC 7396 merge patch to the document. Needs config:write on config:<env>."""
        if_match = parse_if_match(request.headers.get("If-Match"))
        patch = request_json(request, what="merge patch")
        document = configs.config_patch(
            environment=self.resource.name,
            name=name,
            patch=patch,
            if_match=if_match,
            actor=audit_actor_from_request(request),
        )
        return saved(document)

    @extend_schema(operation_id="config_delete", parameters=[*ENVIRONMENTS, IF_MATCH], responses={204: None, **ERRORS})
    def delete(self, request: Request, name: str) -> Response:
        """Delete the document; its history stays. Needs config:write on config:<env>."""
        if_match = parse_if_match(request.headers.get("If-Match"))
        configs.config_delete(
            environment=self.resource.name, name=name, if_match=if_match, actor=audit_actor_from_request(request)
        )
        return Response(status=204)


class ConfigHistoryApi(ConfigApi):
    access = {"GET": READ}

    @extend_schema(
        operation_id="config_history", parameters=ENVIRONMENTS, responses={200: ConfigHistoryOutput, **ERRORS}
    )
    def get(self, request: Request, name: str) -> Response:
        """The document's kept revisions, newest first (data null for a deletion). Needs config:read on config:<env>."""
        history = configs.config_history(environment=self.resource.name, name=name)
        return Response(
            {
                "name": name,
                "history": [
                    {
                        "revision": doc.revision,
                        "data": doc.data,
                        "operation": doc.operation,
                        "updatedAt": rfc3339(doc.updated_at),
                    }
                    for doc in history
                ],
            }
        )


class ConfigRollbackApi(ConfigApi):
    access = {"POST": WRITE}
    changes = {"POST": Action.ROLLBACK}
    body_max_bytes = ROLLBACK_BODY_BYTES

    @extend_schema(
        operation_id="config_rollback",
        parameters=ENVIRONMENTS,
        request=RollbackInput,
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        """A new revision holding the data of a kept one. Needs config:write on config:<env>."""
        revision = rollback_revision(request_json(request))
        document = configs.config_rollback(
            environment=self.resource.name, name=name, revision=revision, actor=audit_actor_from_request(request)
        )
        return saved(document)
