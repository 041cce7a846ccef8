"""Namespaces of the KV Service dialect: metadata around one bucket of the storage core each.

A namespace is a bucket. A non-secret namespace's bucket is ``APP_<name>``, so
the bucket API shows it under its name; bucket names are global, so a second
non-secret namespace of that name (in another application, or beside a bucket
created through the bucket API) is a 409. A secret namespace's bucket is
``SYS_secrets_.ns.<id hex>``: the bucket API only builds ``APP_`` names, and
'.' is outside the secrets API's environment ids, so no other dialect can
name it. Its names are unique per application only.

Every operation authorizes (``kvsite.access.permissions``), runs in one transaction
with its audit row, and records refusals (``kvsite.access.audit``). Entries live in
``buckets.namespaces.entries``.
"""

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from buckets.core import clock, store
from buckets.core.exceptions import BucketExists
from buckets.core.keys import has_control_characters
from buckets.core.names import APP_PREFIX, SYS_SECRETS_PREFIX, is_plain_name
from buckets.models import Bucket, Namespace
from kvsite.access.audit import Action, AuditActor, audit_operation
from kvsite.access.permissions import NAMESPACE_DELETE, NAMESPACE_READ, NAMESPACE_WRITE
from kvsite.http.errors import AlreadyExists, DomainError, InvalidArgument, NotFound
from kvsite.http.jsonbody import has_lone_surrogate, json_whole_number

SECRET_BUCKET_PREFIX = SYS_SECRETS_PREFIX + ".ns."
# Secret namespaces keep "every version": the core's maximum, 64 per entry.
SECRET_HISTORY = store.MAX_HISTORY
PLAIN_HISTORY = 10
MAX_DESCRIPTION = 4096
MAX_APPLICATION_ID = 100


class NamespaceNotFound(NotFound):
    def __init__(self, namespace_id: uuid.UUID | str) -> None:
        super().__init__(f"namespace {str(namespace_id)!r} not found")


class NamespaceExists(AlreadyExists):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class NamespaceNotEmpty(DomainError):
    status, code = 409, "failed_precondition"


# --- Naming ------------------------------------------------------------------------------


def namespace_bucket_name(*, namespace_id: uuid.UUID, name: str, is_secret: bool) -> str:
    """The internal bucket of a namespace (see the module docstring)."""
    if is_secret:
        return SECRET_BUCKET_PREFIX + namespace_id.hex
    return APP_PREFIX + name


def _check_name(name: object) -> str:
    if not is_plain_name(name):
        raise InvalidArgument("name must be 1-64 letters, digits, '-' or '_'")
    if name.startswith("SYS_"):
        raise InvalidArgument("names starting with SYS_ are reserved")
    return name


def _check_application_id(application_id: object) -> str:
    if not isinstance(application_id, str) or not application_id.strip():
        raise InvalidArgument("applicationId is required")
    if len(application_id) > MAX_APPLICATION_ID or has_control_characters(application_id):
        raise InvalidArgument(f"applicationId must be at most {MAX_APPLICATION_ID} characters without controls")
    if has_lone_surrogate(application_id):
        raise InvalidArgument("applicationId has a lone surrogate (such as \\ud800), which is not Unicode text")
    return application_id


def _check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    if has_lone_surrogate(description):
        # An exact body keeps one, but a database column holds UTF-8 only.
        raise InvalidArgument("description has a lone surrogate (such as \\ud800), which is not Unicode text")
    if "\x00" in description:
        # PostgreSQL's text columns cannot hold NUL (a DataError, so a 500, if it got that far).
        raise InvalidArgument("description must not contain NUL characters")
    return description


def check_ttl(ttl: object, *, field: str) -> int | None:
    """A TTL in seconds: null, or 1 up to the core's maximum."""
    if ttl is None:
        return None
    seconds = json_whole_number(ttl)
    if seconds is None or not 1 <= seconds <= store.MAX_TTL_SECONDS:
        raise InvalidArgument(f"{field} must be null or between 1 and {store.MAX_TTL_SECONDS}")
    return seconds


# --- Lookup --------------------------------------------------------------------------------


def namespace_for(*, namespace_id: uuid.UUID, for_update: bool = False) -> Namespace:
    """The namespace with its bucket; NamespaceNotFound (404) if there is none."""
    rows = Namespace.objects.select_related("bucket")
    if for_update:
        rows = rows.select_for_update(of=("self",))
    namespace = rows.filter(pk=namespace_id).first()
    if namespace is None:
        raise NamespaceNotFound(namespace_id)
    return namespace


def namespace_access(*, namespace_id: uuid.UUID, actor: AuditActor, permission: str) -> Namespace:
    """The namespace, once ``actor`` holds ``permission`` on its bucket.

    The permission is checked before the lookup too, so a caller without it
    learns nothing about which ids exist.
    """
    actor.require(permission)
    namespace = namespace_for(namespace_id=namespace_id)
    actor.require(permission, bucket=namespace.bucket.name)
    return namespace


def actor_may(actor: AuditActor, permission: str, *, bucket: str) -> bool:
    """Whether ``actor`` holds ``permission`` on ``bucket`` (the system holds all)."""
    return actor.principal is None or actor.principal.has(permission, bucket=bucket)


# --- Reads ---------------------------------------------------------------------------------


def namespace_list(*, application_id: str | None = None, actor: AuditActor) -> list[Namespace]:
    """Namespaces by application and name; only those whose bucket the actor may reach."""
    with audit_operation(actor=actor, action=Action.READ, detail="namespaces listed") as scope:
        actor.require(NAMESPACE_READ)
        rows = Namespace.objects.select_related("bucket").order_by("application_id", "name")
        if application_id:
            rows = rows.filter(application_id=application_id)
            scope.detail = f"namespaces of application {application_id} listed"
        return [row for row in rows if actor_may(actor, NAMESPACE_READ, bucket=row.bucket.name)]


def namespace_get(*, namespace_id: uuid.UUID, actor: AuditActor) -> Namespace:
    with audit_operation(actor=actor, action=Action.READ, detail=f"namespace {namespace_id}") as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=NAMESPACE_READ)
        scope.namespace = namespace.bucket.name
        return namespace


# --- Writes --------------------------------------------------------------------------------


def _bucket_create(*, name: str, bucket: str, is_secret: bool, description: str) -> Bucket:
    try:
        return store.bucket_create(
            name=bucket,
            description=description if not is_secret else "",
            history=SECRET_HISTORY if is_secret else PLAIN_HISTORY,
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
    """Create a namespace and its bucket; NamespaceExists (409) if the name is taken."""
    with audit_operation(actor=actor, action=Action.WRITE, detail="namespace created") as scope:
        actor.require(NAMESPACE_WRITE)
        _check_name(name)
        _check_application_id(application_id)
        _check_description(description)
        if not isinstance(is_secret, bool):
            raise InvalidArgument("isSecretNamespace must be true or false")
        default_ttl_seconds = check_ttl(default_ttl_seconds, field="defaultTtlSeconds")
        namespace_id = uuid.uuid4()
        scope.namespace = bucket_name = namespace_bucket_name(namespace_id=namespace_id, name=name, is_secret=is_secret)
        actor.require(NAMESPACE_WRITE, bucket=bucket_name)
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
    actor: AuditActor,
) -> Namespace:
    """Change the fields given (UNSET leaves one as it is).

    Switching ``is_secret`` or renaming a non-secret namespace moves it to
    another bucket, so both need a namespace without live entries (409
    otherwise); the old bucket, with whatever history it kept, is deleted. The
    old bucket's row is locked first, so no entry is written meanwhile.
    """
    with audit_operation(actor=actor, action=Action.WRITE, detail=f"namespace {namespace_id} updated") as scope:
        actor.require(NAMESPACE_WRITE)
        namespace = namespace_for(namespace_id=namespace_id, for_update=True)
        scope.namespace = namespace.bucket.name
        actor.require(NAMESPACE_WRITE, bucket=namespace.bucket.name)
        new_name = namespace.name if isinstance(name, _Unset) else _check_name(name)
        new_application = (
            namespace.application_id if isinstance(application_id, _Unset) else _check_application_id(application_id)
        )
        if not isinstance(description, _Unset):
            namespace.description = _check_description(description)
        if not isinstance(default_ttl_seconds, _Unset):
            namespace.default_ttl_seconds = check_ttl(default_ttl_seconds, field="defaultTtlSeconds")
        new_secret = namespace.is_secret if isinstance(is_secret, _Unset) else is_secret
        if not isinstance(new_secret, bool):
            raise InvalidArgument("isSecretNamespace must be true or false")
        if (new_name, new_application) != (namespace.name, namespace.application_id):
            _check_unique(application_id=new_application, name=new_name, exclude=namespace.id)
        new_bucket = namespace_bucket_name(namespace_id=namespace.id, name=new_name, is_secret=new_secret)
        if new_bucket != namespace.bucket.name:
            actor.require(NAMESPACE_WRITE, bucket=new_bucket)
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


def namespace_delete(*, namespace_id: uuid.UUID, actor: AuditActor) -> None:
    """Delete a namespace with its bucket: every entry and all kept history."""
    with audit_operation(actor=actor, action=Action.DELETE, detail=f"namespace {namespace_id} deleted") as scope:
        namespace = namespace_access(namespace_id=namespace_id, actor=actor, permission=NAMESPACE_DELETE)
        scope.namespace = namespace.bucket.name
        Namespace.objects.filter(pk=namespace.pk).delete()
        store.bucket_delete(name=namespace.bucket.name)
