"""A watch's query string: ``?key=`` (a key pattern), ``?since=`` (a revision), ``?include=current``."""

import re
from collections.abc import Callable
from dataclasses import dataclass

from buckets.core.exceptions import InvalidArgument
from buckets.core.wildcards import KeyPattern, compile_pattern

_REVISION_RE = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True)
class WatchOptions:
    pattern: KeyPattern | None
    since: int | None
    include_current: bool


def query_value(query: dict[str, list[str]], name: str) -> str | None:
    """The last value of ``name`` in a parsed query string (None when absent)."""
    values = query.get(name)
    return values[-1] if values else None


def watch_options(*, query: dict[str, list[str]]) -> WatchOptions:
    """Parse ``?key=&since=&include=`` (InvalidArgument on nonsense)."""
    key = query_value(query, "key")
    since_raw = query_value(query, "since")
    include = query_value(query, "include") or ""
    if since_raw is not None and not _REVISION_RE.match(since_raw):
        raise InvalidArgument("since must be a revision (a non-negative integer)")
    if include not in ("", "current"):
        raise InvalidArgument("include must be 'current'")
    since = int(since_raw) if since_raw is not None else None
    if since is not None and include:
        raise InvalidArgument("since and include=current exclude each other")
    return WatchOptions(
        pattern=compile_pattern(key) if key else None, since=since, include_current=include == "current"
    )


def key_matcher(pattern: KeyPattern | None) -> Callable[[str], object] | None:
    """``pattern.matches`` with its regular expression compiled once (None: every key matches).

    It runs for every change and watcher; ``KeyPattern.matches`` looks its regex
    up in ``re``'s cache on each call.
    """
    if pattern is None:
        return None
    if pattern.is_literal:
        return pattern.pattern.__eq__
    return re.compile(pattern.regex).fullmatch
