"""Access as declared data, decided once.

Every route says, per method, what it needs: the permissions that allow it and the
resource it touches, named as clients name it: ``bucket:orders``, ``config:prod``,
``secrets:prod``, ``namespace:app-1/vault``, ``items:<account>``, ``audit``,
``metrics``, ``apikeys``. ``decide`` is the one function that answers; REST views,
WebSocket consumers and the dashboard declare (``Need``) and never decide themselves.

A key's scopes (``kind:glob``) are matched against the public name of their own kind
only, so an internal name (``APP_…``, ``SYS_…``) never reaches a pattern, and a scope
of one kind grants nothing of another: ``bucket:*prod*`` opens no secrets. A key
without scopes is unrestricted within its permissions.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from buckets.core.exceptions import InvalidArgument, PermissionDenied

if TYPE_CHECKING:
    from kvsite.access.permissions import Principal

# The kinds of resource, as scopes and audit rows spell them.
BUCKET, CONFIG, SECRETS, NAMESPACE, ITEMS = "bucket", "config", "secrets", "namespace", "items"
AUDIT, METRICS, APIKEYS = "audit", "metrics", "apikeys"
# Kinds whose resources have names; a scope's glob is matched against those names.
NAMED_KINDS = frozenset({BUCKET, CONFIG, SECRETS, NAMESPACE, ITEMS})
# Kinds that are one thing each: a scoped key reaches them only with a scope of that kind.
WHOLE_KINDS = frozenset({AUDIT, METRICS, APIKEYS})
KINDS = NAMED_KINDS | WHOLE_KINDS
# What belongs to the caller itself (its WebSocket tickets): no scope limits it, its permissions do.
SELF = "self"
MAX_SCOPES = 32
MAX_GLOB_LENGTH = 200


@dataclass(frozen=True)
class Resource:
    """What a route touches: a kind and, for named kinds, the public name (``""``: every one of them)."""

    kind: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True)
class Scope:
    """A limit on a key: the resources of ``kind`` whose public name matches ``glob``."""

    kind: str
    glob: str

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """``kind:glob`` (``metrics`` alone for a whole kind); InvalidArgument naming what is wrong."""
        kind, _, glob = text.strip().partition(":")
        if kind not in KINDS:
            raise InvalidArgument(f"scope {text!r}: the kind must be one of {', '.join(sorted(KINDS))}")
        if kind in WHOLE_KINDS:
            if glob not in ("", "*"):
                raise InvalidArgument(f"scope {text!r}: {kind} has no names to match; write {kind!r}")
            return cls(kind=kind, glob="*")
        if not glob or len(glob) > MAX_GLOB_LENGTH or any(ord(char) < 32 for char in glob):
            raise InvalidArgument(f"scope {text!r}: give a glob of {kind} names, e.g. {kind}:orders-*")
        return cls(kind=kind, glob=glob)

    def covers(self, resource: Resource) -> bool:
        return self.kind == resource.kind and fnmatchcase(resource.name, self.glob)

    def __str__(self) -> str:
        return self.kind if self.kind in WHOLE_KINDS else f"{self.kind}:{self.glob}"


def scopes_parse(texts: list[str]) -> tuple[Scope, ...]:
    """Scopes from their text form, without duplicates, in the order given."""
    if len(texts) > MAX_SCOPES:
        raise InvalidArgument(f"a key may have at most {MAX_SCOPES} scopes")
    return tuple(dict.fromkeys(Scope.parse(text) for text in texts))


def may_touch(scopes: tuple[Scope, ...], resource: Resource) -> bool:
    """Whether ``scopes`` reach ``resource`` (no scopes: everything).

    A named kind as a whole (``bucket:`` with no name, a listing) is reachable with any
    scope of that kind; the listing then shows only what ``may_touch`` allows one by one.
    """
    if not scopes or resource.kind == SELF:
        return True
    if resource.kind in NAMED_KINDS and not resource.name:
        return any(scope.kind == resource.kind for scope in scopes)
    return any(scope.covers(resource) for scope in scopes)


def _permission_check(principal: "Principal", permissions: tuple[str, ...]) -> None:
    if not any(permission in principal.permissions for permission in permissions):
        raise PermissionDenied(f"missing permission {' or '.join(permissions)}")


def decide(principal: "Principal", permissions: tuple[str, ...], resource: Resource) -> None:
    """The one decision: PermissionDenied unless ``principal`` holds one of ``permissions`` on ``resource``."""
    _permission_check(principal, permissions)
    if not may_touch(principal.scopes, resource):
        raise PermissionDenied(f"this key may not access {resource}")


@dataclass(frozen=True)
class Call:
    """What a resource resolver may read of an HTTP request or a WebSocket handshake."""

    kwargs: Mapping[str, object]  # the route's URL parameters
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]  # the last value of each query parameter
    principal: "Principal"
    # The last value of each field of a dashboard form's POST (a page that creates where the form says).
    form: Mapping[str, str] = field(default_factory=dict)


# Names the resource of a call (and may raise the dialect's own 400 or 404 while doing so).
Resolver = Callable[[Call], Resource]


@dataclass(frozen=True)
class Need:
    """What one method of one route needs: any of ``permissions``, on the resource ``resource`` names."""

    permissions: tuple[str, ...]
    resource: Resolver

    def __init__(self, *permissions: str, resource: Resolver) -> None:
        object.__setattr__(self, "permissions", permissions)
        object.__setattr__(self, "resource", resource)


def whole(kind: str) -> Resolver:
    """The resolver of a kind as a whole (a listing, the audit log, metrics)."""
    resource = Resource(kind)
    return lambda call: resource


def named(kind: str, parameter: str) -> Resolver:
    """The resolver of a resource named by the URL parameter ``parameter``."""

    def resolve(call: Call) -> Resource:
        return Resource(kind, str(call.kwargs[parameter]))

    return resolve


def need_resolve(need: Need, call: Call) -> Resource:
    """The resource ``need`` names for ``call``, resolved once the caller holds one of its permissions.

    The permissions come first, so a caller holding none of them learns nothing from a
    resolver's own 400 or 404 (which namespace ids exist, say); ``decide`` does the rest.
    """
    _permission_check(call.principal, need.permissions)
    return need.resource(call)


def need_decide(need: Need, call: Call) -> Resource:
    """Resolve ``need``'s resource for ``call`` and decide; the resource, for the caller's audit rows."""
    resource = need_resolve(need, call)
    decide(call.principal, need.permissions, resource)
    return resource
