"""The bucket API's response bodies: their shapes (for the schema) and how a bucket or an entry is rendered."""

import base64

from rest_framework import serializers

from buckets.core.events import rfc3339
from buckets.core.names import public_name
from buckets.models import Bucket, Entry


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
    """A bucket as ``BucketInfoOutput``, under its public name."""
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
    """An entry as ``EntryOutput``: its bytes as base64."""
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
