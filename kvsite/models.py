"""API keys: the credentials apps use (only a hash of each token is stored); the audit log."""

from django.db import models


class ApiKey(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        WRITER = "writer"
        READER = "reader"
        # Only the permissions listed on the key.
        NONE = "none"

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, help_text="First characters of the token, for display.")
    role = models.CharField(max_length=10, choices=Role.choices)
    # Kept for servers of the previous release during a rolling upgrade (they read only this):
    # new keys write a value that limits them at least as much as their scopes do.
    bucket_pattern = models.CharField(
        max_length=100, blank=True, default="", help_text="Superseded by scopes; read by the previous release only."
    )
    scopes = models.JSONField(
        default=list, blank=True, help_text="'kind:glob' limits (kvsite/access/guard.py); empty = unrestricted."
    )
    permissions = models.JSONField(
        default=list, blank=True, help_text="Permissions granted beyond the role's (the role may be 'none')."
    )
    account = models.CharField(
        max_length=40,
        blank=True,
        default="",
        help_text="Owner of the key's items (/kv/items); keys of one account share them. Letters, digits, - and _.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditEventQuerySet(models.QuerySet):
    """Audit rows are append-only: bulk updates and deletes are refused too."""

    def update(self, **kwargs):
        raise PermissionError("audit events cannot be changed")

    def delete(self):
        raise PermissionError("audit events cannot be deleted")


class AuditEvent(models.Model):
    """One audited operation, successful or refused; append-only (see kvsite/access/audit.py)."""

    class Action(models.TextChoices):
        READ = "READ"
        WRITE = "WRITE"
        DELETE = "DELETE"
        ROTATE = "ROTATE"
        ROLLBACK = "ROLLBACK"
        REVEAL = "REVEAL"
        # A password sign-in (the dashboard's, which the admin's leads to); refused ones have success False.
        LOGIN = "LOGIN"

    timestamp = models.DateTimeField(db_index=True)
    namespace = models.CharField(max_length=80, blank=True, help_text="Internal bucket name (APP_x, SYS_secrets_y).")
    entry_id = models.BigIntegerField(null=True, blank=True)
    key_path = models.CharField(max_length=512, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    actor_type = models.CharField(max_length=16, help_text="api_key, user or system.")
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    success = models.BooleanField()
    reason = models.CharField(max_length=500, blank=True, help_text="Why it failed.")
    detail = models.CharField(max_length=500, blank=True, help_text="What changed, when a key path does not say it.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["namespace", "-id"], name="audit_namespace"),
            models.Index(fields=["action", "-id"], name="audit_action"),
        ]

    def __str__(self) -> str:
        outcome = "ok" if self.success else "refused"
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.action} {self.namespace}/{self.key_path} {outcome}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit events cannot be deleted")
