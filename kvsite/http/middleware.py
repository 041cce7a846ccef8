"""Keeps every API failure JSON, even with DEBUG on (which would render HTML); request ids."""

import logging
import re
import time
import uuid

from django.http import HttpRequest, JsonResponse

from kvsite.http.errors import database_unavailable, error_body, wants_json
from kvsite.http.request_log import access_log_emit, request_id_var

logger = logging.getLogger("kvsite.api")


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not wants_json(request):
            return None
        unavailable = database_unavailable(exception)
        if unavailable is not None:
            return JsonResponse(unavailable, status=503)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(error_body("internal server error", "internal"), status=500)


class RequestIdMiddleware:
    """Gives every request an id (``request.request_id``), echoes it as ``X-Request-Id``, logs the request.

    A caller's own id is kept when it is short and plain, so it can be followed
    through proxies; anything else is replaced, as it ends up in logs and audit rows.
    The id is also in ``request_id_var`` while the request runs, so every log record
    gets it; the access line (``kvsite.http.request_log``) is written once the response exists.
    """

    header = "X-Request-Id"
    _valid = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        started = time.perf_counter()
        # META, not request.headers: building the headers mapping costs more than the rest.
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = request.request_id = supplied if self._valid.fullmatch(supplied) else uuid.uuid4().hex
        context = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
            response[self.header] = request_id
            access_log_emit(request=request, response=response, started=started)
        finally:
            request_id_var.reset(context)
        return response
