"""The Ironflow secrets API: parse (``inputs``), call the secrets service, render.

Every call names its environment in ``X-Ironflow-Environment-ID``: each route declares
the permission it needs on ``secrets:<environment>`` (``access``), decided before the
handler runs; a refusal there is audited as the operation's own would be
(``SecretApi.access_refused``). The handler acts on the environment decided on
(``self.resource``); audit of the operation happens in ``secrets_app.services``.

The output shapes live here, with the views that render them: ``SecretInfoOutput``
(listing, info, write responses) has no value field and is built from
``SecretInfo``, which has none either; only ``SecretValueOutput``, used by the
reveal endpoint alone, carries a value.
"""

from collections.abc import Mapping
from typing import ClassVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from buckets.core.exceptions import DomainError
from kvsite.access.audit import Action, audit_actor_from_request, audit_refused
from kvsite.access.guard import Need, Resource
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import SECRET_READ, SECRET_WRITE
from kvsite.http.errors import ErrorOutput
from secrets_app import services
from secrets_app.inputs import (
    ENVIRONMENT_HEADER,
    SecretCreateInput,
    SecretPatchInput,
    SecretUpdateInput,
    environment_named,
    environment_of,
    secret_create_input,
    secret_patch_input,
    secret_update_input,
)

ENVIRONMENT = OpenApiParameter(
    ENVIRONMENT_HEADER, str, OpenApiParameter.HEADER, required=True, description="Environment id"
)
ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404)}
# The largest value escaped as clients such as json.dumps do by default (non-ASCII as \uXXXX: up to 3 body
# bytes a stored byte), and the other fields.
SECRET_BODY_BYTES = 4 * services.MAX_SECRET_BYTES + 4 * 1024


class SecretInfoOutput(serializers.Serializer):
    name = serializers.CharField()
    revision = serializers.IntegerField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SecretValueOutput(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField()
    revision = serializers.IntegerField()


class SecretApi(GuardedApi):
    """Base of these views: refusals of the declared access on the audit log, as the operations record theirs."""

    # The audit action of each method's operation, which a refusal before the handler is recorded as.
    audit_actions: ClassVar[Mapping[str, str]] = {
        "GET": Action.READ,
        "POST": Action.WRITE,
        "PUT": Action.WRITE,
        "PATCH": Action.WRITE,
        "DELETE": Action.DELETE,
    }

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        # The environment tried, as the operations' rows name it, even when the refusal came before it was resolved.
        environment = resource.name if resource else environment_of(request)
        audit_refused(
            request=request,
            action=self.audit_actions.get(str(request.method), Action.READ),
            error=error,
            namespace=services.environment_audit_name(environment),
            key_path=str(self.kwargs.get("name", "")),
        )


READ_OR_WRITE = Need(SECRET_READ, SECRET_WRITE, resource=environment_named)
WRITE = Need(SECRET_WRITE, resource=environment_named)


class SecretListCreateApi(SecretApi):
    access = {"GET": READ_OR_WRITE, "POST": WRITE}
    body_max_bytes = SECRET_BODY_BYTES

    @extend_schema(
        operation_id="secret_list", parameters=[ENVIRONMENT], responses={200: SecretInfoOutput(many=True), **ERRORS}
    )
    def get(self, request: Request) -> Response:
        infos = services.secret_list(environment=self.resource.name, actor=audit_actor_from_request(request))
        return Response(SecretInfoOutput(infos, many=True).data)

    @extend_schema(
        operation_id="secret_create",
        parameters=[ENVIRONMENT],
        request=SecretCreateInput,
        responses={201: SecretInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        params = secret_create_input(request.data)
        info = services.secret_create(
            environment=self.resource.name,
            name=params.name,
            value=params.value,
            description=params.description,
            actor=audit_actor_from_request(request),
        )
        return Response(SecretInfoOutput(info).data, status=201)


class SecretDetailApi(SecretApi):
    access = {"GET": READ_OR_WRITE, "PUT": WRITE, "PATCH": WRITE, "DELETE": WRITE}
    # PUT carries a value; PATCH (name, description) is smaller and shares the cap.
    body_max_bytes = SECRET_BODY_BYTES

    @extend_schema(operation_id="secret_info", parameters=[ENVIRONMENT], responses={200: SecretInfoOutput, **ERRORS})
    def get(self, request: Request, name: str) -> Response:
        info = services.secret_info(environment=self.resource.name, name=name, actor=audit_actor_from_request(request))
        return Response(SecretInfoOutput(info).data)

    @extend_schema(
        operation_id="secret_update",
        parameters=[ENVIRONMENT],
        request=SecretUpdateInput,
        responses={200: SecretInfoOutput, **ERRORS},
    )
    def put(self, request: Request, name: str) -> Response:
        params = secret_update_input(request.data)
        info = services.secret_update(
            environment=self.resource.name,
            name=name,
            value=params.value,
            description=params.description,
            actor=audit_actor_from_request(request),
        )
        return Response(SecretInfoOutput(info).data)

    @extend_schema(
        operation_id="secret_patch",
        parameters=[ENVIRONMENT],
        request=SecretPatchInput,
        responses={200: SecretInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        params = secret_patch_input(request.data)
        info = services.secret_patch(
            environment=self.resource.name,
            name=name,
            new_name=params.new_name,
            description=params.description,
            actor=audit_actor_from_request(request),
        )
        return Response(SecretInfoOutput(info).data)

    @extend_schema(operation_id="secret_delete", parameters=[ENVIRONMENT], responses={204: None, **ERRORS})
    def delete(self, request: Request, name: str) -> Response:
        services.secret_delete(environment=self.resource.name, name=name, actor=audit_actor_from_request(request))
        return Response(status=204)


class SecretValueApi(SecretApi):
    access = {"GET": Need(SECRET_READ, resource=environment_named)}
    audit_actions = {"GET": Action.REVEAL}

    @extend_schema(
        operation_id="secret_reveal",
        parameters=[ENVIRONMENT],
        responses={200: SecretValueOutput, 500: OpenApiResponse(ErrorOutput, description="data_loss"), **ERRORS},
    )
    def get(self, request: Request, name: str) -> Response:
        revealed = services.secret_reveal(
            environment=self.resource.name, name=name, actor=audit_actor_from_request(request)
        )
        # A revealed value must not sit in a browser or proxy cache.
        return Response(SecretValueOutput(revealed).data, headers={"Cache-Control": "no-store"})
