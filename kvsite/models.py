"""API keys: the credentials apps use. Only a hash of each token is stored."""

from django.db import models


class ApiKey(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        WRITER = "writer"
        READER = "reader"

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, help_text="First characters of the token, for display.")
    role = models.CharField(max_length=10, choices=Role.choices)
    bucket_pattern = models.CharField(
        max_length=100, blank=True, default="", help_text="Glob of bucket names this key may touch; empty = all."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
