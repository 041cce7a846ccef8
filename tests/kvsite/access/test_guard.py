"""The one access decision (kvsite/access/guard.py), and every route declaring what it needs."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from buckets.core.exceptions import InvalidArgument, PermissionDenied
from kvsite.access.guard import KINDS, Need, Resource, Scope, decide, may_touch, scopes_parse
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import ENTRY_READ, SECRET_READ, Principal

# --- Scopes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("bucket:orders-*", Scope("bucket", "orders-*")),
        ("secrets:prod", Scope("secrets", "prod")),
        ("namespace:app-1/*", Scope("namespace", "app-1/*")),
        ("metrics", Scope("metrics", "*")),
        ("audit:*", Scope("audit", "*")),
    ],
)
def test_a_scope_is_a_kind_and_a_glob(text: str, scope: Scope) -> None:
    assert Scope.parse(text) == scope


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("buckets:a", "the kind must be one of"),
        ("orders-*", "the kind must be one of"),
        ("bucket:", "give a glob of bucket names"),
        ("bucket", "give a glob of bucket names"),
        ("metrics:x*", "metrics has no names to match"),
        ("bucket:a\nb", "give a glob of bucket names"),
    ],
)
def test_a_malformed_scope_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        Scope.parse(text)


def test_scopes_are_kept_once_in_order() -> None:
    assert scopes_parse(["config:*", "bucket:a", "config:*"]) == (Scope("config", "*"), Scope("bucket", "a"))


@pytest.mark.parametrize(
    ("scopes", "resource", "reached"),
    [
        ((), Resource("secrets", "prod"), True),
        (("bucket:*prod*",), Resource("bucket", "orders-prod"), True),
        # A scope of one kind grants nothing of another, whatever its glob matches.
        (("bucket:*prod*",), Resource("secrets", "prod"), False),
        (("bucket:*_*",), Resource("namespace", "app/vault"), False),
        (("bucket:*",), Resource("config", "default"), False),
        (("secrets:prod",), Resource("secrets", "prod"), True),
        (("secrets:prod",), Resource("secrets", "staging"), False),
        # A listing of a kind is open to any scope of that kind; its rows are filtered one by one.
        (("bucket:a-*",), Resource("bucket"), True),
        (("bucket:a-*",), Resource("namespace"), False),
        (("metrics",), Resource("metrics"), True),
        (("bucket:*",), Resource("metrics"), False),
        (("bucket:*",), Resource("audit"), False),
        # The caller's own things (its tickets) are limited by its permissions alone.
        (("bucket:a",), Resource("self"), True),
    ],
)
def test_scopes_reach_resources_of_their_own_kind_only(
    scopes: tuple[str, ...], resource: Resource, reached: bool
) -> None:
    assert may_touch(scopes_parse(list(scopes)), resource) is reached


def principal(*permissions: str, scopes: tuple[str, ...] = ()) -> Principal:
    return Principal(
        kind="api_key", id=1, name="k", permissions=frozenset(permissions), scopes=scopes_parse(list(scopes))
    )


def test_decide_needs_one_of_the_permissions_and_a_scope_that_reaches() -> None:
    decide(principal(ENTRY_READ), (SECRET_READ, ENTRY_READ), Resource("bucket", "a"))
    with pytest.raises(PermissionDenied, match="missing permission kv-secret:read"):
        decide(principal(ENTRY_READ), (SECRET_READ,), Resource("secrets", "prod"))
    with pytest.raises(PermissionDenied, match="may not access secrets:prod"):
        decide(principal(SECRET_READ, scopes=("bucket:*prod*",)), (SECRET_READ,), Resource("secrets", "prod"))


def test_every_kind_can_be_scoped() -> None:
    for kind in KINDS:
        assert Scope.parse(f"{kind}:x" if kind in {"bucket", "config", "secrets", "namespace", "items"} else kind)


# --- Every route declares ------------------------------------------------------------------

# Routes that need no principal at all, by name: probes, the API's own description, signing in.
OPEN_ROUTES = {"health", "ready", "schema", "swagger-ui", "login"}


def api_routes() -> list[tuple[str, type[APIView]]]:
    """(route name, DRF view class) of every API route in the URL conf."""
    found: list[tuple[str, type[APIView]]] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            view_class = getattr(pattern.callback, "cls", None)
            if isinstance(view_class, type) and issubclass(view_class, APIView):
                found.append((pattern.name or prefix + str(pattern.pattern), view_class))

    walk(get_resolver().url_patterns, "")
    return found


def undeclared_methods(view_class: type[APIView]) -> list[str]:
    methods = [name.upper() for name in view_class.http_method_names if hasattr(view_class, name)]
    methods = [method for method in methods if method not in ("OPTIONS", "HEAD")]
    if not issubclass(view_class, GuardedApi):
        return methods
    return [method for method in methods if method not in view_class.access]


def test_the_walk_finds_the_api() -> None:
    names = {name for name, _ in api_routes()}
    assert {"kv-key", "kv-buckets", "audit", "metrics"} <= names


def test_every_api_route_declares_what_each_method_needs() -> None:
    missing = {
        name: undeclared_methods(view_class)
        for name, view_class in api_routes()
        if name not in OPEN_ROUTES and undeclared_methods(view_class)
    }

    assert missing == {}


# --- Every WebSocket route declares ----------------------------------------------------------


def websocket_routes() -> list[tuple[str, type]]:
    """(route name, consumer class) of every WebSocket route in kvsite/routing.py."""
    from kvsite.routing import websocket_urlpatterns

    return [
        (str(pattern.name or pattern.pattern), pattern.callback.consumer_class) for pattern in websocket_urlpatterns
    ]


def test_the_websocket_walk_finds_the_watches() -> None:
    assert {"kv-watch", "config-watch"} <= {name for name, _ in websocket_routes()}


def test_every_websocket_route_declares_what_its_handshake_needs() -> None:
    undeclared = sorted(
        name for name, consumer in websocket_routes() if not isinstance(getattr(consumer, "access", None), Need)
    )

    assert undeclared == []
