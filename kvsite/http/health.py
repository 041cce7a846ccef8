"""Liveness and readiness probes (no authentication)."""

from django.db import connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, JsonResponse

from kvsite import __version__


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "version": __version__})


def ready(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ready", "database": "ok"})
