"""Request logs: one access line per request, the request id on every record, nothing secret in any.

``RequestIdMiddleware`` puts the request id in ``request_id_var`` for the length of
the request and calls ``access_log_emit`` once the response exists. Every handler in
``settings.LOGGING`` runs ``RedactingFilter``, which stamps the record with that id
and scrubs bearer tokens, ``kvs_`` API keys, key material and ``name=value`` pairs
that look secret from the message and the traceback. It rewrites the record in
place (message rendered, arguments dropped), so handlers that run after it see the
scrubbed record too; the access line is scrubbed field by field when it is made.
The formatters emit only named fields, never the ``request`` object Django's
request logger attaches, so no header is ever dumped.
"""

import json
import logging
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, empty

request_id_var: ContextVar[str] = ContextVar("kvsite_request_id", default="")

access_logger = logging.getLogger("kvsite.access")

REDACTED = "[redacted]"

# Query parameters whose values never reach a log line (single-use tickets included).
SENSITIVE_PARAMS = frozenset({"ticket", "token", "access_token", "api_key", "apikey", "key_material", "password"})

# Names whose value, after ":" or "=", is taken for a secret: tokens, passwords, keys,
# and "value" (the secrets API's payload field).
_SECRET_WORDS = (
    "password|passwd|secret|token|api_key|api-key|apikey|master_key|master-key|masterkey"
    "|private_key|private-key|privatekey|credential|authorization|ticket|value|cookie"
)
_REDACT = re.compile(
    r"(?P<bearer>\b(?:bearer|basic)\s+)[^\s'\",;]+"
    r"|(?P<kvs>\bkvs_)[A-Za-z0-9_-]{6,}"
    rf"|(?P<pair>(?<![\w-])[\"']?[\w-]*(?:{_SECRET_WORDS})[\w-]*[\"']?\s*[:=]\s*)"
    r"(?!\[redacted\])(?:(?:bearer|basic)\s+)?(?:\"[^\"]*\"|'[^']*'|[^\s,;&}\])]+)",
    re.IGNORECASE,
)
# 32 random bytes in base64, the shape of a master key.
_KEY_MATERIAL = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=")
# The regular expression costs ~20 µs on a typical line; these substring tests, ~1 µs,
# let lines that cannot match skip it (every word _REDACT needs is among them).
_TRIGGERS = ("bearer", "basic", "kvs_", *_SECRET_WORDS.split("|"))


def _replace(match: re.Match) -> str:
    return (match["bearer"] or match["kvs"] or match["pair"]) + REDACTED


def redact(text: str) -> str:
    """``text`` with bearer tokens, API keys, key material and secret-looking ``name=value`` pairs replaced."""
    lowered = text.lower()
    if any(word in lowered for word in _TRIGGERS):
        text = _REDACT.sub(_replace, text)
    if "=" in text:
        text = _KEY_MATERIAL.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Adds ``request_id`` and scrubs the record in place; put it on every handler."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get("_kv_redacted"):
            return True
        if not getattr(record, "request_id", ""):
            # Django's request logger passes the request; everything else runs inside one.
            request = record.__dict__.get("request")
            record.request_id = request_id_var.get() or getattr(request, "request_id", "")
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller's logging call
            message = f"{record.msg!r} (arguments not formatted)"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._kv_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, access fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
        }
        access = record.__dict__.get("access")
        if access:
            line.update(access)
        elif "status_code" in record.__dict__:  # django.request's 4xx/5xx records
            line["status"] = record.status_code
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for development: ``time level logger [request id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "request_id", ""):
            record.request_id = "-"
        return super().format(record)


def _principal(request: HttpRequest) -> tuple[str, str] | None:
    """Name and ``kind#id`` of whoever the request acted as, without evaluating a lazy session user."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, LazyObject):  # AuthenticationMiddleware's; DRF replaces it with a Principal
        user = user._wrapped
        if user is empty or not user.is_authenticated:
            return None
        return user.get_username(), f"user#{user.pk}"
    kind = getattr(user, "kind", None)
    return (user.name, f"{kind}#{user.id}") if kind else None


def _query(raw: str) -> str | None:
    """The query string, scrubbed, with the values of sensitive parameters replaced."""
    if not raw:
        return None
    parts = []
    for part in raw.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and name.lower() in SENSITIVE_PARAMS else part)
    return redact("&".join(parts))


def access_log_emit(*, request: HttpRequest, response: HttpResponse, started: float) -> None:
    """One ``kvsite.access`` INFO line for a finished request (nothing when INFO is off)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    match = request.resolver_match
    status = response.status_code
    # Scrubbed here, field by field, so the filter can pass this record as it is.
    path = redact(request.path)
    query = _query(request.META.get("QUERY_STRING", ""))
    principal, principal_id = _principal(request) or (None, None)
    if principal:
        principal = redact(principal)
    access_logger.info(
        "%s %s%s %s %.1fms%s",
        request.method,
        path,
        f"?{query}" if query else "",
        status,
        duration_ms,
        f" by {principal_id} {principal}" if principal else "",
        extra={
            "_kv_redacted": True,
            "request_id": request.request_id,
            "access": {
                "method": request.method,
                "path": path,
                "route": match.route if match is not None else None,
                "query": query,
                "status": status,
                "duration_ms": duration_ms,
                "principal": principal,
                "principal_id": principal_id,
                "remote_addr": request.META.get("REMOTE_ADDR"),
            },
        },
    )
