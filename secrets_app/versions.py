"""A secret's kept versions, and rolling back to one of them.

Additive to ``secrets_app.services`` (same rules: one transaction with the audit
row, failures recorded; access decided by the caller: the dashboard's pages, for
staff users, who hold every permission). Listing versions shows revisions and
times only; a rollback opens the kept version and stores its value again as a
new revision, so the history only ever grows and the rollback is audited as
``ROLLBACK`` without revealing anything.
"""

from dataclasses import dataclass
from datetime import datetime

from buckets.core import sealing, store
from buckets.core.exceptions import BucketNotFound, KeyNotFound, RevisionNotFound
from buckets.models import Entry
from kvsite.access.audit import Action, AuditActor, audit_operation
from secrets_app.exceptions import SecretNotFound
from secrets_app.models import SecretMetadata
from secrets_app.services import SecretInfo, environment_bucket, secret_info_of


@dataclass(frozen=True)
class SecretVersion:
    """One kept version of a secret: when it was written; deliberately without its value."""

    revision: int
    entry_id: int
    created_at: datetime


def secret_versions(*, environment: str | None, name: str, actor: AuditActor) -> list[SecretVersion]:
    """Kept versions of a secret, newest first."""
    with audit_operation(actor=actor, action=Action.READ, key_path=name, detail="versions listed") as scope:
        scope.namespace = bucket = environment_bucket(environment)
        try:
            entries = store.entry_history(bucket=bucket, key=name)
        except (BucketNotFound, KeyNotFound):
            raise SecretNotFound(name, environment) from None
        if not entries or entries[-1].operation != Entry.Operation.PUT:
            raise SecretNotFound(name, environment)
        return [
            SecretVersion(revision=entry.revision, entry_id=entry.id, created_at=entry.created_at)
            for entry in reversed(entries)
            if entry.operation == Entry.Operation.PUT
        ]


def secret_rollback(*, environment: str | None, name: str, revision: int, actor: AuditActor) -> SecretInfo:
    """Store the value of kept version ``revision`` again, as the secret's newest version."""
    with audit_operation(
        actor=actor, action=Action.ROLLBACK, key_path=name, detail=f"rolled back to revision {revision}"
    ) as scope:
        scope.namespace = bucket = environment_bucket(environment)
        try:
            old = store.entry_get(bucket=bucket, key=name, revision=revision)
        except BucketNotFound:
            raise SecretNotFound(name, environment) from None
        except (KeyNotFound, RevisionNotFound):
            raise RevisionNotFound(name, revision) from None
        plaintext = sealing.value_open(envelope=old.value, bucket=bucket, key=name)
        sealed = sealing.value_seal(plaintext=plaintext, bucket=bucket, key=name)
        entry = store.entry_put(bucket=bucket, key=name, value=sealed)
        scope.entry_id = entry.id
        metadata = SecretMetadata.objects.filter(bucket_id=entry.bucket_id, name=name).first()
        return secret_info_of(entry=entry, metadata=metadata, bucket=bucket)
