"""Input validation and output shapes of the bucket API."""

import base64

from rest_framework import serializers

from buckets.core.events import rfc3339
from buckets.core.names import public_name
from buckets.core.store import MAX_BYTES_LIMIT, MAX_DESCRIPTION, MAX_HISTORY, MAX_TTL_SECONDS
from buckets.models import Bucket, Entry

# Ironflow's SDKs send camelCase; its docs show snake_case. Both are accepted.
BUCKET_FIELD_ALIASES = {"ttlSeconds": "ttl_seconds", "maxValueSize": "max_value_size", "maxBytes": "max_bytes"}


class BucketCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=64, trim_whitespace=False)
    # The core's limits (store.bucket_create checks them too): stated here for the schema and messages.
    description = serializers.CharField(max_length=MAX_DESCRIPTION, required=False, allow_blank=True, default="")
    ttl_seconds = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_TTL_SECONDS)
    max_value_size = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    max_bytes = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-1, max_value=MAX_BYTES_LIMIT
    )
    history = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_HISTORY)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["body must be a JSON object"]})
        if "name" in data and not isinstance(data["name"], str):
            raise serializers.ValidationError({"name": ["must be a string"]})
        normalized = dict(data)
        for alias, field in BUCKET_FIELD_ALIASES.items():
            if alias in normalized:
                value = normalized.pop(alias)
                if field in normalized and normalized[field] != value:
                    raise serializers.ValidationError({field: [f"{field} and {alias} disagree"]})
                normalized[field] = value
        return super().to_internal_value(normalized)


class BucketInfoOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    ttl_seconds = serializers.IntegerField()
    history = serializers.IntegerField()
    max_value_size = serializers.IntegerField()
    max_bytes = serializers.IntegerField(help_text="-1: unlimited")
    values = serializers.IntegerField(help_text="Kept entries, delete/purge markers included.")
    bytes = serializers.IntegerField(help_text="Bytes of kept values.")
    created_at = serializers.DateTimeField()


def bucket_info(bucket: Bucket) -> dict:
    return {
        "name": public_name(bucket.name),
        "description": bucket.description,
        "ttl_seconds": bucket.ttl_seconds,
        "history": bucket.history,
        "max_value_size": bucket.max_value_size,
        "max_bytes": bucket.max_bytes,
        "values": bucket.values_count,
        "bytes": bucket.bytes_total,
        "created_at": rfc3339(bucket.created_at),
    }


class BucketListOutput(serializers.Serializer):
    buckets = BucketInfoOutput(many=True)
    count = serializers.IntegerField()


class EntryOutput(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.CharField(help_text="base64 of the stored bytes; empty for delete/purge markers")
    revision = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    operation = serializers.ChoiceField(choices=Entry.Operation.choices)


def entry_body(entry: Entry) -> dict:
    return {
        "key": entry.key,
        "value": base64.b64encode(entry.value).decode(),
        "revision": entry.revision,
        "created_at": rfc3339(entry.created_at),
        "operation": entry.operation,
    }


class HistoryOutput(serializers.Serializer):
    entries = EntryOutput(many=True)
    count = serializers.IntegerField()


class KeyListOutput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()
    next_cursor = serializers.CharField(required=False, help_text="Only with ?limit=, when more keys follow.")


class RevisionOutput(serializers.Serializer):
    revision = serializers.IntegerField()
