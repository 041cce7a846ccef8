"""kvsite.http.jsonbody.json_read: the one reader of JSON bodies, in plain and exact mode."""

import pytest

from buckets.core.exceptions import InvalidArgument, ValueTooLarge
from kvsite.http.jsonbody import (
    MAX_DEPTH,
    JsonNumber,
    dump_json_exact,
    has_lone_surrogate,
    json_bulk_problem,
    json_depth,
    json_read,
    json_value_bytes_at_least,
    json_values_more_than,
    json_whole_number,
)
from kvsite.http.negotiation import is_json_media_type

BOTH = pytest.mark.parametrize("exact", [False, True], ids=["plain", "exact"])


def refusal(data: bytes | str, **options) -> str:
    with pytest.raises(InvalidArgument) as refused:
        json_read(data, max_bytes=1 << 20, **options)
    return refused.value.message


# --- What both modes refuse -------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body must be JSON"),
        (b" \r\n\t ", "body must be JSON"),
        (b"{oops", "body is not valid JSON: Expecting property name"),
        (b'{"a": 1} {"b": 2}', "body is not valid JSON: Extra data"),
        (b'{"a": "\xff"}', "body is not valid UTF-8 (byte 7)"),
        (b"\xef\xbb\xbf{}", "body is not valid JSON: Expecting value: line 1 column 1"),  # a byte order mark
        (b'{"a": NaN}', "a: NaN is not a JSON number"),
        (b'{"a": [1, Infinity]}', "a[1]: Infinity is not a JSON number"),
        (b"-Infinity", "body: -Infinity is not a JSON number"),
        (b'{"a": 1, "a": 2}', 'body: duplicate member name "a"'),
        (b'{"x": [{"b": 1}, {"b": 1, "c": 0, "b": 2}]}', 'x[1]: duplicate member name "b"'),
        # A refused token, then broken syntax: the syntax error is the answer (it used to escape as a 500).
        (b'{"a": NaN, }', "body is not valid JSON: Expecting property name"),
        (b'{"a": 1, "a": 2', "body is not valid JSON: Expecting"),
    ],
)
def test_what_no_mode_takes_is_a_400_that_says_what_and_where(exact: bool, body: bytes, message: str) -> None:
    assert refusal(body, exact=exact).startswith(message)


@BOTH
def test_utf16_is_not_json_here(exact: bool) -> None:
    # json.loads would guess UTF-16 from the byte pattern; a body is UTF-8 or refused.
    assert refusal('{"a": 1}'.encode("utf-16"), exact=exact).startswith("body is not valid UTF-8")


@BOTH
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 10_000, 100_000])
def test_nesting_past_the_limit_is_a_400_even_beyond_pythons_stack(exact: bool, depth: int) -> None:
    body = b"[" * (depth - 1) + b"1" + b"]" * (depth - 1)

    assert refusal(body, exact=exact) == f"body is nested more than {MAX_DEPTH} levels deep"


@BOTH
def test_nesting_up_to_the_limit_is_read(exact: bool) -> None:
    body = b"[" * (MAX_DEPTH - 1) + b"1" + b"]" * (MAX_DEPTH - 1)

    assert json_depth(json_read(body, max_bytes=1 << 20, exact=exact), 1000) == MAX_DEPTH
    assert refusal(body, exact=exact, max_depth=MAX_DEPTH - 1).endswith(f"more than {MAX_DEPTH - 1} levels deep")


@BOTH
def test_a_body_over_its_cap_is_a_413(exact: bool) -> None:
    with pytest.raises(ValueTooLarge) as refused:
        json_read(b'"' + b"x" * 100 + b'"', max_bytes=100, exact=exact)

    assert refused.value.message == "body is 102 bytes; at most 100 are allowed"
    assert json_read(b'"' + b"x" * 98 + b'"', max_bytes=100, exact=exact) == "x" * 98


def test_text_is_measured_in_utf8_bytes() -> None:
    with pytest.raises(ValueTooLarge):
        json_read('"éé"', max_bytes=5)

    assert json_read('"éé"', max_bytes=6) == "éé"


def test_what_names_the_whole_body() -> None:
    assert refusal(b"", what="merge patch") == "merge patch must be JSON"
    assert refusal(b'{"a":1,"a":1}', what="this text").startswith('this text: duplicate member name "a"')


# --- Plain mode: numbers and strings must fit what stores them ---------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1e999}', "a: the number 1e999 is too large to store (beyond a 64-bit float)"),
        (b'{"entries": [{}, {}, {}, {"value": -1e999}]}', "entries[3].value: the number -1e999 is too large"),
        (b'{"n": ' + b"9" * 5000 + b"}", "n: the integer has 5000 digits; at most 4300 can be stored"),
        (b'{"a": "\\ud800"}', "a: the string has a lone surrogate \\ud800, which is not Unicode text"),
        (b'{"a": ["ok", "x\\uDC00"]}', "a[1]: the string has a lone surrogate \\udc00"),
        (b'"\\ud800\\ud800\\udc00"', "body: the string has a lone surrogate \\ud800"),
        (b'{"a b": {"\\ud800": 1}}', '["a b"]["\\ud800"]: the member name has a lone surrogate \\ud800'),
    ],
)
def test_plain_mode_names_the_field_that_cannot_be_stored(body: bytes, message: str) -> None:
    assert refusal(body).startswith(message)


def test_plain_mode_reads_floats_ints_and_surrogate_pairs() -> None:
    body = b'{"f": 1.5, "big": ' + b"9" * 4000 + b', "tiny": 1e-999, "emoji": "\\ud83d\\ude00", "t": "\\\\ud800"}'

    value = json_read(body, max_bytes=1 << 20)

    assert value["f"] == 1.5 and value["big"] == int("9" * 4000) and value["tiny"] == 0.0
    assert value["emoji"] == "😀"
    assert value["t"] == "\\ud800"  # an escaped backslash, not a surrogate


# --- Exact mode: numbers keep their text, surrogates are kept to be written back ------------------------


def test_exact_mode_keeps_every_number_and_string_as_sent() -> None:
    body = b'{"a":1e999,"b":-0.0,"c":1.10,"n":' + b"9" * 5000 + b',"s":"\\ud800","\\udc00":true}'

    value = json_read(body, max_bytes=1 << 20, exact=True)

    assert isinstance(value["a"], JsonNumber) and value["a"].text == "1e999"
    assert value["s"] == "\ud800"
    assert dump_json_exact(value) == body


# --- Helpers ---------------------------------------------------------------------------------------


def test_json_depth_counts_levels_without_recursion() -> None:
    assert [json_depth(value, 10) for value in (1, [], [1], {"a": [[]]}, {"a": [[0]]})] == [1, 1, 2, 3, 4]
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep, 64) == 65


def test_has_lone_surrogate() -> None:
    assert has_lone_surrogate("a\ud800") and has_lone_surrogate("\udfff")
    assert not has_lone_surrogate("😀") and not has_lone_surrogate("\\ud800")


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("Application/JSON", True),
        ("application/json; charset=utf-8", True),
        ('application/json;charset="UTF-8"', True),
        ("application/merge-patch+json", True),
        ("application/vnd.kvsite+json; charset=utf8", True),
        ("application/json; charset=latin-1", False),
        ("application/+json", False),
        ("text/json", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False),
        ("*/*", False),
        ("application/*", False),
        ("", False),
    ],
)
def test_json_media_types(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json


LONG = "keys holds more than 2 items; at most 2 are allowed per call"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"keys": [1, 2, 3]}', LONG),
        ('{"keys": [1, 2]}', None),
        ('{"keys": []}', None),
        (' { "keys" : [ [1] , {"k": "],"}, "x" ] } ', LONG),  # brackets in strings
        ('{"other": [1, 2, 3], "keys": [1, 2, 3]}', "unknown field(s) other; allowed: keys"),  # before reading it
        ('{"pad": "' + "x" * 100_000 + '"}', "unknown field(s) pad; allowed: keys"),
        ("[1, 2, 3]", None),  # not an object: the whole parse says what is wrong
        ('{"keys": [1, 2, 3', LONG),  # cut short after the limit: refused by its count all the same
        ('{"keys": [1, 2', None),
        ('{"keys": 3}', None),
        ('{"keys": [1, NaN, 3]}', LONG),  # over-long is reason enough, whatever else is wrong
        ('{"keys": [' + "[" * 100_000 + "]" * 100_000 + ", 1, 2]}", None),  # deeper than the stack
    ],
)
def test_json_bulk_problem_counts_the_list_and_stops_past_the_limit(text: str, problem: str | None) -> None:
    assert json_bulk_problem(text, member="keys", limit=2) == problem


def test_a_lone_surrogate_after_an_escaped_backslash_is_found() -> None:
    # "\\ud800" is a backslash and the text "ud800"; the "\udc00" after it is a lone low surrogate.
    body = rb'{"a": ["\\ud800\udc00"]}'

    assert refusal(body) == "a[0]: the string has a lone surrogate \\udc00, which is not Unicode text"
    assert json_read(body, max_bytes=100, exact=True) == {"a": ["\\ud800\udc00"]}


@pytest.mark.parametrize(
    "text",
    [
        '"' + "x" * 50_000 + '"',
        '"' + "\\u00e9" * 20_000 + '"',  # 6 bytes of escape for 2 stored
        '"' + "\\u0041" * 20_000 + '"',  # 6 for 1: the most an escape saves
        '"' + "\\ud83d\\ude00" * 5000 + '"',  # a surrogate pair: 12 for 4
        '"' + "é" * 20_000 + '"',
        '"' + "\\n\\t\\\\" * 10_000 + '"',
        '"' + '\\"' * 20_000 + '"',  # escaped quotes are stored escaped: no saving
        '"' + "\\/" * 20_000 + '"',  # "\/" is stored as "/"
        "[" + ", ".join(["1.10"] * 20_000) + "]",
        '{"a": {"b": [null, true, "  spaced  "]}}',
    ],
)
def test_json_value_bytes_at_least_never_passes_what_is_stored(text: str) -> None:
    # However the body spells the value (escapes, pretty-printing), the bound stays below its stored size.
    for body in ('{"value":' + text + "}", '{\n    "value":   ' + text + ',\n    "ttlSeconds": 60\n}'):
        stored = dump_json_exact(json_read(body.encode(), max_bytes=10**7, exact=True)["value"])
        assert json_value_bytes_at_least(body.encode()) <= len(stored)


@pytest.mark.parametrize(
    ("data", "more"),
    [
        (b"[" + b",".join([b"0"] * 99) + b"]", False),  # 100 values
        (b"[" + b",".join([b"0"] * 102) + b"]", True),
        (b"[" + b",".join([b"[]"] * 60) + b"]", False),  # 61 arrays
        (b"[" + b",".join([b"[" * 60 + b"]" * 60] * 2) + b"]", True),  # 121 arrays, one comma
        (b'["' + b",".join([b"x"] * 500) + b'"]', False),  # commas inside a string are not values
        (b'["' + b'\\",' * 500 + b'"]', False),  # nor after an escaped quote
        (b'["\\\\", ' + b",".join([b"0"] * 150) + b"]", True),  # an escaped backslash ends no string early
        (b"[" + b",".join([b'""'] * 150) + b"]", True),  # refused on its strings alone
        (b'{"a": "' + b"[" * 500 + b'"}', False),  # brackets inside a string
    ],
)
def test_json_values_more_than_counts_only_what_is_outside_strings(data: bytes, more: bool) -> None:
    assert json_values_more_than(data, 100) is more


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (JsonNumber("5"), 5),
        (JsonNumber("5.0"), 5),
        (JsonNumber("1e3"), 1000),
        (JsonNumber("-0"), 0),
        (JsonNumber("5.5"), None),
        (JsonNumber("1e999999999"), 10**19),  # clamped: no use takes it, and int() would not finish
        (JsonNumber("-1e40"), -(10**19)),
        (7, 7),
        (True, None),
        ("5", None),
        (None, None),
    ],
)
def test_json_whole_number(raw, number) -> None:
    assert json_whole_number(raw) == number
