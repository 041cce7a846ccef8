"""buckets.core.names: the one shape of bucket, namespace and environment names."""

import pytest

from buckets.core.names import is_plain_name


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("settings", True),
        ("a-b_C9", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ("dots.no", False),
        ("abc\n", False),  # `$` would have let a trailing newline through
        ("é", False),
        (5, False),
        (None, False),
    ],
)
def test_is_plain_name(name, plain: bool) -> None:
    assert is_plain_name(name) is plain
