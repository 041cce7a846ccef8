"""The bucket API's rules over the storage core: public bucket names, buckets namespaces own, audited bucket changes.

A client names a user bucket by its public name; the core knows it as ``APP_<name>``
(``buckets.core.names``), and no other kind of bucket is reachable. Who may touch a
bucket is decided before these run, on the resource each route declares
(``buckets.kv.access``); a bucket a namespace owns is read here, never written.
Creating and deleting a bucket is audited: the core records a success in the
change's own transaction, and a refusal is recorded here (``bucket_refusals``,
which the views also wrap around the access decision).
"""

from contextlib import AbstractContextManager

from buckets.core import store
from buckets.core.names import APP_PREFIX, app_bucket, is_plain_name, new_app_bucket
from buckets.kv.access import bucket_row_resource
from buckets.kv.exceptions import BucketOwnedByNamespace
from buckets.models import Bucket
from kvsite.access.audit import Action as AuditAction
from kvsite.access.audit import AuditActor, AuditScope, audit_bucket_created, audit_bucket_deleted, audit_refusals
from kvsite.access.guard import NAMESPACE, Resource
from kvsite.access.permissions import Principal


def bucket_audit_name(name: str) -> str:
    """How audit rows name the user bucket ``name`` (``""``: not known yet, the body is unread, or malformed)."""
    return APP_PREFIX + name if is_plain_name(name) else ""


def bucket_refusals(*, actor: AuditActor, action: str, name: str) -> AbstractContextManager[AuditScope]:
    """Record a refusal of a change to the user bucket ``name`` raised in the block."""
    return audit_refusals(actor=actor, action=action, namespace=bucket_audit_name(name))


def bucket_for_reads(*, name: str) -> str:
    """The internal name of the user bucket ``name`` to read (a namespace's bucket too, under its scope)."""
    return app_bucket(name)


def bucket_for_writes(*, name: str, resource: Resource) -> str:
    """The internal name of the user bucket ``name`` to change; one a namespace owns is refused (409).

    ``resource`` is what the route decided on: a namespace's bucket is only written
    through the namespaces API, which authorizes, checks and audits its entries.
    """
    if resource.kind == NAMESPACE:
        raise BucketOwnedByNamespace(bucket=name, namespace=resource.name)
    return app_bucket(name)


def bucket_list(*, principal: Principal) -> list[Bucket]:
    """The user buckets ``principal``'s scopes reach, each as the resource it is (a bucket, or its namespace)."""
    buckets = store.bucket_list(prefix=APP_PREFIX).select_related("namespace")
    return [bucket for bucket in buckets if principal.may_touch(bucket_row_resource(bucket))]


def bucket_get(*, name: str) -> Bucket:
    """The user bucket ``name``."""
    return store.bucket_get(name=app_bucket(name))


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
        return store.bucket_create(
            name=scope.namespace,
            description=description,
            ttl_seconds=ttl_seconds,
            max_value_size=max_value_size,
            max_bytes=max_bytes,
            history=history,
            record=audit_bucket_created(actor),
        )


def bucket_delete(*, actor: AuditActor, name: str, resource: Resource) -> None:
    """Delete the user bucket ``name`` with all its keys; one a namespace owns is refused (each refusal audited)."""
    with bucket_refusals(actor=actor, action=AuditAction.DELETE, name=name):
        store.bucket_delete(name=bucket_for_writes(name=name, resource=resource), record=audit_bucket_deleted(actor))
