"""The one strict reader of JSON request bodies, the DRF parsers built on it, and exact JSON.

Every JSON body goes through ``json_read``: the API's through ``JsonBodyParser``
and ``ExactJsonBodyParser`` (``request.data``), dashboard forms and anything else
directly. What it refuses is a 400 (``InvalidArgument``) or a 413
(``ValueTooLarge``), never a 500: an empty body, invalid UTF-8, invalid JSON,
NaN and Infinity, an object with two members of one name (I-JSON, RFC 7493: of
two equal names Python keeps the last, so what was stored would not be what was
sent), nesting deeper than ``max_depth``; and in plain mode, where numbers
become ``float``/``int`` and strings must later encode as UTF-8, a number those
cannot hold (``1e999`` would be ``inf``) and a lone surrogate (``"\\ud800"``),
each with the path of the field that holds it.

Exact mode (``exact=True``) is for values that must come back as they were sent:
every number is a ``JsonNumber`` that keeps its literal text (``1.10``,
``1e400``, ``-0.0``, a 40-digit integer), where ``float`` would round and ``int``
would drop the sign of ``-0`` and refuse more than 4300 digits; a lone surrogate
is kept, since ``dump_json_exact`` writes it back as its escape. A dialect that
stores some field where it cannot be kept (a database column) refuses it there.
"""

import json
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import Any

from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from buckets.core.exceptions import InvalidArgument, ValueTooLarge
from kvsite.http.bodies import declared_body_cap

MAX_DEPTH = 64


# --- Exact numbers -----------------------------------------------------------------------


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


def json_whole_number(raw: object) -> int | None:
    """``raw`` as an int if it is a whole JSON number (exact or plain; a boolean is not), else None.

    An exact number past 19 digits comes back as +/-10**19, out of range for every
    use here: ``int()`` of ``1e999999999`` would not finish.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, JsonNumber) and raw.is_finite() and raw == raw.to_integral_value():
        if raw.adjusted() > 18:
            return -(10**19) if raw < 0 else 10**19
        return int(raw)
    return None


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


# --- Reading -------------------------------------------------------------------------------


class _Refusal(Exception):
    """Raised by a parse hook: the body holds something refused (a second parse finds where)."""


def _refuse_constant(name: str) -> Any:
    raise _Refusal


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Refusal
    return number


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refusal
    return result


# The hooks raise rather than mark, so the usual body is parsed once, with no
# walk over it afterwards; only a refused one is parsed again to name the field.
# Shared like json's own default decoder: a decoder keeps no state between calls.
_PLAIN = json.JSONDecoder(object_pairs_hook=_unique_object, parse_float=_finite_float, parse_constant=_refuse_constant)
_EXACT = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_refuse_constant
)

_LONE_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def _encodes_as_utf8(value: Any) -> bool:
    """Whether every string and name in ``value`` is Unicode text (no lone surrogate), checked at C speed.

    A lone surrogate can only come from a ``\\u`` escape (UTF-8 cannot hold one),
    but telling one from a pair, or from an escaped backslash followed by ``ud800``,
    takes a JSON lexer: the parsed value is the lexer's answer.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


_PLAIN_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Refused:
    """Where the locating parse found something refused: stands in its place until the walk names it."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _quoted(text: str, limit: int = 100) -> str:
    """``text`` as a JSON string for a message; cut at ``limit``, a lone surrogate as its escape."""
    shown = json.dumps(text[:limit] + ("..." if len(text) > limit else ""), ensure_ascii=False)
    return _LONE_SURROGATE_RE.sub(_escape_surrogate, shown)


def _locating_object(pairs: list[tuple[str, Any]]) -> Any:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    duplicate = next(name for name, _ in pairs if name in seen or seen.add(name))
    return _Refused(f"duplicate member name {_quoted(duplicate)} (each name may appear once)")


def _locating_constant(name: str) -> Any:
    return _Refused(f"{name} is not a JSON number")


def _locating_float(text: str) -> Any:
    number = float(text)
    if math.isinf(number):
        shown = text if len(text) <= 40 else text[:37] + "..."
        return _Refused(f"the number {shown} is too large to store (beyond a 64-bit float)")
    return number


def _locating_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        digits = len(text.lstrip("-"))
        return _Refused(f"the integer has {digits} digits; at most {sys.get_int_max_str_digits()} can be stored")


def _path_text(path: tuple | None, what: str) -> str:
    """``entries[3].value`` from the linked path ``(((None, "entries"), 3), "value")``."""
    segments = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    if not segments:
        return what
    out = []
    for segment in reversed(segments):
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _PLAIN_NAME_RE.match(segment):
            out.append(f".{segment}" if out else segment)
        else:
            out.append(f"[{_quoted(segment)}]")
    return "".join(out)


def _first_refused(value: Any, *, surrogates: bool, what: str) -> str | None:
    """The first refused thing in ``value`` (document order) as ``"<path>: <problem>"``, or None.

    ``surrogates``: a lone surrogate in a string or a member name counts too.
    Paths are linked pairs, so a deep document costs no more per node than a flat one.
    """
    stack: list[tuple[tuple | None, Any, bool]] = [(None, value, False)]
    while stack:
        path, node, is_name = stack.pop()
        if is_name:
            match = _LONE_SURROGATE_RE.search(path[1])
            if match:
                return f"{_path_text(path, what)}: the member name has a lone surrogate {_escape_surrogate(match)}"
        elif isinstance(node, dict):
            children = []
            for name, child in node.items():
                member = (path, name)
                if surrogates:
                    children.append((member, None, True))
                children.append((member, child, False))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([((path, index), child, False) for index, child in enumerate(node)]))
        elif isinstance(node, _Refused):
            return f"{_path_text(path, what)}: {node.problem}"
        elif surrogates and isinstance(node, str):
            match = _LONE_SURROGATE_RE.search(node)
            if match:
                return (
                    f"{_path_text(path, what)}: the string has a lone surrogate {_escape_surrogate(match)}, "
                    "which is not Unicode text"
                )
    return None


def _locate(text: str, *, exact: bool, what: str) -> str | None:
    """Parse ``text`` again with hooks that mark instead of raising, and name the first refused field."""
    if exact:
        numbers = {"parse_float": JsonNumber, "parse_int": JsonNumber}
    else:
        numbers = {"parse_float": _locating_float, "parse_int": _locating_int}
    value = json.loads(text, object_pairs_hook=_locating_object, parse_constant=_locating_constant, **numbers)
    return _first_refused(value, surrogates=not exact, what=what)


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate: an exact body keeps one, UTF-8 (a database column) cannot."""
    return _LONE_SURROGATE_RE.search(text) is not None


def _utf8_size(data: bytes | str) -> int:
    if isinstance(data, bytes):
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def json_read(
    data: bytes | str, *, max_bytes: int, exact: bool = False, max_depth: int = MAX_DEPTH, what: str = "body"
) -> Any:
    """The JSON value of a request body (or of a form field); 400 or 413 naming what is wrong.

    ``max_bytes`` caps the UTF-8 size; ``exact`` gives ``JsonNumber`` numbers and
    keeps lone surrogates (see the module docstring); ``max_depth`` counts a
    scalar as 1 and ``[1]`` as 2; ``what`` names the whole body in messages.
    """
    size = _utf8_size(data)
    if size > max_bytes:
        raise ValueTooLarge(f"{what} is {size} bytes; at most {max_bytes} are allowed")
    if isinstance(data, bytes):
        try:
            text = data.decode()
        except UnicodeDecodeError as error:
            raise InvalidArgument(f"{what} is not valid UTF-8 (byte {error.start})") from None
    else:
        text = data
    if not text or text.isspace():
        raise InvalidArgument(f"{what} must be JSON")
    too_deep = f"{what} is nested more than {max_depth} levels deep"
    try:
        try:
            value = (_EXACT if exact else _PLAIN).decode(text)
        except json.JSONDecodeError as error:
            raise InvalidArgument(f"{what} is not valid JSON: {error}") from None
        except (_Refusal, ValueError):
            # _Refusal from a hook; a plain ValueError from an integer past the digit limit.
            try:
                problem = _locate(text, exact=exact, what=what)
            except ValueError as error:
                # Malformed after the refused token (JSONDecodeError is a ValueError): that says it all.
                problem = f"{what} is not valid JSON: {error}"
            raise InvalidArgument(problem or f"{what} is not valid JSON") from None
    except RecursionError:
        raise InvalidArgument(too_deep) from None
    # Depth can only pass the limit when the text has that many brackets; counting them is far cheaper than a walk.
    if text.count("[") + text.count("{") >= max_depth and json_depth(value, max_depth) > max_depth:
        raise InvalidArgument(too_deep)
    if not exact and ("\\ud" in text or "\\uD" in text) and not _encodes_as_utf8(value):
        problem = _first_refused(value, surrogates=True, what=what)
        if problem:
            raise InvalidArgument(problem)
    return value


_WHITESPACE = re.compile(r"[ \t\n\r]*")
# Counting only: the C scanner with no Python hooks, the cheapest way to step over one value.
_SKIPPER = json.JSONDecoder()
# Below this size a whole parse costs less than the target for any refusal (~50 ms) in either mode.
LIST_PRECOUNT_BYTES = 64 * 1024


def json_bulk_problem(
    text: str, *, member: str, limit: int, item_max_bytes: int | None = None, data: bytes | None = None
) -> str | None:
    """What is wrong with a body that must be ``{member: [at most limit items]}``, found without parsing it whole.

    Items are stepped over one at a time by the C scanner and counting stops at
    ``limit + 1``, so an over-long list costs that many items however large the
    body is, and any other top-level member is refused before its value is read:
    a bulk call of a million items, or one padded with megabytes of anything else,
    is refused without building what it holds. With ``item_max_bytes``, an item
    that cannot be stored in that many bytes (``json_value_bytes_at_least``) is
    refused too, before the exact parse would build it number by number. Anything else that is wrong (not
    an object, malformed) is left to the whole parse that follows (None).
    """
    skip = _SKIPPER.raw_decode

    def after_whitespace(index: int) -> int:
        return _WHITESPACE.match(text, index).end()

    try:
        index = after_whitespace(0)
        if text[index] != "{":
            return None
        index = after_whitespace(index + 1)
        while text[index] == '"':
            name, index = json.decoder.scanstring(text, index + 1)
            if name != member:
                return f"unknown field(s) {name}; allowed: {member}"
            index = after_whitespace(index)
            if text[index] != ":":
                return None
            index = after_whitespace(index + 1)
            if text[index] != "[":
                return None
            index = after_whitespace(index + 1)
            count = 0
            while text[index] != "]":
                start = index
                _, index = skip(text, index)
                if item_max_bytes is not None and index - start > item_max_bytes:
                    # ``data``: the same body as bytes, when its offsets are the text's (ASCII): no copy to encode.
                    span = data[start:index] if data is not None else text[start:index].encode("utf-8", "surrogatepass")
                    least = json_value_bytes_at_least(span)
                    if least > item_max_bytes:
                        return (
                            f"{member}[{count}] is at least {least} bytes as compact JSON; "
                            f"at most {item_max_bytes} are allowed"
                        )
                count += 1
                if count > limit:
                    return f"{member} holds more than {limit} items; at most {limit} are allowed per call"
                index = after_whitespace(index)
                if text[index] == ",":
                    index = after_whitespace(index + 1)
            return None
    except (ValueError, IndexError, RecursionError):
        pass
    return None


_STRING_BYTES = re.compile(rb'"[^"]*"')


def json_values_more_than(data: bytes, limit: int) -> bool:
    """Whether JSON ``data`` certainly holds more than ``limit`` values (member names count as values).

    Decided by whole-buffer C passes (count, replace, one regex without
    backtracking), about 40 ms for 8 MiB at worst, where parsing millions of values
    takes seconds exactly and a tenth of a second just to step over them. Every
    structural comma separates two values and every bracket opens one, so their
    counts outside strings are lower bounds: more than ``limit`` of either is
    refusal enough. Strings are found by dropping escaped backslashes, then
    escaped quotes, after which every quote opens or closes a string; a body of
    more than ``limit`` strings is refused on that count before any is stripped.
    When nothing is refused, the same counts bound the values from above
    (commas + brackets + 1 <= 2 * limit + 1), which bounds what parsing costs.
    """
    if len(data) - len(data.translate(None, b",[{")) <= limit:
        return False
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in data else data
    if unescaped.count(b'"') // 2 > limit:
        return True
    outside = _STRING_BYTES.sub(b"", unescaped)
    return outside.count(b",") > limit or len(outside) - len(outside.translate(None, b"[{")) > limit


# Bytes a single-value body may carry besides its value ({"value": ..., "ttlSeconds": ..., ...}).
VALUE_FRAMING_BYTES = 4096
_JSON_WHITESPACE = b" \t\r\n"


def json_value_bytes_at_least(data: bytes) -> int:
    """A lower bound on the stored (compact, unescaped UTF-8) size of the value a single-value body carries.

    Compacting drops whitespace (counted out here, even inside strings, which
    only lowers the bound); a ``\\uXXXX`` escape saves at most 5 bytes (``\\u0041``
    is stored as ``A``; a surrogate pair's 12 bytes as 4), ``\\/`` one, and every
    other escape none, since the stored form escapes those characters again
    (``json.encoder.encode_basestring``); numbers keep their text. So a body whose bound passes the value limit is
    refused without being parsed: exact parsing costs about 1 us per number, and
    megabytes of numbers would take seconds to refuse.
    """
    saved = 5 * data.count(b"\\u") + data.count(b"\\/")
    return len(data.translate(None, _JSON_WHITESPACE)) - saved - VALUE_FRAMING_BYTES


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value`` (a scalar is 1, ``[1]`` is 2, ``[]`` is 1), counting no further than ``limit + 1``.

    Level by level over containers only, without recursion: a document nested
    deeper than Python's stack still gets an answer.
    """
    depth = 1
    level = [value] if isinstance(value, (dict, list)) else []
    while level and depth <= limit:
        if not any(level):  # every container on this level is empty: nothing is deeper
            return depth
        depth += 1
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, (dict, list))
        ]
    return depth


# --- Writing -------------------------------------------------------------------------------


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, the stored form of JSON values."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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


# --- DRF -----------------------------------------------------------------------------------


def _declared_length(request: Request | None) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"]) if request is not None else None
    except (KeyError, ValueError):
        return None


class JsonBodyParser(BaseParser):
    """Every JSON body of the API (plain numbers): ``json_read`` capped at the view's ``body_max_bytes``.

    ``application/json`` and any ``application/*+json`` are matched to it by
    ``kvsite.http.negotiation.JsonOnlyNegotiation``; any other Content-Type is a 415.
    The cap is the view's, as the server boundary reads it (``declared_body_cap``);
    ``body_max_depth`` on the view changes the nesting limit;
    ``body_list_limits`` (``{"entries": 1000}``) refuses an over-long top-level
    list, or any other top-level member, or (``body_item_max_bytes``) an item
    too big to store, before the body is parsed whole; and
    ``body_value_max_bytes`` refuses a single-value body that cannot hold a value
    that small (``json_value_bytes_at_least``), and ``body_max_values`` one that
    holds more JSON values than that (``json_values_more_than``), both before parsing.
    """

    media_type = "application/json"
    exact = False

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        context = parser_context or {}
        view = context.get("view")
        # The same cap the server boundary enforces (which runs first wherever the app is served).
        max_bytes = declared_body_cap(view)
        declared = _declared_length(context.get("request"))
        # Worded as the server boundary's refusal (kvsite.http.bodies), which comes first where it runs.
        if declared is not None and declared > max_bytes:
            raise ValueTooLarge(f"request body is {declared} bytes; at most {max_bytes} are allowed here")
        # Never more than one byte past the cap is read, whatever the body claims to be.
        data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueTooLarge(f"request body is larger than the {max_bytes} bytes allowed here")
        max_values = getattr(view, "body_max_values", None)
        if max_values is not None and len(data) > LIST_PRECOUNT_BYTES and json_values_more_than(data, max_values):
            raise ValueTooLarge(
                f"request body holds more than {max_values} JSON values; at most {max_values} are allowed"
            )
        limits = getattr(view, "body_list_limits", None)
        if limits and len(data) > LIST_PRECOUNT_BYTES:
            _refuse_bulk_problems(data, limits, getattr(view, "body_item_max_bytes", None))
        value_max = getattr(view, "body_value_max_bytes", None)
        if value_max is not None and len(data) > value_max:
            least = json_value_bytes_at_least(data)
            if least > value_max:
                raise ValueTooLarge(f"value is at least {least} bytes as compact JSON; at most {value_max} are allowed")
        return json_read(
            data, max_bytes=max_bytes, exact=self.exact, max_depth=getattr(view, "body_max_depth", MAX_DEPTH)
        )


def _refuse_bulk_problems(data: bytes, limits: dict[str, int], item_max_bytes: int | None) -> None:
    """A bulk view's ``body_list_limits`` ({member: most items}), enforced before the body is parsed whole."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return  # json_read says so
    for member, limit in limits.items():
        problem = json_bulk_problem(
            text, member=member, limit=limit, item_max_bytes=item_max_bytes, data=data if data.isascii() else None
        )
        if problem:
            raise InvalidArgument(problem)


class ExactJsonBodyParser(JsonBodyParser):
    """``JsonBodyParser`` in exact mode: numbers are ``JsonNumber``, lone surrogates kept (items, namespaces)."""

    exact = True


def request_json(request: Request, *, what: str = "body") -> Any:
    """``request.data`` of a view that needs a JSON body; InvalidArgument (400) when none was sent.

    DRF hands an empty body to no parser and gives ``{}`` for it, whatever its
    Content-Type; ``{}`` has to be sent to mean ``{}``.
    """
    data = request.data
    if request.stream is None:
        raise InvalidArgument(f"{what} must be JSON")
    return data
