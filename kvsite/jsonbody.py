"""Strict JSON request bodies for the JSON dialects (config, items), and exact JSON.

DRF's JSON parser lets a deeply nested document escape as RecursionError (a
500); this parser turns every malformed, oversized or too-deep body into a 4xx.

The exact variants (``parse_json_exact`` / ``dump_json_exact``) are for values
that must come back as they were sent: every number keeps its literal text
(``1.10``, ``1e400``, ``-0.0``, a 40-digit integer), where ``float`` would round
and ``int`` would drop the sign of ``-0`` and refuse more than 4300 digits.
"""

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from kvsite.errors import InvalidArgument, ValueTooLarge

MAX_DEPTH = 64


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, walking iteratively and stopping past ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def parse_json(body: bytes, *, max_bytes: int, what: str = "body") -> Any:
    if len(body) > max_bytes:
        raise ValueTooLarge(f"{what} is {len(body)} bytes; at most {max_bytes} are allowed")
    if not body.strip():
        raise InvalidArgument(f"{what} must be JSON")
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidArgument(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}") from None
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidArgument(f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the stored form of JSON values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# --- Exact JSON -----------------------------------------------------------------------


class JsonNumber(Decimal):
    """A JSON number with its literal text; compares and computes as a Decimal."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "JsonNumber":
        try:
            number = super().__new__(cls, text)
        except InvalidOperation:
            # An exponent past Decimal's range (1e99999999999999999999): the text
            # is kept all the same; as a number it counts as infinite or zero.
            number = super().__new__(cls, _out_of_range(text))
        number.text = text
        return number


def _out_of_range(text: str) -> str:
    mantissa, _, exponent = text.lower().partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    if exponent.startswith("-") or not mantissa.strip("-.0"):
        return sign + "0"
    return sign + "Infinity"


@dataclass(frozen=True)
class RawJson:
    """Already-encoded JSON that ``dump_json_exact`` inserts verbatim (the caller vouches for it)."""

    text: str


class _DuplicateName(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Of two equal names json.loads keeps the last; refusing them means what is
    # stored is what the caller wrote, not half of it.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise _DuplicateName(f"duplicate object name {duplicate!r}")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value`` (a scalar is 1, ``[1]`` is 2), counting no further than ``limit + 1``."""
    return _depth(value, limit)


def parse_json_exact(body: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH, what: str = "body") -> Any:
    """Like ``parse_json``, but numbers become ``JsonNumber`` and duplicate names, NaN and Infinity are 400."""
    if len(body) > max_bytes:
        raise ValueTooLarge(f"{what} is {len(body)} bytes; at most {max_bytes} are allowed")
    if not body.strip():
        raise InvalidArgument(f"{what} must be JSON")
    try:
        value = json.loads(
            body,
            parse_float=JsonNumber,
            parse_int=JsonNumber,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError:
        raise InvalidArgument(f"{what} is nested more than {max_depth} levels deep") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument(f"{what} is not valid JSON: {error}") from None
    if _depth(value, max_depth) > max_depth:
        raise InvalidArgument(f"{what} is nested more than {max_depth} levels deep")
    return value


def json_text_checked(raw: bytes) -> str:
    """The text of stored JSON, checked to be one well-formed value; ValueError if it is not.

    For bytes that other dialects may have written into a JSON bucket; numbers
    are not converted (``str``), so checking costs little beyond the scan.
    """
    text = raw.decode()  # UnicodeDecodeError is a ValueError
    try:
        json.loads(text, parse_float=str, parse_int=str, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return text


_LONE_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _escape_surrogate(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def _encode(value: Any, out: list[str]) -> None:
    # Most frequent types first; bool before int, since bool is an int.
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif isinstance(value, JsonNumber):
        out.append(value.text)
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for name, item in value.items():
            if not isinstance(name, str):
                raise TypeError(f"JSON object names must be strings, not {type(name).__name__}")
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring(name))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, RawJson):
        out.append(value.text)
    elif isinstance(value, int):
        try:
            out.append(int.__repr__(value))
        except ValueError:  # past sys.get_int_max_str_digits(); Decimal converts without that cap
            out.append(str(Decimal(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not JSON")
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not JSON")
        out.append(float.__repr__(value))
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_json_exact(value: Any) -> bytes:
    """Compact UTF-8 JSON in which every ``JsonNumber`` is written as its literal text.

    Strings are written unescaped (UTF-8) except where JSON requires; a lone
    surrogate, which ``\\ud800`` in JSON text can produce but UTF-8 cannot hold,
    goes back out as that escape.
    """
    out: list[str] = []
    _encode(value, out)
    text = "".join(out)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _LONE_SURROGATE_RE.sub(_escape_surrogate, text).encode()


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, with nesting too deep for Python's parser a 400 instead of a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON body is nested more than {MAX_DEPTH} levels deep") from None
