"""The bucket API's request inputs, parsed into the typed values the services and the core take."""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import QueryDict
from rest_framework import serializers
from rest_framework.request import Request

from buckets.core.conditions import IfMatch
from buckets.core.exceptions import ValueTooLarge
from buckets.core.store import MAX_BYTES_LIMIT, MAX_DESCRIPTION, MAX_HISTORY, MAX_TTL_SECONDS
from kvsite.http.preconditions import (
    parse_bool,
    parse_if_match,
    parse_positive_int,
    parse_revision,
    parse_write_condition,
)

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


def bucket_create_input(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``services.bucket_create`` from a POST body (a 400 on nonsense)."""
    params = BucketCreateInput(data=body)
    params.is_valid(raise_exception=True)
    return params.validated_data


def key_list_input(query: QueryDict) -> dict[str, Any]:
    """The keyword arguments of ``store.key_list`` from ``?filter=&limit=&cursor=``."""
    return {
        "pattern": query.get("filter") or None,
        "limit": parse_positive_int(query.get("limit"), name="limit"),
        "cursor": query.get("cursor") or None,
    }


def key_revision_input(query: QueryDict) -> int | None:
    """``?revision=``: a kept revision to read instead of the latest."""
    raw_revision = query.get("revision")
    return parse_revision(raw_revision, what="revision") if raw_revision is not None else None


def key_put_input(request: Request) -> dict[str, Any]:
    """The keyword arguments of ``store.entry_put``: the conditions of the headers, and the body as the value."""
    condition = parse_write_condition(request.headers)
    try:
        value = request.body
    except RequestDataTooBig:
        raise ValueTooLarge("request body is larger than any bucket allows") from None
    return {"value": value, "if_absent": condition.if_absent, "if_match": condition.if_match}


def key_delete_input(request: Request) -> tuple[bool, IfMatch | None]:
    """``?purge=`` and ``If-Match`` of a key's DELETE."""
    purge = parse_bool(request.query_params.get("purge"), name="purge")
    return purge, parse_if_match(request.headers.get("If-Match"))
