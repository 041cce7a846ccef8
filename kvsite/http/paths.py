"""Whether a request's path and query spell UTF-8, judged from the bytes the client sent.

Servers decode a path before Django sees it, each in its own way: uvicorn turns a
percent-escape that is not UTF-8 into U+FFFD (``%FF`` and ``%FE`` become one character),
and Django under WSGI escapes such bytes again, so ``%FF`` reads like the ``%25FF`` of a
literal ``%``. Neither can be told apart afterwards, so the bytes are taken from where each
server keeps them: the ASGI scope's ``raw_path`` (Django's ASGI handler, a2wsgi's
``environ["asgi.scope"]``), or, under a WSGI server, ``PATH_INFO`` as the server gave it,
kept by ``WsgiPathBytes`` before Django replaces it.
"""

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, unquote_to_bytes

from django.http import HttpRequest

# Where WsgiPathBytes keeps PEP 3333's PATH_INFO (the path's bytes, as latin-1 text).
PATH_BYTES_KEY = "kvsite.path_bytes"


class WsgiPathBytes:
    """Keeps the WSGI server's ``PATH_INFO`` in the environ: Django's request overwrites it with its UTF-8 reading."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ[PATH_BYTES_KEY] = environ.get("PATH_INFO", "")
        return self.app(environ, start_response)


def path_bytes(request: HttpRequest) -> bytes | None:
    """The request path's bytes, percent-escapes decoded; None when the server kept no record of them."""
    request = getattr(request, "_request", request)  # a DRF request: the Django one it wraps
    kept = request.META.get(PATH_BYTES_KEY)
    if kept is not None:
        return kept.encode("latin-1", "replace")
    scope = getattr(request, "scope", None) or request.META.get("asgi.scope")
    if scope is not None and scope.get("raw_path") is not None:
        return unquote_to_bytes(scope["raw_path"])
    return None


def path_is_utf8(request: HttpRequest) -> bool:
    """False when the path's percent-escapes (or raw bytes) are not UTF-8; True when they are or cannot be known."""
    raw = path_bytes(request)
    if raw is None:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def query_is_utf8(request: HttpRequest) -> bool:
    """False when a percent-escape in the query string is not UTF-8 (Django would read it as U+FFFD)."""
    try:
        parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return False
    return True
