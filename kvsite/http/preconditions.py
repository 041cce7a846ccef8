"""HTTP conditional headers (If-Match, If-None-Match) and query parameters, parsed strictly for every dialect."""

import re
from dataclasses import dataclass

from buckets.core.conditions import IfMatch
from buckets.core.exceptions import InvalidArgument

MAX_REVISION = 2**63 - 1
_REVISION_RE = re.compile(r'^(?:W/)?"?([0-9]{1,19})"?$')
# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
# (header values reach Django as latin-1 text, so obs-text is \x80-\xff).
_ENTITY_TAG_RE = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS_RE = re.compile(r"[ \t]*")
# Not an entity-tag, but what Ironflow and NATS clients send: the revision alone.
_BARE_REVISION_RE = re.compile(r"[0-9]{1,19}")
# Our ETags are "<revision>", and strong comparison is octet by octet: "05" is not "5".
_TAG_REVISION_RE = re.compile(r"[1-9][0-9]{0,18}")
_IF_MATCH_FORM = 'If-Match must be *, a revision such as 5, or entity-tags such as "5" or "4", "5"'
IF_MATCH_DESCRIPTION = (
    'Only at one of these revisions: "5", a list "4", "5", or a bare 5 (a weak W/ tag never matches); '
    "* for any current value"
)


@dataclass(frozen=True)
class WriteCondition:
    if_absent: bool = False
    if_match: IfMatch | None = None


def parse_revision(raw: str, *, what: str) -> int:
    match = _REVISION_RE.match(raw.strip())
    if not match or int(match.group(1)) < 1 or int(match.group(1)) > MAX_REVISION:
        raise InvalidArgument(f'{what} must be a revision number such as 5 or "5"')
    return int(match.group(1))


def parse_if_match(raw: str | None) -> IfMatch | None:
    """``If-Match`` by RFC 9110 §13.1.1: ``*``, or a list of entity-tags compared strongly; or a bare revision.

    A weak tag never matches, nor does a strong one that is not a revision of ours
    (``"abc"``, ``"05"``): the write is then refused with 412, as for a stale revision.
    Only a field outside the grammar (``"3``, ``3"``, ``"3" x``, ``1,2``) is a 400.
    Empty list elements are skipped, as RFC 9110 §5.6.1.2 asks of recipients.
    """
    if raw is None:
        return None
    value = raw.strip(" \t")
    if value == "*":
        return IfMatch(any_value=True)
    if _BARE_REVISION_RE.fullmatch(value):
        if not 1 <= int(value) <= MAX_REVISION:
            raise InvalidArgument(_IF_MATCH_FORM)
        return IfMatch(revisions=frozenset({int(value)}))
    revisions: set[int] = set()
    tags, weak_tags = 0, False
    position = 0
    while True:
        position = _OWS_RE.match(value, position).end()
        if position == len(value):
            break
        if value[position] == ",":
            position += 1
            continue
        tag = _ENTITY_TAG_RE.match(value, position)
        if tag is None:
            raise InvalidArgument(_IF_MATCH_FORM)
        tags += 1
        if tag.group(1):
            weak_tags = True
        elif _TAG_REVISION_RE.fullmatch(tag.group(2)) and int(tag.group(2)) <= MAX_REVISION:
            revisions.add(int(tag.group(2)))
        position = _OWS_RE.match(value, tag.end()).end()
        if position == len(value):
            break
        if value[position] != ",":
            raise InvalidArgument(_IF_MATCH_FORM)
        position += 1
    if not tags:
        raise InvalidArgument(_IF_MATCH_FORM)
    return IfMatch(revisions=frozenset(revisions), weak_tags=weak_tags)


def parse_write_condition(headers) -> WriteCondition:
    """``If-None-Match: *`` (create) or ``If-Match`` (compare-and-swap, see ``parse_if_match``)."""
    if_match = headers.get("If-Match")
    if_none_match = headers.get("If-None-Match")
    if if_match is not None and if_none_match is not None:
        raise InvalidArgument("send either If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise InvalidArgument("If-None-Match only supports '*' (create if absent)")
        return WriteCondition(if_absent=True)
    return WriteCondition(if_match=parse_if_match(if_match))


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
