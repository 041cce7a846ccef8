"""DRF authentication (bearer API keys, staff sessions with CSRF) and the declared-access check every view passes."""

from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    # Not at run time: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES, which name this module.
    from rest_framework.views import APIView

from buckets.core.exceptions import DomainError, PermissionDenied, Unauthenticated
from kvsite.access.apikeys import USER_ACCOUNT_PREFIX, apikey_authenticate
from kvsite.access.guard import Call, Resource, decide, need_resolve
from kvsite.access.permissions import ALL_PERMISSIONS, Principal


def principal_for_user(user: AbstractBaseUser) -> Principal:
    """Staff users act with every permission; the dashboard is their tool. Their items are their own."""
    return Principal(
        kind="user",
        id=user.pk,
        name=user.get_username(),
        permissions=ALL_PERMISSIONS,
        account=f"{USER_ACCOUNT_PREFIX}{user.pk}",
    )


def request_principal(request: Request) -> Principal:
    """The principal a DRF request acts as (``IsPrincipal``, the default permission, lets no view run without one)."""
    # The stubs type request.user as a Django user; DRF holds whatever authenticated it (our authenticators' Principal).
    user: object = request.user
    if not isinstance(user, Principal):
        raise Unauthenticated("this request has no credentials")
    return user


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        return apikey_authenticate(token=token.strip()), None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="kvsite"'


class StaffSessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if not user.is_staff:
            raise PermissionDenied("only staff users may use the API with a session")
        return principal_for_user(user), None


def request_session_key(request: Request) -> str:
    """The session a staff user's request is signed in with; ``""`` for an API key's (a ticket follows the session)."""
    if not isinstance(request.successful_authenticator, StaffSessionAuthentication):
        return ""
    return request.session.session_key or ""


class IsPrincipal(BasePermission):
    """Every API view needs a principal; finer checks happen per operation."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.user, Principal)


def request_call(request: Request, kwargs: dict[str, object]) -> Call:
    """What a resolver may read of a DRF request."""
    return Call(
        kwargs=kwargs,
        headers={name.lower(): value for name, value in request.headers.items()},
        query={name: str(request.query_params.get(name, "")) for name in request.query_params},
        principal=request_principal(request),
    )


class DeclaredAccess(BasePermission):
    """The default permission: a view's ``access`` declares, per method, its ``Need``; ``guard.decide`` answers.

    Runs before the handler reads the body, so a caller without access gets 403, never a 400
    that tells it about the resource. The resource decided on is left on the view
    (``view.resource``) for the handler's audit rows; a refusal (the 403, or the resolver's
    own 400 or 404) is handed to the view's ``access_refused`` first, for its audit log.
    """

    def has_permission(self, request: Request, view: "APIView") -> bool:
        # Imported here: this module is named by DRF's settings, which rest_framework.views reads on import.
        from kvsite.access.guarded import GuardedApi

        if not isinstance(view, GuardedApi):
            # Fail closed: a view that declares nothing is refused (routes that need no principal say
            # so with their own permission_classes, as the schema views and probes do).
            raise PermissionDenied("this route declares no access")
        if request.method == "OPTIONS":
            # DRF's metadata: the route's shape, no data; any principal may ask.
            return isinstance(request.user, Principal)
        method = "GET" if request.method == "HEAD" else str(request.method)
        need = view.access.get(method)
        if need is None:
            if method.lower() not in view.http_method_names or not hasattr(view, method.lower()):
                # A method the route does not answer: DRF's 405 follows, for any principal.
                return isinstance(request.user, Principal)
            raise PermissionDenied(f"{method} declares no access on this route")
        call = request_call(request, dict(view.kwargs))
        resource: Resource | None = None
        try:
            resource = need_resolve(need, call)
            decide(call.principal, need.permissions, resource)
        except DomainError as error:
            view.access_refused(request, error, resource)
            raise
        view.resource = resource
        return True
