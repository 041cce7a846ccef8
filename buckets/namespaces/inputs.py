"""The namespaces API's request inputs: each rule that turns request JSON into the typed values stored.

Two kinds live here. The ``*_input`` functions read a request body's shape (an
object of known fields) into the arguments of a service; the views call them
first. The ``check_*`` rules, ``typed_value`` and ``check_entry`` check the
values themselves; the services call them once the caller is authorized, inside
the operation's audit scope, so a caller without access learns nothing from a
400 and a refused write is on record. Each raises InvalidArgument (400) naming
the field; a bulk check names every refused item at once (BulkRejected).
"""

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from buckets.core import store
from buckets.core.exceptions import DomainError, InvalidArgument
from buckets.core.keys import has_control_characters, validate_key
from buckets.core.names import is_plain_name
from buckets.namespaces.exceptions import BulkRejected
from buckets.namespaces.records import VALUE_TYPES
from kvsite.http.jsonbody import JsonNumber, has_lone_surrogate, json_depth, json_whole_number

NAMESPACE_FIELDS = frozenset({"name", "description", "applicationId", "isSecretNamespace", "defaultTtlSeconds"})
PUT_FIELDS = frozenset({"value", "valueType", "ttlSeconds", "metadata", "version"})
BULK_ITEM_FIELDS = frozenset({"keyPath", "value", "valueType", "ttlSeconds", "metadata", "version"})
MAX_DESCRIPTION = 4096
MAX_APPLICATION_ID = 100
MAX_BULK_ITEMS = 1000
MAX_PAGE = 1000
MAX_METADATA_DEPTH = 16
# The last segment of a multi-segment key path may not be a sub-resource's name:
# ".../rotate", ".../versions" and ".../rollback" are routes of their own.
RESERVED_SEGMENTS = frozenset({"rotate", "versions", "rollback"})
_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


# --- Request bodies ------------------------------------------------------------------------


def body_object(body: Any, *, allowed: frozenset[str]) -> dict:
    """``body`` if it is a JSON object of ``allowed`` fields only."""
    if not isinstance(body, dict):
        raise InvalidArgument("body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return body


def namespace_create_input(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``services.namespace_create`` from a POST body (null description: empty)."""
    body = body_object(body, allowed=NAMESPACE_FIELDS)
    return {
        "name": body.get("name"),
        "application_id": body.get("applicationId"),
        "description": body.get("description") or "",
        "is_secret": body.get("isSecretNamespace", False),
        "default_ttl_seconds": body.get("defaultTtlSeconds"),
    }


def namespace_update_input(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``services.namespace_update`` for the fields a PUT body names."""
    body = body_object(body, allowed=NAMESPACE_FIELDS)
    arguments = {
        "name": "name",
        "applicationId": "application_id",
        "description": "description",
        "isSecretNamespace": "is_secret",
        "defaultTtlSeconds": "default_ttl_seconds",
    }
    return {argument: body[name] for name, argument in arguments.items() if name in body}


def entry_put_input(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``services.namespace_entry_put`` from a PUT body; ``value`` is required."""
    body = body_object(body, allowed=PUT_FIELDS)
    if "value" not in body:
        raise InvalidArgument("value is required")
    return {
        "value": body["value"],
        "value_type": body.get("valueType"),
        "ttl_seconds": body.get("ttlSeconds"),
        "metadata": body.get("metadata"),
        "version": body.get("version"),
    }


def entry_rotate_input(body: Any) -> Any:
    """The new value of a rotate body, ``{"value": ...}``."""
    body = body_object(body, allowed=frozenset({"value"}))
    if "value" not in body:
        raise InvalidArgument("value is required")
    return body["value"]


def entry_rollback_input(body: Any) -> Any:
    """The version a rollback body names (checked by ``check_rollback_version``)."""
    return body_object(body, allowed=frozenset({"version"})).get("version")


def bulk_input(body: Any, *, name: str) -> list:
    """``body[name]``, counted before any item is looked at: an over-long list costs its parse and no more."""
    return check_bulk_list(body_object(body, allowed=frozenset({name})).get(name), name=name)


# --- Namespaces ------------------------------------------------------------------------------


def check_name(name: object) -> str:
    if not is_plain_name(name):
        raise InvalidArgument("name must be 1-64 letters, digits, '-' or '_'")
    if name.startswith("SYS_"):
        raise InvalidArgument("names starting with SYS_ are reserved")
    return name


def check_application_id(application_id: object) -> str:
    if not isinstance(application_id, str) or not application_id.strip():
        raise InvalidArgument("applicationId is required")
    if len(application_id) > MAX_APPLICATION_ID or has_control_characters(application_id):
        raise InvalidArgument(f"applicationId must be at most {MAX_APPLICATION_ID} characters without controls")
    if "/" in application_id:
        # Scopes match <applicationId>/<name>: with a '/' in ids, namespace:app-1/* would reach application app-1/x.
        raise InvalidArgument("applicationId must not contain '/' (a namespace is named <applicationId>/<name>)")
    if has_lone_surrogate(application_id):
        raise InvalidArgument("applicationId has a lone surrogate (such as \\ud800), which is not Unicode text")
    return application_id


def check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    if has_lone_surrogate(description):
        # An exact body keeps one, but a database column holds UTF-8 only.
        raise InvalidArgument("description has a lone surrogate (such as \\ud800), which is not Unicode text")
    if "\x00" in description:
        # PostgreSQL's text columns cannot hold NUL (a DataError, so a 500, if it got that far).
        raise InvalidArgument("description must not contain NUL characters")
    return description


def check_is_secret(is_secret: object) -> bool:
    if not isinstance(is_secret, bool):
        raise InvalidArgument("isSecretNamespace must be true or false")
    return is_secret


def check_ttl(ttl: object, *, field: str) -> int | None:
    """A TTL in seconds: null, or 1 up to the core's maximum."""
    if ttl is None:
        return None
    seconds = json_whole_number(ttl)
    if seconds is None or not 1 <= seconds <= store.MAX_TTL_SECONDS:
        raise InvalidArgument(f"{field} must be null or between 1 and {store.MAX_TTL_SECONDS}")
    return seconds


# --- Entries ---------------------------------------------------------------------------------


def check_key_path(key_path: object) -> str:
    """A key path: key rules of the core, '/'-separated non-empty segments, no reserved last segment."""
    if not isinstance(key_path, str):
        raise InvalidArgument("keyPath must be a string")
    validate_key(key_path)
    segments = key_path.split("/")
    if "" in segments:
        raise InvalidArgument("keyPath segments must not be empty (no leading, trailing or double '/')")
    if len(segments) > 1 and segments[-1] in RESERVED_SEGMENTS:
        raise InvalidArgument(f"keyPath must not end in /{segments[-1]} (a sub-resource of entries)")
    return key_path


def typed_value(value: Any, value_type: Any) -> Any:
    """The value in its stored (wire) form, if it matches ``value_type``; else 400 naming the field."""
    if value_type not in VALUE_TYPES:
        raise InvalidArgument(f"valueType must be one of {', '.join(VALUE_TYPES)}")
    if value_type == "STRING" and isinstance(value, str):
        return value
    if value_type == "JSON" and isinstance(value, (dict, list)):
        return value
    if value_type == "NUMBER" and isinstance(value, JsonNumber) and value.is_finite():
        return value
    if value_type == "NUMBER" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return JsonNumber(repr(value))
    if value_type == "BOOLEAN" and isinstance(value, bool):
        return value
    if value_type == "BINARY" and isinstance(value, str):
        if not _B64_RE.match(value):
            raise InvalidArgument("value must be base64 for valueType BINARY")
        try:
            # Canonical base64 out: what comes back decodes to the same bytes.
            return base64.b64encode(base64.b64decode(value, validate=True)).decode()
        except binascii.Error:
            raise InvalidArgument("value must be base64 for valueType BINARY") from None
    expected = {
        "STRING": "a string",
        "JSON": "a JSON object or array",
        "NUMBER": "a finite number",
        "BOOLEAN": "true or false",
        "BINARY": "a base64 string",
    }[value_type]
    raise InvalidArgument(f"value must be {expected} for valueType {value_type}")


def check_metadata(metadata: Any) -> dict:
    """Metadata: a JSON object (null: empty) nested at most 16 deep."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidArgument("metadata must be a JSON object")
    if json_depth(metadata, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise InvalidArgument("metadata is nested too deeply")
    return metadata


def check_version(version: Any) -> int | None:
    """A version to compare against: null, or a positive whole number."""
    if version is None:
        return None
    number = json_whole_number(version)
    if number is None or number < 1:
        raise InvalidArgument("version must be a positive integer")
    return number


def check_rollback_version(version: Any) -> int:
    """The version a rollback goes back to: a positive whole number, required."""
    checked = check_version(version)
    if checked is None:
        raise InvalidArgument('body must be {"version": <positive integer>}')
    return checked


@dataclass(frozen=True)
class EntryWrite:
    """One checked write: what a PUT body or a bulk item says."""

    key_path: str
    value_type: str
    value: Any = field(repr=False)
    metadata: dict
    ttl_seconds: int | None
    version: int | None


def check_entry(
    *,
    key_path: Any,
    value: Any,
    value_type: Any,
    ttl_seconds: Any = None,
    metadata: Any = None,
    version: Any = None,
) -> EntryWrite:
    """Check one write's fields; InvalidArgument (400) names the first that is wrong."""
    return EntryWrite(
        key_path=check_key_path(key_path),
        value_type=value_type,
        value=typed_value(value, value_type),
        metadata=check_metadata(metadata),
        ttl_seconds=check_ttl(ttl_seconds, field="ttlSeconds"),
        version=check_version(version),
    )


# --- Listing ---------------------------------------------------------------------------------


def check_page_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def check_prefix(prefix: str | None) -> str:
    """A listing's prefix as whole key-path segments ('' for none); a trailing '/' is dropped."""
    prefix = (prefix or "").rstrip("/")
    if prefix:
        check_key_path(prefix)
    return prefix


# --- Bulk ------------------------------------------------------------------------------------


def check_bulk_list(items: Any, *, name: str) -> list:
    """``items`` if it is a list of 1 to MAX_BULK_ITEMS items; nothing in it is looked at."""
    if not isinstance(items, list) or not items:
        raise InvalidArgument(f"{name} must be a non-empty list")
    if len(items) > MAX_BULK_ITEMS:
        raise InvalidArgument(f"{name} holds {len(items)} items; at most {MAX_BULK_ITEMS} are allowed per call")
    return items


def check_bulk_keys(keys: Any, *, operation: str) -> list[str]:
    """Checked key paths of a bulk get/delete; every bad one is named."""
    failures: list[tuple[int, str, DomainError]] = []
    seen: set[str] = set()
    for index, key_path in enumerate(check_bulk_list(keys, name="keys")):
        try:
            check_key_path(key_path)
            if key_path in seen:
                raise InvalidArgument("keyPath appears more than once")
            seen.add(key_path)
        except DomainError as error:
            failures.append((index, key_path if isinstance(key_path, str) else "", error))
    if failures:
        raise BulkRejected(operation=operation, total=len(keys), failures=failures)
    return keys


def _bulk_item(item: Any) -> EntryWrite:
    if not isinstance(item, dict):
        raise InvalidArgument("each entry must be an object {keyPath, value, valueType, ...}")
    unknown = sorted(set(item) - BULK_ITEM_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}")
    if "value" not in item:
        raise InvalidArgument("value is required")
    return check_entry(
        key_path=item.get("keyPath"),
        value=item["value"],
        value_type=item.get("valueType"),
        ttl_seconds=item.get("ttlSeconds"),
        metadata=item.get("metadata"),
        version=item.get("version"),
    )


def check_bulk_entries(items: list) -> list[EntryWrite]:
    """The checked writes of a bulk set's entries (a list ``check_bulk_list`` passed); every bad one is named."""
    writes: list[EntryWrite] = []
    failures: list[tuple[int, str, DomainError]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key_path = item.get("keyPath") if isinstance(item, dict) else None
        try:
            checked = _bulk_item(item)
            if checked.key_path in seen:
                raise InvalidArgument("keyPath appears more than once")
            seen.add(checked.key_path)
            writes.append(checked)
        except DomainError as error:
            failures.append((index, key_path if isinstance(key_path, str) else "", error))
    if failures:
        raise BulkRejected(operation="set", total=len(items), failures=failures)
    return writes
