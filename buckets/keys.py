"""Key rules: NATS subject tokens plus ':' and '/', as Ironflow's keys use them."""

import re

from kvsite.errors import InvalidArgument

MAX_KEY_BYTES = 512
_KEY_RE = re.compile(r"^[-/_=.:A-Za-z0-9]+$")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid key, else raise InvalidArgument (400)."""
    if not isinstance(key, str) or not key:
        raise InvalidArgument("key must not be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument(f"key is longer than {MAX_KEY_BYTES} bytes")
    if not _KEY_RE.match(key):
        raise InvalidArgument("key may only contain letters, digits and - / _ = . :")
    if key.startswith(".") or key.endswith(".") or ".." in key:
        raise InvalidArgument("key must not start or end with '.' or contain an empty token")
    return key
