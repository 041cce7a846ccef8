"""Buckets and their entries (every kept revision of every key), and the namespaces built on buckets."""

import uuid

from django.db import models
from django.db.models import Q


class KeyField(models.CharField):
    """A CharField ordered by bytes on every backend.

    Listing relies on ``key >= prefix AND key < bump(prefix)`` being exactly the
    keys with that prefix, and on "sorted" meaning byte order. Linguistic
    collations (en_US.UTF-8 and friends) ignore punctuation when comparing, which
    would break both, so PostgreSQL gets the "C" collation. SQLite compares bytes
    already.
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class Bucket(models.Model):
    name = models.CharField(max_length=80, unique=True, help_text="Internal name, with its APP_/SYS_ prefix.")
    description = models.TextField(blank=True, default="")
    ttl_seconds = models.PositiveIntegerField(default=0)
    max_value_size = models.PositiveIntegerField()
    max_bytes = models.BigIntegerField(default=-1, help_text="-1: unlimited.")
    history = models.PositiveSmallIntegerField(default=1)
    max_keys = models.BigIntegerField(default=-1, help_text="Live keys allowed; -1: unlimited.")
    key_format = models.CharField(
        max_length=8, default="nats", help_text="'nats': NATS subject keys; 'text': any UTF-8 without controls."
    )
    # Set at creation and never changed: its values are AES-GCM envelopes (buckets/core/sealing.py),
    # which master-key rotation re-seals and events never carry. A database default too, so servers
    # of the previous release keep creating buckets while a rolling upgrade migrates under them.
    sealed = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField()
    # Maintained in every write transaction, so info is O(1) and exact.
    last_revision = models.BigIntegerField(default=0)
    values_count = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    # Keys whose latest entry is a put, until deleted, purged or swept (quota).
    live_keys = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    class Operation(models.TextChoices):
        PUT = "put"
        DELETE = "delete"
        PURGE = "purge"

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, related_name="entries", db_index=False)
    key = KeyField(max_length=512)
    revision = models.BigIntegerField()
    operation = models.CharField(max_length=6, choices=Operation.choices)
    value = models.BinaryField(default=b"")
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # The newest kept entry of its key; what get, list and conditions look at.
    is_latest = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "revision"], name="entry_unique_revision"),
            models.UniqueConstraint(
                fields=["bucket", "key"], condition=Q(is_latest=True), name="entry_one_latest_per_key"
            ),
        ]
        indexes = [
            models.Index(fields=["bucket", "key", "revision"], name="entry_key_history"),
            models.Index(fields=["expires_at"], condition=Q(expires_at__isnull=False), name="entry_expiry"),
            # Keys whose latest entry is a delete or purge marker, for kv_sweep's marker purge.
            models.Index(
                fields=["created_at"], condition=Q(is_latest=True) & ~Q(operation="put"), name="entry_latest_marker"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bucket_id}:{self.key}@{self.revision}"


class Namespace(models.Model):
    """A namespace of the KV Service dialect: metadata around one bucket that holds its entries.

    Non-secret namespaces use the bucket ``APP_<name>`` (so the bucket API shows
    them under their name); secret ones a reserved ``SYS_secrets_.ns.<id>``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    bucket = models.OneToOneField(Bucket, on_delete=models.CASCADE, related_name="namespace")
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    application_id = models.CharField(max_length=100)
    is_secret = models.BooleanField(default=False)
    default_ttl_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["application_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["application_id", "name"], name="namespace_unique_name_per_application")
        ]

    def __str__(self) -> str:
        return f"{self.application_id}/{self.name}"
