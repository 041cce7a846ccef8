"""Secrets: values sealed with AES-256-GCM, stored through the KV core.

Each Ironflow environment is one ``SYS_secrets_<environment>`` bucket, created
on first write; a secret is a key there, each kept version a sealed envelope
(see ``buckets/core/sealing.py``). Every operation runs in one transaction with its
audit row and records its failures (see ``kvsite/access/audit.py``), so every
function here takes the acting ``AuditActor``.

Access is the routes' to declare and ``kvsite.access.guard`` to decide, before an
operation runs, on ``secrets:<environment>`` (``views``): revealing a value needs
``kv-secret:read``; writing, renaming and deleting need ``kv-secret:write``; listing
and info need either. A key's scopes reach an environment only as ``secrets:<glob>``;
no pattern is ever matched against the internal bucket name. The dashboard's pages
call these functions for staff users, who hold every permission.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from buckets.core import reseal, sealing, store
from buckets.core.exceptions import (
    BucketNotFound,
    InvalidArgument,
    KeyExists,
    KeyNotFound,
    MasterKeyMissing,
    SealedValueUnreadable,
    ValueTooLarge,
)
from buckets.core.keys import validate_key
from buckets.core.names import SYS_SECRETS_PREFIX, is_plain_name
from buckets.models import Bucket, Entry
from kvsite.access.audit import Action, AuditActor, audit_bucket_created, audit_operation
from secrets_app.exceptions import EnvironmentMissing, SecretExists, SecretNotFound
from secrets_app.models import SecretMetadata

logger = logging.getLogger(__name__)

# Every kept version can be re-read (and re-sealed by rotation); 64 is the core's limit.
SECRET_HISTORY = 64
MAX_SECRET_BYTES = 64 * 1024
MAX_DESCRIPTION = 4096
# version + id length + id (<= 32) + nonce + tag
_ENVELOPE_OVERHEAD = 2 + 32 + sealing.NONCE_BYTES + sealing.TAG_BYTES


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown about a secret without revealing it; deliberately has no value."""

    name: str
    revision: int
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RevealedSecret:
    name: str
    value: str
    revision: int

    def __repr__(self) -> str:
        return f"RevealedSecret(name={self.name!r}, revision={self.revision})"


def environment_checked(environment: str | None) -> str:
    """An environment id (the API's X-Ironflow-Environment-ID header, a dashboard URL): 400 if missing or malformed.

    The message names the environment id, not the header: the dashboard shows it too.
    """
    if not environment:
        raise EnvironmentMissing()
    if not is_plain_name(environment):
        raise InvalidArgument("environment id must be 1-64 letters, digits, '-' or '_'")
    return environment


def environment_bucket(environment: str | None) -> str:
    """The internal bucket of an environment id."""
    return SYS_SECRETS_PREFIX + environment_checked(environment)


def environment_audit_name(environment: str) -> str:
    """The name an environment's audit rows carry (its bucket's); "" for a missing or malformed id."""
    try:
        return environment_bucket(environment)
    except InvalidArgument:
        return ""


def _check_value(value: str) -> bytes:
    plaintext = value.encode()
    if len(plaintext) > MAX_SECRET_BYTES:
        raise ValueTooLarge(f"a secret value may be at most {MAX_SECRET_BYTES} bytes")
    return plaintext


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description must be at most {MAX_DESCRIPTION} characters")
    return description


def _bucket_ensure(*, bucket: str, environment: str, actor: AuditActor) -> Bucket:
    """The environment's bucket, created (and audited) on first use."""
    return store.bucket_ensure(
        name=bucket,
        description=f"Secrets of environment {environment}",
        history=SECRET_HISTORY,
        max_value_size=MAX_SECRET_BYTES + _ENVELOPE_OVERHEAD,
        sealed=True,
        record=audit_bucket_created(actor),
    )


def _latest(*, bucket: str, name: str, environment: str) -> Entry:
    try:
        return store.entry_get(bucket=bucket, key=name)
    except (BucketNotFound, KeyNotFound):
        raise SecretNotFound(name, environment) from None


def secret_info_of(*, entry: Entry, metadata: SecretMetadata | None, bucket: str) -> SecretInfo:
    """What may be shown of the secret ``entry`` holds (never its value), with its kept description."""
    if metadata is not None:
        description, created_at = metadata.description, metadata.created_at
    else:
        # Not written through this module (or lost): the oldest kept version is the best answer.
        description, created_at = "", store.entry_history(bucket=bucket, key=entry.key)[0].created_at
    return SecretInfo(
        name=entry.key,
        revision=entry.revision,
        description=description,
        created_at=created_at,
        updated_at=entry.created_at,
    )


def _metadata(*, entry: Entry, name: str) -> SecretMetadata | None:
    return SecretMetadata.objects.filter(bucket_id=entry.bucket_id, name=name).first()


def _open(*, entry: Entry, bucket: str, name: str) -> bytes:
    try:
        return sealing.value_open(envelope=entry.value, bucket=bucket, key=name)
    except (SealedValueUnreadable, MasterKeyMissing) as error:
        # An operator must restore or re-key this value; the log line says which one, never its content.
        logger.warning("secret %s in %s (entry %s) cannot be opened: %s", name, bucket, entry.id, error.message)
        raise


# --- Writes ----------------------------------------------------------------------------


def secret_create(
    *, environment: str | None, name: str, value: str, description: str = "", actor: AuditActor
) -> SecretInfo:
    """Store a new secret; SecretExists (409) if the name is taken."""
    with audit_operation(actor=actor, action=Action.WRITE, key_path=name, detail="secret created") as scope:
        scope.namespace = bucket = environment_bucket(environment)
        validate_key(name)
        plaintext = _check_value(value)
        _check_description(description)
        bucket_row = _bucket_ensure(bucket=bucket, environment=environment, actor=actor)
        sealed = sealing.value_seal(plaintext=plaintext, bucket=bucket, key=name)
        try:
            entry = store.entry_create(bucket=bucket, key=name, value=sealed)
        except KeyExists:
            raise SecretExists(name, environment) from None
        metadata, _ = SecretMetadata.objects.update_or_create(
            bucket=bucket_row, name=name, defaults={"description": description, "created_at": entry.created_at}
        )
        scope.entry_id = entry.id
        return secret_info_of(entry=entry, metadata=metadata, bucket=bucket)


def secret_update(
    *, environment: str | None, name: str, value: str, description: str | None = None, actor: AuditActor
) -> SecretInfo:
    """Store a new version of an existing secret (a new revision); the description too if given."""
    with audit_operation(actor=actor, action=Action.WRITE, key_path=name, detail="new version") as scope:
        scope.namespace = bucket = environment_bucket(environment)
        plaintext = _check_value(value)
        if description is not None:
            _check_description(description)
        current = _latest(bucket=bucket, name=name, environment=environment)
        sealed = sealing.value_seal(plaintext=plaintext, bucket=bucket, key=name)
        entry = store.entry_put(bucket=bucket, key=name, value=sealed)
        metadata, _ = SecretMetadata.objects.get_or_create(
            bucket_id=entry.bucket_id,
            name=name,
            defaults={"description": description or "", "created_at": current.created_at},
        )
        if description is not None and metadata.description != description:
            metadata.description = description
            metadata.save(update_fields=["description"])
        scope.entry_id = entry.id
        return secret_info_of(entry=entry, metadata=metadata, bucket=bucket)


def secret_patch(
    *,
    environment: str | None,
    name: str,
    new_name: str | None = None,
    description: str | None = None,
    actor: AuditActor,
) -> SecretInfo:
    """Rename a secret (its whole history moves with it) and/or change its description.

    A rename re-seals every kept version for the new name (the associated data
    binds each ciphertext to its name) in place, through ``buckets.core.reseal``:
    revisions and timestamps stay, nothing new is revealed.
    """
    renaming = new_name is not None and new_name != name
    detail = f"renamed to {new_name}" if renaming else "description changed"
    with audit_operation(actor=actor, action=Action.WRITE, key_path=name, detail=detail) as scope:
        scope.namespace = bucket = environment_bucket(environment)
        if description is not None:
            _check_description(description)
        if renaming:
            validate_key(new_name)
            entry = _rename(bucket=bucket, environment=environment, name=name, new_name=new_name)
        else:
            entry = _latest(bucket=bucket, name=name, environment=environment)
        metadata = _metadata(entry=entry, name=entry.key)
        if description is not None:
            if metadata is None:
                created_at = store.entry_history(bucket=bucket, key=entry.key)[0].created_at
                metadata = SecretMetadata.objects.create(
                    bucket_id=entry.bucket_id, name=entry.key, description=description, created_at=created_at
                )
            elif metadata.description != description:
                metadata.description = description
                metadata.save(update_fields=["description"])
        scope.entry_id = entry.id
        return secret_info_of(entry=entry, metadata=metadata, bucket=bucket)


def _rename(*, bucket: str, environment: str, name: str, new_name: str) -> Entry:
    def reseal_for_new_name(entry: Entry) -> bytes:
        return sealing.value_reseal(envelope=entry.value, bucket=bucket, key=name, new_key=new_name)

    try:
        entry = reseal.entry_move(bucket=bucket, key=name, new_key=new_name, transform=reseal_for_new_name)
    except (BucketNotFound, KeyNotFound):
        raise SecretNotFound(name, environment) from None
    except KeyExists:
        raise SecretExists(new_name, environment) from None
    # A leftover row of a secret deleted under the new name must not shadow the moved one.
    SecretMetadata.objects.filter(bucket_id=entry.bucket_id, name=new_name).delete()
    SecretMetadata.objects.filter(bucket_id=entry.bucket_id, name=name).update(name=new_name)
    return entry


def secret_delete(*, environment: str | None, name: str, actor: AuditActor) -> None:
    """Delete a secret with every kept version (a purge: sealed old values do not linger)."""
    with audit_operation(actor=actor, action=Action.DELETE, key_path=name, detail="secret deleted") as scope:
        scope.namespace = bucket = environment_bucket(environment)
        validate_key(name)
        try:
            marker = store.entry_purge(bucket=bucket, key=name)
        except (BucketNotFound, KeyNotFound):
            raise SecretNotFound(name, environment) from None
        SecretMetadata.objects.filter(bucket_id=marker.bucket_id, name=name).delete()
        scope.entry_id = marker.id


# --- Reads (audited, so they write too) --------------------------------------------------


def secret_list(*, environment: str | None, actor: AuditActor) -> list[SecretInfo]:
    """Every secret of an environment, by name; an environment never written to has none."""
    with audit_operation(actor=actor, action=Action.READ, detail="secrets listed") as scope:
        scope.namespace = bucket = environment_bucket(environment)
        try:
            names = store.key_list(bucket=bucket).keys
        except BucketNotFound:
            return []
        entries = [store.entry_get(bucket=bucket, key=name) for name in names]
        metadata = {
            row.name: row for row in SecretMetadata.objects.filter(bucket__name=bucket, name__in=names).iterator()
        }
        return [secret_info_of(entry=entry, metadata=metadata.get(entry.key), bucket=bucket) for entry in entries]


def secret_info(*, environment: str | None, name: str, actor: AuditActor) -> SecretInfo:
    """A secret's name, revision, description and timestamps -- never its value."""
    with audit_operation(actor=actor, action=Action.READ, key_path=name) as scope:
        scope.namespace = bucket = environment_bucket(environment)
        entry = _latest(bucket=bucket, name=name, environment=environment)
        scope.entry_id = entry.id
        return secret_info_of(entry=entry, metadata=_metadata(entry=entry, name=name), bucket=bucket)


def secret_reveal(*, environment: str | None, name: str, actor: AuditActor) -> RevealedSecret:
    """The plaintext of a secret's latest version; always audited (REVEAL)."""
    with audit_operation(actor=actor, action=Action.REVEAL, key_path=name) as scope:
        scope.namespace = bucket = environment_bucket(environment)
        entry = _latest(bucket=bucket, name=name, environment=environment)
        scope.entry_id = entry.id
        plaintext = _open(entry=entry, bucket=bucket, name=name)
        return RevealedSecret(name=name, value=plaintext.decode(), revision=entry.revision)
