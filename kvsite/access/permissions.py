"""The permission vocabulary, roles, and the principal a request acts as."""

from dataclasses import dataclass, field

from kvsite.access.guard import Resource, Scope, may_touch

NAMESPACE_READ = "kv-namespace:read"
NAMESPACE_WRITE = "kv-namespace:write"
NAMESPACE_DELETE = "kv-namespace:delete"
ENTRY_READ = "kv-entry:read"
ENTRY_WRITE = "kv-entry:write"
ENTRY_DELETE = "kv-entry:delete"
SECRET_ROTATE = "kv-secret:rotate"
# Reveal a secret's value; listing and info need this or SECRET_WRITE.
SECRET_READ = "kv-secret:read"
SECRET_WRITE = "kv-secret:write"
AUDIT_READ = "kv-audit:read"
METRICS_READ = "metrics:read"
# Issue and revoke API keys (GET/POST /api/v1/apikeys).
APIKEYS_MANAGE = "apikeys:manage"
CONFIG_READ = "config:read"
CONFIG_WRITE = "config:write"

ALL_PERMISSIONS = frozenset(
    {
        NAMESPACE_READ,
        NAMESPACE_WRITE,
        NAMESPACE_DELETE,
        ENTRY_READ,
        ENTRY_WRITE,
        ENTRY_DELETE,
        SECRET_ROTATE,
        SECRET_READ,
        SECRET_WRITE,
        AUDIT_READ,
        METRICS_READ,
        APIKEYS_MANAGE,
        CONFIG_READ,
        CONFIG_WRITE,
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "reader": frozenset({NAMESPACE_READ, ENTRY_READ, CONFIG_READ}),
    "writer": frozenset({NAMESPACE_READ, ENTRY_READ, ENTRY_WRITE, ENTRY_DELETE, CONFIG_READ, CONFIG_WRITE}),
    "admin": ALL_PERMISSIONS,
    # Only the permissions listed on the key (createapikey --permission).
    "none": frozenset(),
}


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: an API key or a staff user, with what it may do.

    DRF puts this in ``request.user``; ``is_authenticated`` makes it usable there.
    """

    kind: str  # "api_key" | "user"
    id: int
    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    # What the key is limited to (kvsite.access.guard); empty: everything its permissions allow.
    scopes: tuple[Scope, ...] = ()
    # Owner of the items this principal sees (/kv/items); "" means none.
    account: str = ""

    is_authenticated = True
    is_anonymous = False

    def may_touch(self, resource: Resource) -> bool:
        """Whether this principal's scopes reach ``resource`` (its permissions are ``guard.decide``'s to check)."""
        return may_touch(self.scopes, resource)

    def allows(self, permission: str, resource: Resource) -> bool:
        """Whether ``guard.decide`` would allow ``permission`` on ``resource`` (for a page to show; never to decide)."""
        return permission in self.permissions and self.may_touch(resource)
