"""Keeps every API failure JSON, even with DEBUG on (which would render HTML); request ids."""

import logging
import re
import uuid

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse

from kvsite.errors import error_body

logger = logging.getLogger("kvsite.api")


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, (OperationalError, InterfaceError)):
            # The driver's first line says why (refused, too many clients...); it carries no values.
            reason = (str(exception).strip().splitlines() or [""])[0][:200]
            logger.warning("database unavailable: %s: %s", type(exception).__name__, reason)
            return JsonResponse(error_body("database unavailable", "unavailable"), status=503)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(error_body("internal server error", "internal"), status=500)


class RequestIdMiddleware:
    """Gives every request an id (``request.request_id``) and echoes it as ``X-Request-Id``.

    A caller's own id is kept when it is short and plain, so it can be followed
    through proxies; anything else is replaced, as it ends up in logs and audit rows.
    """

    header = "X-Request-Id"
    _valid = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        supplied = request.headers.get(self.header, "")
        request.request_id = supplied if self._valid.match(supplied) else uuid.uuid4().hex
        response = self.get_response(request)
        response[self.header] = request.request_id
        return response
