"""The one place that turns domain errors (``buckets/core/exceptions.py``) and DRF's into JSON responses.

Every API error body is ``{"error": "<message>", "code": "<code>"}``; codes follow
the gRPC vocabulary Ironflow uses (``not_found``, ``failed_precondition``, ...).
"""

import functools
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.response import Response

from buckets.core.exceptions import DomainError

# The API's logger, as the middleware's: an outage logs the same line whichever layer caught it.
logger = logging.getLogger("kvsite.api")


_DRF_CODES = {
    drf.NotAuthenticated: (401, "unauthenticated"),
    drf.AuthenticationFailed: (401, "unauthenticated"),
    drf.PermissionDenied: (403, "permission_denied"),
    drf.NotFound: (404, "not_found"),
    drf.MethodNotAllowed: (405, "method_not_allowed"),
    drf.NotAcceptable: (406, "not_acceptable"),
    drf.UnsupportedMediaType: (415, "invalid_argument"),
    drf.Throttled: (429, "resource_exhausted"),
    drf.ParseError: (400, "invalid_argument"),
    drf.ValidationError: (400, "invalid_argument"),
}


class ErrorOutput(serializers.Serializer):
    """The error body every JSON endpoint answers with, as the OpenAPI schema shows it."""

    error = serializers.CharField()
    code = serializers.CharField()


def error_body(message: str, code: str, **details: object) -> dict:
    return {"error": message, "code": code, **details}


# The items API (/kv/...) wraps every answer, errors included, in this envelope.
ITEMS_PATH_PREFIX = "/kv/"


def items_envelope(request_id: str, *, data: object = None, error: dict | None = None) -> dict:
    return {"requestId": request_id, "data": data, "error": error}


def error_response(request: HttpRequest, exc: DomainError) -> JsonResponse:
    """A domain error answered before any view ran (by middleware), in the error shape of the path's dialect."""
    if request.path.startswith(ITEMS_PATH_PREFIX):
        request_id = getattr(request, "request_id", "")
        body = items_envelope(request_id, error={"code": exc.code, "message": exc.message, **exc.details})
    else:
        body = error_body(exc.message, exc.code, **exc.details)
    response = JsonResponse(body, status=exc.status, json_dumps_params={"separators": (",", ":")})
    # Answered before CommonMiddleware, which would otherwise add it (no chunked error bodies).
    response["Content-Length"] = str(len(response.content))
    return response


def _validation_message(detail: object) -> str:
    """Flatten DRF's nested validation detail into one readable line."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            inner = _validation_message(value)
            parts.append(inner if field == "non_field_errors" else f"{field}: {inner}")
        return "; ".join(parts)
    if isinstance(detail, list):
        return "; ".join(_validation_message(item) for item in detail)
    return str(detail)


@functools.cache
def database_unavailable_errors() -> tuple[type[Exception], ...]:
    """Django's connection errors and the drivers' own.

    A driver's error reaches a view unwrapped wherever code talks to the driver
    itself rather than through a Django cursor, and a lost database is a 503
    whichever layer noticed it.
    """
    drivers = {connections[alias].Database for alias in connections}
    return (
        OperationalError,
        InterfaceError,
        *(error for driver in drivers for error in (driver.OperationalError, driver.InterfaceError)),
    )


def database_unavailable(exc: Exception) -> dict | None:
    """The 503 body if ``exc`` says the database cannot be reached (and a log line), else None.

    Shared by the DRF handler and the middleware, so every API, the items envelope
    included, answers the same whether DRF or Django saw the error first.
    """
    if not isinstance(exc, database_unavailable_errors()):
        return None
    # The driver's first line says why (refused, too many clients...); it carries no values.
    reason = (str(exc).strip().splitlines() or [""])[0][:200]
    logger.warning("database unavailable: %s: %s", type(exc).__name__, reason)
    return error_body("database unavailable", "unavailable")


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """REST_FRAMEWORK's EXCEPTION_HANDLER: domain, database-unavailable and DRF errors become JSON."""
    if isinstance(exc, DomainError):
        response = Response(error_body(exc.message, exc.code, **exc.details), status=exc.status)
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="kvsite"'
        return response
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("request body too large", "resource_exhausted"), status=413)
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        return Response(unavailable, status=503)
    if isinstance(exc, Http404):
        return Response(error_body("not found", "not_found"), status=404)
    for exc_type, (status, code) in _DRF_CODES.items():
        if isinstance(exc, exc_type):
            message = _validation_message(exc.detail) if isinstance(exc, drf.ValidationError) else str(exc.detail)
            response = Response(error_body(message, code), status=status)
            if isinstance(exc, drf.Throttled) and exc.wait is not None:
                response["Retry-After"] = str(int(exc.wait) + 1)
            auth_header = getattr(exc, "auth_header", None)
            if auth_header:
                response["WWW-Authenticate"] = auth_header
            return response
    if isinstance(exc, drf.APIException):
        return Response(error_body(str(exc.detail), "internal"), status=exc.status_code)
    return None


def wants_json(request: HttpRequest) -> bool:
    """API paths answer in JSON; everything else is the dashboard, which renders HTML pages."""
    return request.path.startswith(("/api/", "/kv/"))


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not found", "not_found"), status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("internal server error", "internal"), status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("bad request", "invalid_argument"), status=400)


def json_permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("permission denied", "permission_denied"), status=403)


def json_csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    return JsonResponse(error_body(f"CSRF verification failed: {reason}", "permission_denied"), status=403)
