"""The Ironflow config API: JSON documents per environment, with revisions."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buckets.configs import services as configs
from buckets.configs.inputs import environment_of, rollback_revision
from buckets.configs.services import ConfigDocument
from buckets.core.events import rfc3339
from kvsite.access.permissions import CONFIG_READ, CONFIG_WRITE
from kvsite.http.bodies import DEFAULT_BODY_MAX_BYTES
from kvsite.http.errors import ErrorOutput
from kvsite.http.jsonbody import request_json
from kvsite.http.preconditions import IF_MATCH_DESCRIPTION, parse_if_match, parse_write_condition

ENVIRONMENT = OpenApiParameter(
    "X-Ironflow-Environment-ID", str, OpenApiParameter.HEADER, description="Environment (default: 'default')"
)
IF_MATCH = OpenApiParameter("If-Match", str, OpenApiParameter.HEADER, description=IF_MATCH_DESCRIPTION)
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


def saved(document: ConfigDocument) -> Response:
    return Response({"name": document.name, "revision": document.revision}, headers={"ETag": f'"{document.revision}"'})


class ConfigListApi(APIView):
    @extend_schema(operation_id="config_list", parameters=[ENVIRONMENT], responses={200: ConfigListOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        request.user.require(CONFIG_READ)
        documents = configs.config_list(environment=environment_of(request))
        return Response(
            {
                "configs": [
                    {"name": doc.name, "revision": doc.revision, "updatedAt": rfc3339(doc.updated_at)}
                    for doc in documents
                ]
            }
        )


class ConfigDetailApi(APIView):
    body_max_bytes = MAX_BODY_BYTES

    @extend_schema(operation_id="config_get", parameters=[ENVIRONMENT], responses={200: ConfigOutput, **ERRORS})
    def get(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_READ)
        doc = configs.config_get(environment=environment_of(request), name=name)
        return Response(
            {"name": doc.name, "data": doc.data, "revision": doc.revision, "updatedAt": rfc3339(doc.updated_at)},
            headers={"ETag": f'"{doc.revision}"'},
        )

    @extend_schema(
        operation_id="config_set",
        request={"application/json": {"type": "object"}},
        parameters=[
            ENVIRONMENT,
            IF_MATCH,
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="'*': create only"),
        ],
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_WRITE)
        condition = parse_write_condition(request.headers)
        data = request_json(request)
        document = configs.config_set(
            environment=environment_of(request),
            name=name,
            data=data,
            if_absent=condition.if_absent,
            if_match=condition.if_match,
        )
        return saved(document)

    @extend_schema(
        operation_id="config_patch",
        request={"application/merge-patch+json": {"type": "object"}, "application/json": {"type": "object"}},
        parameters=[ENVIRONMENT, IF_MATCH],
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_WRITE)
        if_match = parse_if_match(request.headers.get("If-Match"))
        patch = request_json(request, what="merge patch")
        document = configs.config_patch(environment=environment_of(request), name=name, patch=patch, if_match=if_match)
        return saved(document)

    @extend_schema(operation_id="config_delete", parameters=[ENVIRONMENT, IF_MATCH], responses={204: None, **ERRORS})
    def delete(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_WRITE)
        if_match = parse_if_match(request.headers.get("If-Match"))
        configs.config_delete(environment=environment_of(request), name=name, if_match=if_match)
        return Response(status=204)


class ConfigHistoryApi(APIView):
    @extend_schema(
        operation_id="config_history", parameters=[ENVIRONMENT], responses={200: ConfigHistoryOutput, **ERRORS}
    )
    def get(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_READ)
        history = configs.config_history(environment=environment_of(request), name=name)
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


class ConfigRollbackApi(APIView):
    body_max_bytes = ROLLBACK_BODY_BYTES

    @extend_schema(
        operation_id="config_rollback",
        parameters=[ENVIRONMENT],
        request=RollbackInput,
        responses={200: ConfigRevisionOutput, **ERRORS},
    )
    def post(self, request: Request, name: str) -> Response:
        request.user.require(CONFIG_WRITE)
        revision = rollback_revision(request_json(request))
        document = configs.config_rollback(environment=environment_of(request), name=name, revision=revision)
        return saved(document)
