"""The bucket API's rules over the storage core: public bucket names, who may touch them, audited bucket changes.

A client names a user bucket by its public name; the core knows it as ``APP_<name>``
(``buckets.core.names``). Permissions are matched against the public name, the
core is called with the internal one, and no other kind of bucket is reachable.
Creating and deleting a bucket is audited: the core records a success in the
change's own transaction, and a refusal is recorded here.
"""

from buckets.core import store
from buckets.core.names import APP_PREFIX, app_bucket, new_app_bucket, public_name
from buckets.models import Bucket
from kvsite.access.audit import Action as AuditAction
from kvsite.access.audit import AuditActor, audit_bucket_created, audit_bucket_deleted, audit_refusals
from kvsite.access.permissions import NAMESPACE_DELETE, NAMESPACE_READ, NAMESPACE_WRITE, Principal


def bucket_authorize(*, principal: Principal, name: str, permission: str) -> str:
    """Check ``permission`` on the user bucket ``name``; return its internal name."""
    internal = app_bucket(name)
    principal.require(permission, bucket=name)
    return internal


def bucket_list(*, principal: Principal) -> list[Bucket]:
    """The user buckets ``principal`` may see."""
    principal.require(NAMESPACE_READ)
    return [
        bucket
        for bucket in store.bucket_list(prefix=APP_PREFIX)
        if principal.can_access_bucket(public_name(bucket.name))
    ]


def bucket_get(*, principal: Principal, name: str) -> Bucket:
    """The user bucket ``name``, once ``principal`` may read it."""
    return store.bucket_get(name=bucket_authorize(principal=principal, name=name, permission=NAMESPACE_READ))


def bucket_create(
    *,
    actor: AuditActor,
    name: str,
    description: str,
    ttl_seconds: int,
    max_value_size: int | None,
    max_bytes: int | None,
    history: int,
) -> Bucket:
    """Create the user bucket ``name`` (a reserved or taken name is refused, and the refusal audited)."""
    with audit_refusals(actor=actor, action=AuditAction.WRITE) as scope:
        scope.namespace = new_app_bucket(name)
        actor.require(NAMESPACE_WRITE, bucket=name)
        return store.bucket_create(
            name=scope.namespace,
            description=description,
            ttl_seconds=ttl_seconds,
            max_value_size=max_value_size,
            max_bytes=max_bytes,
            history=history,
            record=audit_bucket_created(actor),
        )


def bucket_delete(*, actor: AuditActor, name: str) -> None:
    """Delete the user bucket ``name`` with all its keys (a refusal is audited)."""
    with audit_refusals(actor=actor, action=AuditAction.DELETE) as scope:
        scope.namespace = app_bucket(name)
        actor.require(NAMESPACE_DELETE, bucket=name)
        store.bucket_delete(name=scope.namespace, record=audit_bucket_deleted(actor))
