"""Strict JSON request bodies for the JSON dialects (config, items).

DRF's JSON parser lets a deeply nested document escape as RecursionError (a
500); this parser turns every malformed, oversized or too-deep body into a 4xx.
"""

import json
from typing import Any

from kvsite.errors import InvalidArgument, ValueTooLarge

MAX_DEPTH = 64


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, walking iteratively and stopping past ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def parse_json(body: bytes, *, max_bytes: int, what: str = "body") -> Any:
    if len(body) > max_bytes:
        raise ValueTooLarge(f"{what} is {len(body)} bytes; at most {max_bytes} are allowed")
    if not body.strip():
        raise InvalidArgument(f"{what} must be JSON")
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidArgument(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidArgument(f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the stored form of JSON values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
