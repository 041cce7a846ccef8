"""JSON Merge Patch (RFC 7396)."""

from typing import Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` patched: objects merge recursively, ``null`` removes a member,
    anything else replaces. ``target`` is not modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = apply_merge_patch(result.get(name), value)
    return result
