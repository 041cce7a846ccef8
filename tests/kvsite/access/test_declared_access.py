"""DeclaredAccess: permissions, then the resolver, then the scopes; a refusal goes to the view first."""

from typing import ClassVar

import pytest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from buckets.core.exceptions import DomainError, NotFound
from kvsite.access.guard import Call, Need, Resource, scopes_parse
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import ENTRY_READ, Principal

resolved: list[str] = []
refusals: list[tuple[str, Resource | None]] = []


def thing_named(call: Call) -> Resource:
    """A resolver that looks the name up: 404 for ``missing``."""
    name = str(call.kwargs["name"])
    resolved.append(name)
    if name == "missing":
        raise NotFound(f"thing {name!r} not found")
    return Resource("bucket", name)


class ThingApi(GuardedApi):
    access: ClassVar = {"GET": Need(ENTRY_READ, resource=thing_named)}

    def get(self, request: Request, name: str) -> Response:
        return Response({"decided": str(self.resource)})

    def access_refused(self, request: Request, error: DomainError, resource: Resource | None) -> None:
        refusals.append((error.code, resource))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    resolved.clear()
    refusals.clear()


def get(name: str, *permissions: str, scopes: tuple[str, ...] = (), method: str = "get") -> Response:
    request = getattr(APIRequestFactory(), method)(f"/things/{name}")
    principal = Principal(
        kind="api_key", id=1, name="k", permissions=frozenset(permissions), scopes=scopes_parse(list(scopes))
    )
    force_authenticate(request, user=principal)
    return ThingApi.as_view()(request, name=name)


def test_an_allowed_call_reaches_the_handler_with_the_resource_decided() -> None:
    response = get("orders", ENTRY_READ, scopes=("bucket:ord*",))

    assert (response.status_code, response.data) == (200, {"decided": "bucket:orders"})
    assert refusals == []


def test_a_missing_permission_is_refused_before_the_resolver_runs() -> None:
    response = get("missing")

    assert response.status_code == 403
    assert resolved == []
    assert refusals == [("permission_denied", None)]


def test_the_resolvers_own_refusal_reaches_the_view() -> None:
    response = get("missing", ENTRY_READ)

    assert response.status_code == 404
    assert refusals == [("not_found", None)]


def test_a_scope_refusal_reaches_the_view_with_the_resource() -> None:
    response = get("orders", ENTRY_READ, scopes=("bucket:other",))

    assert response.status_code == 403
    assert refusals == [("permission_denied", Resource("bucket", "orders"))]


def test_a_method_the_route_does_not_have_is_405_not_a_refusal() -> None:
    response = get("orders", ENTRY_READ, method="put")

    assert response.status_code == 405
    assert refusals == [] and resolved == []
