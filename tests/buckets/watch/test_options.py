"""buckets.watch.options: a watch's query string, and the key matcher compiled from its pattern."""

import pytest

from buckets.core.exceptions import InvalidArgument
from buckets.core.wildcards import compile_pattern
from buckets.watch.options import key_matcher, watch_options


def test_options_parse_pattern_since_and_include() -> None:
    options = watch_options(query={"key": ["user.*"], "since": ["12"]})

    assert options.pattern == compile_pattern("user.*")
    assert options.since == 12
    assert not options.include_current
    assert watch_options(query={"include": ["current"], "key": [""]}).include_current
    assert watch_options(query={}).pattern is None


@pytest.mark.parametrize(
    "query",
    [
        {"since": ["-1"]},
        {"since": ["1.5"]},
        {"since": ["²"]},
        {"include": ["history"]},
        {"since": ["3"], "include": ["current"]},
        {"key": ["a.>.b"]},
        {"key": ["a b"]},
    ],
)
def test_options_refuse_nonsense(query: dict) -> None:
    with pytest.raises(InvalidArgument):
        watch_options(query=query)


@pytest.mark.parametrize("pattern", ["user.*", "user.>", "*", ">", "user.1", "a.*.c", "x"])
def test_the_compiled_key_matcher_agrees_with_the_pattern(pattern: str) -> None:
    keys = ["user", "user.1", "user.1.name", "user:1", "a.b.c", "a.b.b.c", "x", "xy", "config"]
    compiled = compile_pattern(pattern)
    matches = key_matcher(compiled)

    assert [bool(matches(key)) for key in keys] == [compiled.matches(key) for key in keys]
    assert key_matcher(None) is None
