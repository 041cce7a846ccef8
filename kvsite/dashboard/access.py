"""Who may use the dashboard, who its requests act as, and how domain errors reach the page.

Every dashboard view is wrapped in ``staff_view``: anonymous visitors are sent
to the login page, signed-in users who are not staff get the 403 page, and a
``DomainError`` that a view did not handle itself becomes a rendered error page
with the error's status (never a 500).
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from buckets.core.exceptions import DomainError
from kvsite.access.audit import AuditActor, audit_actor_from_request
from kvsite.access.authentication import principal_for_user
from kvsite.access.permissions import Principal

View = Callable[..., HttpResponse]


def dashboard_principal(request: HttpRequest) -> Principal:
    """The principal a staff user acts as (every permission, like a staff API session)."""
    return principal_for_user(request.user)


def dashboard_actor(request: HttpRequest) -> AuditActor:
    """The audit actor of a dashboard request: the signed-in staff user, from the socket peer's address."""
    return audit_actor_from_request(request, principal=dashboard_principal(request))


def error_page(request: HttpRequest, error: DomainError) -> HttpResponse:
    """A domain error as an HTML page with its status (404 for a missing bucket, 412 for a conflict...)."""
    status = error.status if 400 <= error.status < 500 else 400
    return render(request, "dashboard/error.html", {"error": error}, status=status)


def staff_view(view: View) -> View:
    """Require a signed-in staff user; render unhandled domain errors as pages."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("the dashboard is for staff users")
        try:
            response = view(request, *args, **kwargs)
        except DomainError as error:
            return error_page(request, error)
        # Pages show values, tokens and secrets: never keep them in a shared or back/forward cache.
        response.setdefault("Cache-Control", "no-store")
        return response

    return wrapped
