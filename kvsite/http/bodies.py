"""The request body contract, kept at the server boundary for every way kvsite is served.

A view sees a request only once its body has been read in full and checked:

- a chunked body is read to its end (up to the route's cap) and handed on with a
  ``Content-Length``, exactly like the same bytes sent with one; only a WSGI
  server that cannot say where such a body ends (no ``wsgi.input_terminated``)
  gets ``411 length_required``;
- a body shorter than its ``Content-Length`` (the client closed or half-closed
  mid-body) is a 400, so a cut-off upload can never be taken for a whole one;
- a body over the route's cap is a 413, decided from ``Content-Length`` before
  anything is read, or as soon as a chunked body passes the cap.

``AsgiBodyGuard`` wraps the ASGI HTTP application (Django's ASGI handler in
development, a2wsgi's WSGI bridge with Redis), ``WsgiBodyGuard`` the WSGI one
(``kvsite.wsgi`` under granian, gunicorn...). Neither answers by itself: a refused
request goes on with an empty body and its refusal attached, and
``RequestBodyMiddleware`` answers it inside Django, so the refusal gets a request
id, an access-log line, a count in the request metrics and the error shape of
the path's dialect. A transfer coding other than ``chunked`` is a 501.

Caps are declared by the views: ``body_max_bytes`` on a view class, or
``@body_limit(n)`` on a function view. Routes that declare none get
``DEFAULT_BODY_MAX_BYTES``.
"""

import asyncio
import functools
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, URLResolver, get_resolver, resolve

from buckets.core.exceptions import DomainError, InvalidArgument, LengthRequired, Unimplemented, ValueTooLarge
from kvsite.http.errors import error_response
from kvsite.http.metrics import REQUESTS

# Forms, small JSON objects: what a route that declares nothing may receive.
DEFAULT_BODY_MAX_BYTES = 64 * 1024
# The route label of refused requests in kvsite_http_requests_total (no route was looked up).
REFUSED_ROUTE = "(body refused)"
# Where a refusal travels with the request: the ASGI scope (Django's ASGIRequest.scope,
# a2wsgi's environ["asgi.scope"]) or the WSGI environ (request.META).
REFUSAL_KEY = "kvsite.body_refusal"

View = TypeVar("View", bound=Callable)


def body_limit(max_bytes: int) -> Callable[[View], View]:
    """Declare the largest request body a function view takes (class views set ``body_max_bytes``)."""

    def declare(view: View) -> View:
        view.body_max_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return declare


def declared_body_cap(view: object) -> int:
    """The largest body ``view`` (a view function, a view class or a view instance) declares it takes."""
    declared = getattr(getattr(view, "view_class", None), "body_max_bytes", None)
    if declared is None:
        declared = getattr(view, "body_max_bytes", DEFAULT_BODY_MAX_BYTES)
    return declared


def body_cap(path_info: str) -> int:
    """The most bytes a request body to ``path_info`` may have, as its view declares."""
    try:
        return declared_body_cap(resolve(path_info).func)
    except Resolver404:
        return DEFAULT_BODY_MAX_BYTES


@functools.cache
def smallest_body_cap() -> int:
    """The smallest cap any route declares: a body no larger fits every route, so needs no lookup.

    Resolving a path costs about 20 us, most of what checking a small body costs.
    """
    caps = [DEFAULT_BODY_MAX_BYTES]
    pending = list(get_resolver().url_patterns)
    while pending:
        pattern = pending.pop()
        if isinstance(pattern, URLResolver):
            pending.extend(pattern.url_patterns)
        else:
            caps.append(declared_body_cap(pattern.callback))
    return min(caps)


def _cap_for(path_info: str, length: int | None) -> int:
    if length is not None and length <= smallest_body_cap():
        return smallest_body_cap()
    return body_cap(path_info)


def _too_large(cap: int, size: int | None = None) -> ValueTooLarge:
    if size is None:
        return ValueTooLarge(f"request body is larger than the {cap} bytes allowed here")
    return ValueTooLarge(f"request body is {size} bytes; at most {cap} are allowed here")


def _short(received: int, declared: int) -> InvalidArgument:
    return InvalidArgument(
        f"request body ended after {received} of the {declared} bytes its Content-Length announced; nothing was written"
    )


def _content_length(raw: str) -> int | DomainError:
    # Digits only: int() would also take "+5", " 5", "5_0" and other scripts' digits.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return InvalidArgument("Content-Length must be a whole number of bytes")
    return int(raw)


@dataclass
class Framing:
    """How a request says its body ends: a length, chunks, or not at all (no body)."""

    length: int | None = None
    chunked: bool = False
    refusal: DomainError | None = None

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length) or self.refusal is not None


def _framing(content_length: str | None, transfer_encoding: str | None) -> Framing:
    if transfer_encoding:
        # RFC 9112 6.1: with Transfer-Encoding the length comes from the chunks and Content-Length
        # is ignored. The servers here undo "chunked" and nothing else: "gzip, chunked" would reach
        # the view as the compressed bytes, so any other coding is a 501, as the RFC says.
        codings = [coding.strip().lower() for coding in transfer_encoding.split(",") if coding.strip()]
        if codings != ["chunked"]:
            return Framing(refusal=Unimplemented(f"Transfer-Encoding {transfer_encoding!r}: only chunked is accepted"))
        return Framing(chunked=True)
    if content_length is None or content_length == "":
        return Framing()
    lengths = {part.strip() for part in content_length.split(",")}
    if len(lengths) != 1:
        return Framing(refusal=InvalidArgument("Content-Length is given more than once with different values"))
    length = _content_length(lengths.pop())
    if isinstance(length, DomainError):
        return Framing(refusal=length)
    return Framing(length=length)


def _length_required() -> LengthRequired:
    return LengthRequired("this server cannot read a chunked body: send Content-Length")


def _before_reading(framing: Framing, path_info: str) -> tuple[int, DomainError | None]:
    """The route's cap, and the refusal the head alone decides (bad framing, or a length over the cap)."""
    if framing.refusal is not None:
        return 0, framing.refusal
    cap = _cap_for(path_info, framing.length)
    if framing.length is not None and framing.length > cap:
        return cap, _too_large(cap, framing.length)
    return cap, None


def _after_reading(chunks: list[bytes], size: int, cap: int, framing: Framing) -> tuple[bytes, DomainError | None]:
    """The body read, or why it is refused: over the cap, or not the length announced."""
    if size > cap:
        return b"", _too_large(cap, framing.length)
    if framing.length is not None and size != framing.length:
        return b"", _short(size, framing.length)
    return b"".join(chunks), None


# --- ASGI ---------------------------------------------------------------------------------


class AsgiBodyGuard:
    """Reads and checks an HTTP request's body before the wrapped ASGI application sees the request."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        content_length = transfer_encoding = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                text = value.decode("latin-1")
                content_length = text if content_length is None else f"{content_length},{text}"
            elif name == b"transfer-encoding":
                text = value.decode("latin-1")
                transfer_encoding = text if transfer_encoding is None else f"{transfer_encoding},{text}"
        framing = _framing(content_length, transfer_encoding)
        if not framing.has_body:
            return await self.app(scope, receive, send)
        body, refusal = await self._read(scope, receive, framing)
        headers = [(name, value) for name, value in scope["headers"] if name not in _FRAMING_HEADERS]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {**scope, "headers": headers}
        if refusal is not None:
            scope[REFUSAL_KEY] = refusal
        replayed = False

        async def replay() -> dict:
            # The whole body in one message, then only what the server says next: a disconnect.
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            if refusal is not None:
                # Never ask the server for the rest of a refused body: uvicorn would answer an
                # "Expect: 100-continue" with "100 Continue" and wait for it. Django's handler
                # listens for a disconnect here and cancels the wait once it has answered.
                await asyncio.get_running_loop().create_future()
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message

        if refusal is not None:
            send = _closing(send)
        return await self.app(scope, replay, send)

    async def _read(self, scope: dict, receive: Callable, framing: Framing) -> tuple[bytes, DomainError | None]:
        path, root = scope["path"], scope.get("root_path", "")
        path_info = (path[len(root) :] if root and path.startswith(root) else path) or "/"
        cap, refusal = _before_reading(framing, path_info)
        if refusal is not None:
            return b"", refusal
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", _short(size, framing.length) if framing.length else InvalidArgument(
                    "the client closed the connection before the request body ended; nothing was written"
                )
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return b"", _too_large(cap, framing.length)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return _after_reading(chunks, size, cap, framing)


_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


def _closing(send: Callable) -> Callable:
    """``send`` with ``Connection: close`` on the response: the rest of a refused body is never read."""

    async def closing(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return closing


# --- WSGI ---------------------------------------------------------------------------------


class WsgiBodyGuard:
    """Reads and checks an HTTP request's body before the wrapped WSGI application sees the request."""

    read_size = 64 * 1024

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        framing = _framing(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))
        if not framing.has_body:
            return self.app(environ, start_response)
        body, refusal = self._read(environ, framing)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        if refusal is not None:
            environ[REFUSAL_KEY] = refusal
        return self.app(environ, start_response)

    def _read(self, environ: dict, framing: Framing) -> tuple[bytes, DomainError | None]:
        if framing.refusal is None and framing.chunked and not environ.get("wsgi.input_terminated"):
            # Without this flag a server promises no end to the stream: reading on could wait forever.
            return b"", _length_required()
        # PEP 3333 carries the path as latin-1; Django reads it back as UTF-8, and so must the lookup.
        path_info = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"
        cap, refusal = _before_reading(framing, path_info)
        if refusal is not None:
            return b"", refusal
        wanted = cap + 1 if framing.length is None else framing.length
        stream = environ["wsgi.input"]
        chunks: list[bytes] = []
        size = 0
        while size < wanted:
            try:
                chunk = stream.read(min(self.read_size, wanted - size))
            except (OSError, ValueError, RuntimeError):
                # A server reports a connection cut mid-body by raising or by an early end:
                # either way the body is not the one announced.
                chunk = b""
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return _after_reading(chunks, size, cap, framing)


# --- Django ----------------------------------------------------------------------------------


def body_refusal_of(request: HttpRequest) -> DomainError | None:
    """The refusal a guard attached to ``request``, if any."""
    refusal = request.META.get(REFUSAL_KEY)
    if refusal is None:
        scope = getattr(request, "scope", None) or request.META.get("asgi.scope")
        if scope is not None:
            refusal = scope.get(REFUSAL_KEY)
    return refusal


class RequestBodyMiddleware:
    """Answers the requests a body guard refused, before any view runs.

    Also the last line for a server that bypassed the guards: a chunked body that
    reaches Django still marked chunked was read by nobody, so it is refused (411)
    rather than taken for an empty one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal: Any = body_refusal_of(request)
        if refusal is None and request.META.get("HTTP_TRANSFER_ENCODING"):
            refusal = _length_required()
        if refusal is not None:
            # Answered before the metrics middleware (the innermost) would see it: counted here.
            REQUESTS.labels(REFUSED_ROUTE, request.method, str(refusal.status)).inc()
            return error_response(request, refusal)
        return self.get_response(request)
