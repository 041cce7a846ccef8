"""The site's 403, 404 and CSRF-failure answers: the dashboard's pages, or the API's JSON on API paths.

Django takes one handler per status for the whole site (``handler404`` in the URL conf,
``CSRF_FAILURE_VIEW`` in settings); the dashboard owns them because only it has pages,
and hands API paths to ``kvsite.http.errors``.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kvsite.http import errors


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if errors.wants_json(request):
        return errors.json_not_found(request, exception)
    return render(request, "dashboard/404.html", status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if errors.wants_json(request):
        return errors.json_permission_denied(request, exception)
    return render(request, "dashboard/403.html", status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: API clients get the JSON error, the dashboard its 403 page."""
    if errors.wants_json(request):
        return errors.json_csrf_failure(request, reason)
    return render(request, "dashboard/403.html", status=403)
