"""Who may use the dashboard, who its requests act as, and how domain errors reach the page.

Every dashboard page declares what it touches, as the API's routes do: ``dashboard_view``
takes a ``Need`` (``kvsite.access.guard``) per method, or per POST action (``"POST save"``:
the form's ``action`` field), and ``guard.need_decide`` answers for the signed-in staff
user before the page runs; the page then acts on the resource decided on
(``request.resource``). Anonymous visitors are sent to the login page, signed-in users who
are not staff get the 403 page, a method the page does not declare is a 405 and an
undeclared action a 400; a ``DomainError`` that a page did not handle itself becomes a
rendered error page with the error's status (never a 500).
"""

from collections.abc import Callable, Mapping
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render

from buckets.core.exceptions import DomainError, InvalidArgument
from kvsite.access.audit import AuditActor, audit_actor_from_request
from kvsite.access.authentication import principal_for_user
from kvsite.access.guard import Call, Need, need_decide
from kvsite.access.permissions import Principal

View = Callable[..., HttpResponse]
# A page's declaration: "GET", "POST", or "POST <action>" (the form's action field) to what it needs.
PageAccess = Mapping[str, Need]


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


def page_need(access: PageAccess, request: HttpRequest) -> Need | None:
    """What ``request`` needs by ``access``: its action's declaration, else its method's; None if undeclared."""
    method = "GET" if request.method == "HEAD" else str(request.method)
    if method == "POST":
        action = request.POST.get("action", "")
        if f"POST {action}" in access:
            return access[f"POST {action}"]
    return access.get(method)


def page_call(request: HttpRequest, kwargs: Mapping[str, object]) -> Call:
    """What a resolver may read of a dashboard request: URL parameters, headers, query and form fields."""
    return Call(
        kwargs=kwargs,
        headers={name.lower(): value for name, value in request.headers.items()},
        query={name: request.GET.get(name, "") for name in request.GET},
        form={name: request.POST.get(name, "") for name in request.POST} if request.method == "POST" else {},
        principal=dashboard_principal(request),
    )


def dashboard_view(access: PageAccess) -> Callable[[View], View]:
    """Require a signed-in staff user who holds what ``access`` declares; render unhandled domain errors as pages."""
    methods = sorted({declared.split()[0] for declared in access})

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.is_staff:
                raise PermissionDenied("the dashboard is for staff users")
            if ("GET" if request.method == "HEAD" else request.method) not in methods:
                return HttpResponseNotAllowed(methods)
            try:
                need = page_need(access, request)
                if need is None:
                    raise InvalidArgument(f"unknown action {request.POST.get('action', '')!r}")
                request.resource = need_decide(need, page_call(request, kwargs))  # type: ignore[attr-defined]
                response = view(request, *args, **kwargs)
            except DomainError as error:
                return error_page(request, error)
            # Pages show values, tokens and secrets: never keep them in a shared or back/forward cache.
            response.setdefault("Cache-Control", "no-store")
            return response

        # Read by tests/kvsite/dashboard/test_access.py, which fails on a page that declares nothing.
        wrapped.access = access  # type: ignore[attr-defined]
        return wrapped

    return decorate
