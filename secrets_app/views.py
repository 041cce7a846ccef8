"""The Ironflow secrets API: parse, call the secrets service, render.

Every call names its environment in ``X-Ironflow-Environment-ID``; authorization
and audit happen in ``secrets_app.services``.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvsite.access.audit import audit_actor_from_request
from kvsite.http.errors import ErrorOutput
from secrets_app import services
from secrets_app.inputs import (
    SecretCreateInput,
    SecretInfoOutput,
    SecretPatchInput,
    SecretUpdateInput,
    SecretValueOutput,
)

ENVIRONMENT = OpenApiParameter(
    "X-Ironflow-Environment-ID", str, OpenApiParameter.HEADER, required=True, description="Environment id"
)
ERRORS = {status: OpenApiResponse(ErrorOutput) for status in (400, 401, 403, 404)}
# The largest value escaped as clients such as json.dumps do by default (non-ASCII as \uXXXX: up to 3 body
# bytes a stored byte), and the other fields.
SECRET_BODY_BYTES = 4 * services.MAX_SECRET_BYTES + 4 * 1024


def _environment(request: Request) -> str:
    return request.headers.get("X-Ironflow-Environment-ID", "").strip()


def _valid(serializer_class, request: Request) -> dict:
    params = serializer_class(data=request.data)
    params.is_valid(raise_exception=True)
    return params.validated_data


class SecretListCreateApi(APIView):
    body_max_bytes = SECRET_BODY_BYTES

    @extend_schema(
        operation_id="secret_list", parameters=[ENVIRONMENT], responses={200: SecretInfoOutput(many=True), **ERRORS}
    )
    def get(self, request: Request) -> Response:
        infos = services.secret_list(environment=_environment(request), actor=audit_actor_from_request(request))
        return Response(SecretInfoOutput(infos, many=True).data)

    @extend_schema(
        operation_id="secret_create",
        parameters=[ENVIRONMENT],
        request=SecretCreateInput,
        responses={201: SecretInfoOutput, 409: OpenApiResponse(ErrorOutput), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _valid(SecretCreateInput, request)
        info = services.secret_create(
            environment=_environment(request),
            name=data["name"],
            value=data["value"],
            description=data.get("description", ""),
            actor=audit_actor_from_request(request),
        )
        return Response(SecretInfoOutput(info).data, status=201)


class SecretDetailApi(APIView):
    # PUT carries a value; PATCH (name, description) is smaller and shares the cap.
    body_max_bytes = SECRET_BODY_BYTES

    @extend_schema(operation_id="secret_info", parameters=[ENVIRONMENT], responses={200: SecretInfoOutput, **ERRORS})
    def get(self, request: Request, name: str) -> Response:
        info = services.secret_info(
            environment=_environment(request), name=name, actor=audit_actor_from_request(request)
        )
        return Response(SecretInfoOutput(info).data)

    @extend_schema(
        operation_id="secret_update",
        parameters=[ENVIRONMENT],
        request=SecretUpdateInput,
        responses={200: SecretInfoOutput, **ERRORS},
    )
    def put(self, request: Request, name: str) -> Response:
        data = _valid(SecretUpdateInput, request)
        info = services.secret_update(
            environment=_environment(request),
            name=name,
            value=data["value"],
            description=data.get("description"),
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
        data = _valid(SecretPatchInput, request)
        info = services.secret_patch(
            environment=_environment(request),
            name=name,
            new_name=data.get("name"),
            description=data.get("description"),
            actor=audit_actor_from_request(request),
        )
        return Response(SecretInfoOutput(info).data)

    @extend_schema(operation_id="secret_delete", parameters=[ENVIRONMENT], responses={204: None, **ERRORS})
    def delete(self, request: Request, name: str) -> Response:
        services.secret_delete(environment=_environment(request), name=name, actor=audit_actor_from_request(request))
        return Response(status=204)


class SecretValueApi(APIView):
    @extend_schema(
        operation_id="secret_reveal",
        parameters=[ENVIRONMENT],
        responses={200: SecretValueOutput, 500: OpenApiResponse(ErrorOutput, description="data_loss"), **ERRORS},
    )
    def get(self, request: Request, name: str) -> Response:
        revealed = services.secret_reveal(
            environment=_environment(request), name=name, actor=audit_actor_from_request(request)
        )
        # A revealed value must not sit in a browser or proxy cache.
        return Response(SecretValueOutput(revealed).data, headers={"Cache-Control": "no-store"})
