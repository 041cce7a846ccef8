"""NATS wildcard semantics: the table from the Ironflow key-operations doc, and more."""

import pytest

from buckets.core.exceptions import InvalidArgument
from buckets.core.wildcards import KeyRange, compile_pattern, key_range, prefix_upper_bound

KEYS = ["user", "flag", "user.123", "user.456", "user.123.name", "user.123.name.first", "user:123", "config.flags"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*", ["user", "flag", "user:123"]),
        ("user.*", ["user.123", "user.456"]),
        (">", KEYS),
        ("user.>", ["user.123", "user.456", "user.123.name", "user.123.name.first"]),
        ("user.*.name", ["user.123.name"]),
        ("*.123", ["user.123"]),
        ("user.123", ["user.123"]),
        ("user:123", ["user:123"]),
        ("*.*.>", ["user.123.name", "user.123.name.first"]),
    ],
)
def test_pattern_matches_like_nats(pattern: str, expected: list[str]) -> None:
    compiled = compile_pattern(pattern)

    assert [key for key in KEYS if compiled.matches(key)] == expected


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("user.*", "user."), ("user.>", "user."), ("a.b.*.c", "a.b."), ("*", ""), (">", ""), ("*.x", "")],
)
def test_literal_prefix_is_what_precedes_the_first_wildcard(pattern: str, prefix: str) -> None:
    assert compile_pattern(pattern).literal_prefix == prefix


@pytest.mark.parametrize("pattern", ["", "user.>.x", "us*", "user..x", ".user", "user.", "a b", "user.>x"])
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(InvalidArgument):
        compile_pattern(pattern)


def test_prefix_upper_bound_is_just_past_every_key_with_the_prefix() -> None:
    upper = prefix_upper_bound("user.")

    assert "user." < "user.zzzz" < upper
    assert not "user/".startswith("user.") and upper <= "user/"


def test_prefix_upper_bound_skips_surrogates_and_has_none_past_the_last_code_point() -> None:
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff\U0010ffff") is None


def test_key_range_is_the_literal_prefix_range_with_the_regex_inside() -> None:
    keys = key_range(pattern=compile_pattern("tenant.7.user.*"))
    assert (keys.lower, keys.lower_inclusive, keys.upper) == ("tenant.7.user.", True, "tenant.7.user/")
    assert keys.regex == r"^tenant\.7\.user\.[^.]+$"
    assert key_range(pattern=compile_pattern("user.123")) == KeyRange(exact="user.123")
    assert key_range(pattern=compile_pattern(">")) == KeyRange()


def test_key_range_starts_at_a_cursor_inside_the_prefix_but_not_before_it() -> None:
    pattern = compile_pattern("user.>")
    assert key_range(pattern=pattern, after="user.5") == KeyRange(
        regex=r"^user\..+$", lower="user.5", lower_inclusive=False, upper="user/"
    )
    assert key_range(pattern=pattern, after="a").lower == "user."
