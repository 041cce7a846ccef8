"""How our authentication classes appear in the OpenAPI schema, and the schema's typed decorator."""

from collections.abc import Callable, Mapping, Sequence
from typing import Never, TypeVar

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response

# A view method (self, request) -> Response, or (self, request, <URL parameter>), whatever its class.
ViewMethod = TypeVar(
    "ViewMethod", bound=Callable[[Never, Request], Response] | Callable[[Never, Request, Never], Response]
)


def operation_schema(
    *,
    operation_id: str,
    responses: Mapping[int, object],
    parameters: Sequence[OpenApiParameter] | None = None,
    request: object = empty,
) -> Callable[[ViewMethod], ViewMethod]:
    """drf-spectacular's ``extend_schema`` for a view method, typed without ``Any``.

    ``extend_schema`` returns ``Callable[[F], F]`` with ``F`` bound to ``Callable[..., Any]``,
    which a module checked with ``disallow_any_expr`` (the access views) may not mention.
    """
    return extend_schema(operation_id=operation_id, parameters=parameters, request=request, responses=dict(responses))


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "kvsite.access.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "API key from `manage.py createapikey`"}


class StaffSessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "kvsite.access.authentication.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid", "description": "Staff session (CSRF on writes)"}


# What the request body contract (kvsite/http/bodies.py, kvsite/http/jsonbody.py) can answer
# for any operation that takes a body, before its own view runs.
BODY_CONTRACT_RESPONSES = {
    "400": "Malformed body: not JSON where JSON is due, or shorter than its Content-Length",
    "411": "A chunked body the server in front of kvsite cannot read: send Content-Length",
    "413": "Body over this operation's cap",
    "415": "Content-Type is not JSON (application/json or application/*+json)",
    "501": "A transfer coding other than chunked",
}


def body_contract_responses(result: dict, generator, request, public) -> dict:
    """POSTPROCESSING_HOOKS entry: every operation with a request body documents the body contract's errors."""
    for path, operations in result.get("paths", {}).items():
        error = "ItemsError" if path.startswith("/kv/") else "ErrorOutput"
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if not body:
                continue
            raw = "*/*" in body.get("content", {})
            for status, description in BODY_CONTRACT_RESPONSES.items():
                if status == "415" and raw:
                    continue  # takes any bytes
                operation["responses"].setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}},
                    },
                )
    return result
