"""HTTP conditional headers and query parameters of the key API, parsed strictly."""

import re
from dataclasses import dataclass

from kvsite.errors import InvalidArgument

_REVISION_RE = re.compile(r'^(?:W/)?"?([0-9]{1,19})"?$')


@dataclass(frozen=True)
class WriteCondition:
    if_absent: bool = False
    if_revision: int | None = None


def parse_revision(raw: str, *, what: str) -> int:
    match = _REVISION_RE.match(raw.strip())
    if not match or int(match.group(1)) < 1 or int(match.group(1)) > 2**63 - 1:
        raise InvalidArgument(f'{what} must be a revision number such as 5 or "5"')
    return int(match.group(1))


def parse_write_condition(headers) -> WriteCondition:
    """``If-None-Match: *`` (create) or ``If-Match: <revision>`` (compare-and-swap)."""
    if_match = headers.get("If-Match")
    if_none_match = headers.get("If-None-Match")
    if if_match is not None and if_none_match is not None:
        raise InvalidArgument("send either If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise InvalidArgument("If-None-Match only supports '*' (create if absent)")
        return WriteCondition(if_absent=True)
    if if_match is not None:
        return WriteCondition(if_revision=parse_revision(if_match, what="If-Match"))
    return WriteCondition()


def parse_bool(raw: str | None, *, name: str) -> bool:
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"{name} must be true or false")


def parse_positive_int(raw: str | None, *, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 19 or int(raw) < 1:
        raise InvalidArgument(f"{name} must be a positive integer")
    return int(raw)
