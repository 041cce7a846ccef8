"""Key rules.

``nats`` (the bucket API's): NATS subject tokens plus ':' and '/', as Ironflow's
keys use them. ``text`` (the items API's): any UTF-8 without control characters.
Both at most 512 bytes. Every ``nats`` key is also a valid ``text`` key.
"""

import re

from buckets.core.exceptions import InvalidArgument

MAX_KEY_BYTES = 512
NATS_KEYS = "nats"
TEXT_KEYS = "text"
KEY_FORMATS = (NATS_KEYS, TEXT_KEYS)

_KEY_RE = re.compile(r"^[-/_=.:A-Za-z0-9]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a C0 or C1 control character (never allowed in keys or names)."""
    return _CONTROL_RE.search(text) is not None


def validate_key(key: str, *, key_format: str = NATS_KEYS) -> str:
    """Return ``key`` if it is a valid key, else raise InvalidArgument (400)."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument("key must not be empty")
    try:
        size = len(key.encode())
    except UnicodeEncodeError:
        raise InvalidArgument("key must be valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise InvalidArgument(f"key is longer than {MAX_KEY_BYTES} bytes")
    if key_format == TEXT_KEYS:
        if has_control_characters(key):
            raise InvalidArgument("key must not contain control characters")
        return key
    if not _KEY_RE.match(key):
        raise InvalidArgument("key may only contain letters, digits and - / _ = . :")
    if key.startswith(".") or key.endswith(".") or ".." in key:
        raise InvalidArgument("key must not start or end with '.' or contain an empty token")
    return key
