"""The items API's request inputs, parsed into the typed values ``services`` takes."""

import re
from datetime import datetime
from typing import Any

from buckets.core.exceptions import InvalidArgument
from kvsite.http.jsonbody import JsonNumber, json_whole_number

PUT_FIELDS = frozenset({"value", "ttlSeconds", "expiresAt", "ifVersion"})
_VERSION_RE = re.compile(r"^(?:0|[1-9][0-9]{0,18})$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _whole_number(raw: Any, *, name: str) -> int:
    # Plain ints are not JSON here: the items API parses exactly, so a number is a JsonNumber.
    number = json_whole_number(raw) if isinstance(raw, JsonNumber) else None
    if number is None:
        raise InvalidArgument(f"{name} must be a whole number")
    return number


def _version(raw: Any) -> int:
    if isinstance(raw, str):
        if not _VERSION_RE.match(raw):
            raise InvalidArgument('ifVersion must be a version as returned (such as "12"), or 0')
        return int(raw)
    if isinstance(raw, JsonNumber):
        return _whole_number(raw, name="ifVersion")
    raise InvalidArgument("ifVersion must be a version string or number, or 0")


def _moment(raw: Any) -> datetime:
    if not isinstance(raw, str) or not _RFC3339_RE.match(raw):
        raise InvalidArgument("expiresAt must be an RFC 3339 time such as 2030-01-31T12:00:00Z")
    try:
        return datetime.fromisoformat(raw.upper())
    except ValueError:
        raise InvalidArgument("expiresAt is not a valid date and time") from None


def item_put_input(body: Any) -> dict[str, Any]:
    """The keyword arguments of ``items.item_put`` from a PUT body (absent and null fields are unset)."""
    if not isinstance(body, dict):
        raise InvalidArgument('body must be a JSON object such as {"value": ...}')
    unknown = sorted(set(body) - PUT_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PUT_FIELDS))}")
    if "value" not in body:
        raise InvalidArgument("value is required (null is a value: send it as such)")
    ttl, expires_at, if_version = body.get("ttlSeconds"), body.get("expiresAt"), body.get("ifVersion")
    return {
        "value": body["value"],
        "ttl_seconds": None if ttl is None else _whole_number(ttl, name="ttlSeconds"),
        "expires_at": None if expires_at is None else _moment(expires_at),
        "if_version": None if if_version is None else _version(if_version),
    }
