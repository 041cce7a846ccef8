"""How the dashboard shows stored bytes: pretty JSON, text or a hex dump, and a line diff of two values."""

import binascii
import difflib
import json
import re
from dataclasses import dataclass

JSON, TEXT, HEX = "json", "text", "hex"
# Beyond this a value is shown cut short (the page would get unusably long); edits still see it whole.
DISPLAY_LIMIT = 256 * 1024
HEX_ROW = 16


@dataclass(frozen=True)
class ShownValue:
    view: str  # what is shown: json | text | hex
    text: str
    available: tuple[str, ...]  # the views this value can be shown in
    truncated: bool
    size: int


def as_text(value: bytes) -> str | None:
    """The value as UTF-8 text, or None if it is not valid UTF-8."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def as_json(value: bytes) -> object | None:
    """The parsed value if it is a JSON document, else None (bare strings and numbers count too)."""
    text = as_text(value)
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def pretty_json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def hex_dump(value: bytes) -> str:
    """``offset  hex bytes  |ascii|`` rows of 16 bytes, like ``hexdump -C``."""
    lines = []
    for offset in range(0, len(value), HEX_ROW):
        chunk = value[offset : offset + HEX_ROW]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        ascii_part = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hex_part:<{HEX_ROW * 3 - 1}}  |{ascii_part}|")
    return "\n".join(lines)


# C0 controls but tab, LF and CR, and DEL: text holding them is shown as hex first (as text they are invisible).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


def available_views(value: bytes) -> tuple[str, ...]:
    """The views ``value`` can be shown in, the best first."""
    if as_json(value) is not None:
        return (JSON, TEXT, HEX)
    text = as_text(value)
    if text is None:
        return (HEX,)
    if _CONTROL_RE.search(text):
        return (HEX, TEXT)
    return (TEXT, HEX)


def value_render(value: bytes, *, view: str | None = None) -> str:
    """The whole value as ``view`` (the best view when None or not possible for this value)."""
    views = available_views(value)
    if view not in views:
        view = views[0]
    if view == JSON:
        return pretty_json(as_json(value))
    if view == TEXT:
        return as_text(value) or ""
    return hex_dump(value)


def value_show(value: bytes, *, view: str | None = None) -> ShownValue:
    """The value for display, in ``view`` if it can be shown that way, cut at ``DISPLAY_LIMIT``."""
    views = available_views(value)
    chosen = view if view in views else views[0]
    truncated = len(value) > DISPLAY_LIMIT
    if truncated and chosen == JSON:
        chosen = TEXT
    shown = value[:DISPLAY_LIMIT] if truncated else value
    if chosen == TEXT:
        text = shown.decode(errors="replace")
    else:
        text = value_render(shown, view=chosen)
    return ShownValue(view=chosen, text=text, available=views, truncated=truncated, size=len(value))


@dataclass(frozen=True)
class EditableValue:
    """What an edit box starts with, and how what it sends back is read (``value_parse``)."""

    text: str
    encoding: str  # text | hex
    newline: str  # lf | crlf: the line break each line of a text is saved with
    note: str  # why the value is edited as hex ("" when it is edited as text)


def text_box_problem(text: str) -> str | None:
    """Why ``text`` would not come back unchanged through a browser's text box, or None if it would.

    The page's HTML parser turns NUL into U+FFFD and every CR or CRLF into LF; the
    form then sends each line break as CRLF, and the server puts back one kind of
    line break for the whole value (``value_parse``). Everything else (tabs, other
    control characters, trailing spaces, a byte order mark) comes back as it was.
    """
    if "\x00" in text:
        return "it holds NUL bytes, which a page shows as U+FFFD"
    crlf = text.count("\r\n")
    if text.count("\r") != crlf:
        return "it holds a CR that does not end a CRLF line break, which a page reads as LF"
    if crlf and text.count("\n") != crlf:
        return "it mixes CRLF and LF line endings, and a text box sends back one kind"
    return None


def value_for_editing(value: bytes) -> EditableValue:
    """The value as an edit box should hold it: as text when it round-trips through one, else as hex with a note."""
    text = as_text(value)
    problem = "it is not UTF-8 text" if text is None else text_box_problem(text)
    if text is not None and problem is None:
        return EditableValue(text=text, encoding=TEXT, newline=newline_of(text), note="")
    return EditableValue(
        text=binascii.hexlify(value).decode(),
        encoding=HEX,
        newline="lf",
        note=f"Edited as hex, byte for byte: a text box would change this value ({problem}).",
    )


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add" | "del" | "ctx" | "hunk"
    text: str


def value_diff(old: bytes, new: bytes, *, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff of two values in their common best view (JSON pretty-printed, so key order shows)."""
    common = [view for view in available_views(old) if view in available_views(new)]
    view = common[0] if common else HEX
    old_lines = value_render(old[:DISPLAY_LIMIT], view=view).splitlines()
    new_lines = value_render(new[:DISPLAY_LIMIT], view=view).splitlines()
    lines = []
    for line in difflib.unified_diff(old_lines, new_lines, fromfile=old_label, tofile=new_label, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("add", line))
        elif line.startswith("-"):
            lines.append(DiffLine("del", line))
        else:
            lines.append(DiffLine("ctx", line))
    return lines


def newline_of(text: str) -> str:
    """``crlf`` for a text whose line breaks are CRLF, else ``lf``."""
    return "crlf" if "\r\n" in text else "lf"


def value_parse(raw: str, *, encoding: str, newline: str = "lf") -> bytes:
    """The bytes an edit box means: its UTF-8 text, or the bytes its hex spells (ValueError if not hex).

    Browsers submit every line break of a text area as CRLF, so each line break of
    a text is saved as ``newline`` (the edited value's, unless changed on the form),
    never as the browser's.
    """
    if encoding == HEX:
        cleaned = "".join(raw.split())
        try:
            return binascii.unhexlify(cleaned)
        except binascii.Error as error:
            raise ValueError("not valid hex: use pairs of 0-9 a-f digits") from error
    text = raw.replace("\r\n", "\n")
    if newline == "crlf":
        text = text.replace("\n", "\r\n")
    return text.encode()
