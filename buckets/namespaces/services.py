"""The namespaces dialect's rules for namespaces: naming, access, create / update / delete, on the storage core.

A namespace is a bucket. A non-secret namespace's bucket is ``APP_<name>``, so
the bucket API shows it under its name; bucket names are global, so a second
non-secret namespace of that name (in another application, or beside a bucket
created through the bucket API) is a 409. A secret namespace's bucket is
``SYS_secrets_.ns.<id hex>``: the bucket API only builds ``APP_`` names, and
'.' is outside the secrets API's environment ids, so no other dialect can
name it. Its names are unique per application only.

Access is declared by the routes (``views``) and decided before a handler runs, on
``namespace:<applicationId>/<name>`` (``access``); an operation here receives the resource
that was decided (``decided``) and acts only on the namespace that still is it. What only
the request's values can say is decided here with the same function: the name a create
or a rename gives. Each operation checks the request's values (``inputs``) once access is
decided, so a caller without access learns nothing from a 400; it runs in one transaction
with its audit row and records its own refusals (``kvsite.access.audit``). Entries are
``entries``, bulk calls ``bulk``, versions, rotation and rollback ``versions``.
"""

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from buckets.core import clock, store
from buckets.core.exceptions import BucketExists
from buckets.core.names import APP_PREFIX, SYS_SECRETS_PREFIX
from buckets.models import Bucket, Namespace
from buckets.namespaces import inputs
from buckets.namespaces.access import (
    actor_decide,
    actor_reaches,
    namespace_decided,
    namespace_resource,
    secrets_withheld,
)
from buckets.namespaces.exceptions import NamespaceExists, NamespaceNotEmpty, NamespaceNotFound
from kvsite.access.audit import Action, AuditActor, audit_operation
from kvsite.access.guard import Resource
from kvsite.access.permissions import NAMESPACE_WRITE

SECRET_BUCKET_PREFIX = SYS_SECRETS_PREFIX + ".ns."
# Secret namespaces keep "every version": the core's maximum, 64 per entry.
SECRET_HISTORY = store.MAX_HISTORY
PLAIN_HISTORY = 10


# --- Naming and lookup ---------------------------------------------------------------------


def namespace_bucket_name(*, namespace_id: uuid.UUID, name: str, is_secret: bool) -> str:
    """The internal bucket of a namespace (see the module docstring)."""
    if is_secret:
        return SECRET_BUCKET_PREFIX + namespace_id.hex
    return APP_PREFIX + name


def namespace_for(*, namespace_id: uuid.UUID, decided: Resource | None = None, for_update: bool = False) -> Namespace:
    """The namespace with its bucket; NamespaceNotFound (404) if there is none.

    NamespaceChanged (409) if it is no longer ``decided``, the resource access was decided
    on (``access.namespace_decided``); under ``for_update`` that holds until the commit.
    """
    rows = Namespace.objects.select_related("bucket")
    if for_update:
        rows = rows.select_for_update(of=("self",))
    namespace = rows.filter(pk=namespace_id).first()
    if namespace is None:
        raise NamespaceNotFound(namespace_id)
    return namespace_decided(namespace, decided)


def namespace_audit_name(namespace_id: uuid.UUID) -> str:
    """The name a namespace's audit rows carry (its bucket's); "" if there is no such namespace."""
    return Namespace.objects.filter(pk=namespace_id).values_list("bucket__name", flat=True).first() or ""


@dataclass(frozen=True)
class ShownNamespace:
    """A namespace as one caller is shown it: a secret one's description only with kv-secret:read."""

    namespace: Namespace
    description_shown: bool


def namespace_shown(*, namespace: Namespace, actor: AuditActor) -> ShownNamespace:
    """What ``actor`` is shown of ``namespace`` (``access.secrets_withheld``)."""
    return ShownNamespace(namespace=namespace, description_shown=not secrets_withheld(actor, namespace))


# --- Namespaces ----------------------------------------------------------------------------


def namespace_list(*, application_id: str | None = None, actor: AuditActor) -> list[Namespace]:
    """Namespaces by application and name; only those the actor's scopes reach."""
    with audit_operation(actor=actor, action=Action.READ, detail="namespaces listed") as scope:
        rows = Namespace.objects.select_related("bucket").order_by("application_id", "name")
        if application_id:
            rows = rows.filter(application_id=application_id)
            scope.detail = f"namespaces of application {application_id} listed"
        return [row for row in rows if actor_reaches(actor, row)]


def namespace_get(*, namespace_id: uuid.UUID, decided: Resource | None = None, actor: AuditActor) -> Namespace:
    with audit_operation(actor=actor, action=Action.READ, detail=f"namespace {namespace_id}") as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided)
        scope.namespace = namespace.bucket.name
        return namespace


def _bucket_create(*, name: str, bucket: str, is_secret: bool, description: str) -> Bucket:
    try:
        return store.bucket_create(
            name=bucket,
            description=description if not is_secret else "",
            history=SECRET_HISTORY if is_secret else PLAIN_HISTORY,
            sealed=is_secret,
        )
    except BucketExists:
        raise NamespaceExists(
            f"a bucket named {name!r} exists already; a non-secret namespace is the bucket of its name, "
            "and bucket names are global"
        ) from None


def _check_unique(*, application_id: str, name: str, exclude: uuid.UUID | None = None) -> None:
    rows = Namespace.objects.filter(application_id=application_id, name=name)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    if rows.exists():
        raise NamespaceExists(f"application {application_id!r} has a namespace {name!r} already")


def namespace_create(
    *,
    name: str,
    application_id: str,
    description: str = "",
    is_secret: bool = False,
    default_ttl_seconds: int | None = None,
    actor: AuditActor,
) -> Namespace:
    """Create a namespace and its bucket; NamespaceExists (409) if the name is taken.

    The route declares ``kv-namespace:write`` on namespaces as a whole; the body names the
    namespace, so the decision on it is taken here, once its name is read and before any
    other value is looked at.
    """
    with audit_operation(actor=actor, action=Action.WRITE, detail="namespace created") as scope:
        inputs.check_name(name)
        inputs.check_application_id(application_id)
        actor_decide(actor, NAMESPACE_WRITE, namespace_resource(application_id=application_id, name=name))
        inputs.check_description(description)
        inputs.check_is_secret(is_secret)
        default_ttl_seconds = inputs.check_ttl(default_ttl_seconds, field="defaultTtlSeconds")
        namespace_id = uuid.uuid4()
        scope.namespace = bucket_name = namespace_bucket_name(namespace_id=namespace_id, name=name, is_secret=is_secret)
        _check_unique(application_id=application_id, name=name)
        bucket = _bucket_create(name=name, bucket=bucket_name, is_secret=is_secret, description=description)
        now = clock.now()
        try:
            with transaction.atomic():
                namespace = Namespace.objects.create(
                    id=namespace_id,
                    bucket=bucket,
                    name=name,
                    description=description,
                    application_id=application_id,
                    is_secret=is_secret,
                    default_ttl_seconds=default_ttl_seconds,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:  # created concurrently
            raise NamespaceExists(f"application {application_id!r} has a namespace {name!r} already") from None
        scope.detail = f"namespace {namespace.id} created"
        return namespace


@dataclass(frozen=True)
class _Unset:
    pass


UNSET = _Unset()


def namespace_update(
    *,
    namespace_id: uuid.UUID,
    name: str | _Unset = UNSET,
    application_id: str | _Unset = UNSET,
    description: str | _Unset = UNSET,
    is_secret: bool | _Unset = UNSET,
    default_ttl_seconds: int | _Unset | None = UNSET,
    decided: Resource | None = None,
    actor: AuditActor,
) -> Namespace:
    """Change the fields given (UNSET leaves one as it is).

    A rename or a move to another application needs ``kv-namespace:write`` on the new name
    as well as on the old one (decided before the body was read, and still the name under
    the row's lock: ``decided``). Switching ``is_secret`` or renaming a non-secret namespace
    moves it to another bucket, so both need a namespace without live entries (409
    otherwise); the old bucket, with whatever history it kept, is deleted. The old bucket's
    row is locked first, so no entry is written meanwhile.
    """
    with audit_operation(actor=actor, action=Action.WRITE, detail=f"namespace {namespace_id} updated") as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided, for_update=True)
        scope.namespace = namespace.bucket.name
        new_name = namespace.name if isinstance(name, _Unset) else inputs.check_name(name)
        new_application = (
            namespace.application_id
            if isinstance(application_id, _Unset)
            else inputs.check_application_id(application_id)
        )
        renamed = (new_name, new_application) != (namespace.name, namespace.application_id)
        if renamed:
            actor_decide(actor, NAMESPACE_WRITE, namespace_resource(application_id=new_application, name=new_name))
        if not isinstance(description, _Unset):
            namespace.description = inputs.check_description(description)
        if not isinstance(default_ttl_seconds, _Unset):
            namespace.default_ttl_seconds = inputs.check_ttl(default_ttl_seconds, field="defaultTtlSeconds")
        new_secret = namespace.is_secret if isinstance(is_secret, _Unset) else inputs.check_is_secret(is_secret)
        if renamed:
            _check_unique(application_id=new_application, name=new_name, exclude=namespace.id)
        new_bucket = namespace_bucket_name(namespace_id=namespace.id, name=new_name, is_secret=new_secret)
        if new_bucket != namespace.bucket.name:
            _bucket_move(namespace=namespace, name=new_name, bucket=new_bucket, is_secret=new_secret)
        namespace.name, namespace.application_id, namespace.is_secret = new_name, new_application, new_secret
        namespace.updated_at = clock.now()
        try:
            with transaction.atomic():
                namespace.save()
        except IntegrityError:
            raise NamespaceExists(f"application {new_application!r} has a namespace {new_name!r} already") from None
        return namespace


def _bucket_move(*, namespace: Namespace, name: str, bucket: str, is_secret: bool) -> None:
    old = Bucket.objects.select_for_update().get(pk=namespace.bucket_id)
    if store.live_entries(bucket=old).exists():
        if is_secret != namespace.is_secret:
            raise NamespaceNotEmpty("isSecretNamespace cannot change while the namespace holds entries")
        raise NamespaceNotEmpty("a non-secret namespace holding entries cannot be renamed: its bucket carries its name")
    namespace.bucket = _bucket_create(name=name, bucket=bucket, is_secret=is_secret, description=namespace.description)
    namespace.save(update_fields=["bucket"])
    store.bucket_delete(name=old.name)


def namespace_delete(*, namespace_id: uuid.UUID, decided: Resource | None = None, actor: AuditActor) -> None:
    """Delete a namespace with its bucket: every entry and all kept history."""
    with audit_operation(actor=actor, action=Action.DELETE, detail=f"namespace {namespace_id} deleted") as scope:
        namespace = namespace_for(namespace_id=namespace_id, decided=decided, for_update=True)
        scope.namespace = namespace.bucket.name
        Namespace.objects.filter(pk=namespace.pk).delete()
        store.bucket_delete(name=namespace.bucket.name)
