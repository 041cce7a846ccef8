"""Key rules: NATS subject characters plus ':' and '/', at most 512 bytes."""

import pytest

from buckets.core.exceptions import InvalidArgument
from buckets.core.keys import validate_key


@pytest.mark.parametrize(
    "key", ["theme", "user:123", "config:feature-flags", "a/b/c", "user.123.name", "x=1", "A_b-C", "k" * 512]
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key", ["", ".a", "a.", "a..b", "a b", "a*", "a>", "é", "a\x00", "k" * 513, "a\nb", "a%2Fb", "a?b"]
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_key(key)
