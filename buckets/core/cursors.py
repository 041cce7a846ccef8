"""Page cursors: opaque, URL-safe text for where a listing resumes (a key, or an audit event id)."""

import base64
import binascii

from buckets.core.exceptions import InvalidArgument


def encode_cursor(key: str) -> str:
    """An opaque, URL-safe page cursor for ``key`` (listings resume after it; the audit log after an id)."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("invalid cursor") from None
