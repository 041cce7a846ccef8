"""What the namespaces API touches, named as clients name it: ``namespace:<applicationId>/<name>``.

The routes declare their access (``views``); ``kvsite.access.guard.decide`` answers before
a handler runs. What a declaration cannot say is decided here, on the same resource, with
the same function: the name a create or a rename gives (in the body), the permission a
namespace's kind asks for (rollback), what a caller is shown of a secret namespace
(``kv-secret:read``) and which rows a listing shows. No pattern ever meets an internal
bucket name (``APP_…``, ``SYS_secrets_.ns.…``).
"""

from buckets.core.exceptions import PermissionDenied
from buckets.models import Namespace
from buckets.namespaces.exceptions import NamespaceChanged, NamespaceNotFound
from kvsite.access.audit import AuditActor
from kvsite.access.guard import NAMESPACE, Call, Resource, decide, whole
from kvsite.access.permissions import SECRET_READ

# The listing and the creation, which name no namespace in their URL.
NAMESPACES = whole(NAMESPACE)


def namespace_resource(*, application_id: str, name: str) -> Resource:
    """The resource of the namespace ``name`` of application ``application_id``.

    Names hold no '/' and application ids may not either (``inputs.check_application_id``),
    so ``namespace:app-1/*`` names application app-1's namespaces and no other's.
    """
    return Resource(NAMESPACE, f"{application_id}/{name}")


def resource_of(namespace: Namespace) -> Resource:
    """The resource ``namespace`` is, as it is now."""
    return namespace_resource(application_id=namespace.application_id, name=namespace.name)


def namespace_named(call: Call) -> Resource:
    """The resolver of the routes with a namespace id in their URL: NamespaceNotFound (404) for an unknown one."""
    namespace_id = call.kwargs["ns_id"]
    row = Namespace.objects.filter(pk=namespace_id).values_list("application_id", "name").first()
    if row is None:
        raise NamespaceNotFound(str(namespace_id))
    application_id, name = row
    return namespace_resource(application_id=application_id, name=name)


def namespace_decided(namespace: Namespace, decided: Resource | None) -> Namespace:
    """``namespace`` if it is still the one access was decided on (``decided``; None: nobody decided, the system acts).

    The resolver read its name before the handler's transaction; a rename or a move in
    between is NamespaceChanged (409): the caller tries again and is decided again.
    """
    if decided is not None and resource_of(namespace) != decided:
        raise NamespaceChanged(namespace.id)
    return namespace


def actor_decide(actor: AuditActor, permission: str, resource: Resource) -> None:
    """``guard.decide`` for ``actor`` (the system, acting for nobody, holds every permission)."""
    if actor.principal is not None:
        decide(actor.principal, (permission,), resource)


def actor_may(actor: AuditActor, permission: str, namespace: Namespace) -> bool:
    """Whether ``actor`` holds ``permission`` on ``namespace``: the same decision, as a yes or no."""
    try:
        actor_decide(actor, permission, resource_of(namespace))
    except PermissionDenied:
        return False
    return True


def actor_reaches(actor: AuditActor, namespace: Namespace) -> bool:
    """Whether ``actor``'s scopes reach ``namespace`` (a listing's rows; the permission was declared)."""
    return actor.principal is None or actor.principal.may_touch(resource_of(namespace))


def secrets_withheld(actor: AuditActor, namespace: Namespace) -> bool:
    """Whether ``actor`` is shown only key paths of ``namespace``: a secret one, without kv-secret:read.

    Besides values, a secret namespace's description and its entries' metadata, types,
    versions, times and authors are withheld: all of it is the secret's business.
    """
    return namespace.is_secret and not actor_may(actor, SECRET_READ, namespace)
