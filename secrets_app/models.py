"""What a secret has besides its sealed values: a description and when it was created.

The values themselves (every kept version) live in the KV core, sealed, in
``SYS_secrets_<environment>`` buckets; the core also says whether a secret
exists and at which revision. A description is not secret, and ``created_at``
must survive the history limit pushing a secret's first version out, so both
are kept here, written in the same transaction as the value.
"""

from django.db import models


class SecretMetadata(models.Model):
    bucket = models.ForeignKey("buckets.Bucket", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=512)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "name"], name="secret_metadata_unique_name")]

    def __str__(self) -> str:
        return f"{self.bucket_id}:{self.name}"
