"""NATS subject wildcards over keys.

``.`` separates tokens, ``*`` matches exactly one token and ``>`` (last token
only) one or more. A pattern compiles to two things: the literal prefix before
the first wildcard, which the database answers with an index range scan, and a
regular expression for the rest, which it filters within that range.
"""

import re
from dataclasses import dataclass

from buckets.core.exceptions import InvalidArgument
from buckets.core.keys import MAX_KEY_BYTES

_TOKEN_RE = re.compile(r"^[-/_=:A-Za-z0-9]+$")


@dataclass(frozen=True)
class KeyPattern:
    pattern: str
    literal_prefix: str
    regex: str | None  # None: the pattern is a literal key (exact match)

    @property
    def is_literal(self) -> bool:
        return self.regex is None

    def matches(self, key: str) -> bool:
        if self.regex is None:
            return key == self.pattern
        return re.fullmatch(self.regex, key) is not None


def compile_pattern(pattern: str) -> KeyPattern:
    if not pattern:
        raise InvalidArgument("filter must not be empty")
    if len(pattern.encode()) > MAX_KEY_BYTES:
        raise InvalidArgument(f"filter is longer than {MAX_KEY_BYTES} bytes")
    tokens = pattern.split(".")
    regex_parts: list[str] = []
    literal: list[str] = []
    wildcard_seen = False
    for index, token in enumerate(tokens):
        if token == ">":
            if index != len(tokens) - 1:
                raise InvalidArgument("'>' may only be the last token of a filter")
            regex_parts.append(".+")
            wildcard_seen = True
        elif token == "*":
            regex_parts.append("[^.]+")
            wildcard_seen = True
        elif _TOKEN_RE.match(token):
            # The allowed characters other than '.' are not special in Python or
            # POSIX regular expressions, so a literal token needs no escaping.
            regex_parts.append(token)
            if not wildcard_seen:
                literal.append(token)
        else:
            raise InvalidArgument(
                f"invalid filter token {token!r}: use letters, digits, - / _ = :, or a whole-token * or >"
            )
    if not wildcard_seen:
        return KeyPattern(pattern=pattern, literal_prefix=pattern, regex=None)
    prefix = ".".join(literal) + "." if literal else ""
    return KeyPattern(pattern=pattern, literal_prefix=prefix, regex="^" + r"\.".join(regex_parts) + "$")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    Bumping the last character is enough (byte order of UTF-8 is code point
    order), stepping over the surrogates, which UTF-8 cannot hold. A last
    character that cannot be bumped (U+10FFFF) is dropped and its predecessor
    bumped instead; None when nothing is left: no upper bound exists.
    """
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    bumped = ord(stripped[-1]) + 1
    if 0xD800 <= bumped <= 0xDFFF:
        bumped = 0xE000
    return stripped[:-1] + chr(bumped)


@dataclass(frozen=True)
class KeyRange:
    """The keys a listing reads: one exact key, or a range of the key index and a regex within it."""

    exact: str | None = None
    regex: str | None = None
    lower: str | None = None
    lower_inclusive: bool = True
    upper: str | None = None  # exclusive


def key_range(*, pattern: KeyPattern | None = None, prefix: str | None = None, after: str | None = None) -> KeyRange:
    """Keys matching ``pattern``, under ``prefix``, after ``after``, as one index range.

    The lower bound is the later of the prefix and the cursor, so the index walk
    starts at the cursor rather than at the prefix (SQLite uses only one of two
    lower bounds); the pattern's regular expression filters within the range.
    """
    if pattern is not None and pattern.is_literal:
        return KeyRange(exact=pattern.literal_prefix)
    regex = None
    if pattern is not None:
        prefix = prefix or pattern.literal_prefix
        regex = pattern.regex if pattern.pattern != ">" else None
    upper = prefix_upper_bound(prefix) if prefix else None
    if after is not None and after >= (prefix or ""):
        return KeyRange(regex=regex, lower=after, lower_inclusive=False, upper=upper)
    return KeyRange(regex=regex, lower=prefix or None, upper=upper)
