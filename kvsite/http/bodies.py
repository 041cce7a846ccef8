"""The request body contract, kept at the server boundary for every way kvsite is served.

A view sees a request only once its body has been read in full and checked: a
chunked body is read to its end (up to the route's cap) and handed on with a
``Content-Length``, exactly like the same bytes sent with one; a body shorter
than its ``Content-Length`` (the client closed or half-closed) and a body over
the route's cap are refused before any view runs.

Caps are declared by the views: ``body_max_bytes`` on a view class, or
``@body_limit(n)`` on a function view. Routes that declare none get
``DEFAULT_BODY_MAX_BYTES``.
"""

from collections.abc import Callable
from typing import TypeVar

# Forms, small JSON objects: what a route that declares nothing may receive.
DEFAULT_BODY_MAX_BYTES = 64 * 1024

View = TypeVar("View", bound=Callable)


def body_limit(max_bytes: int) -> Callable[[View], View]:
    """Declare the largest request body a function view takes (class views set ``body_max_bytes``)."""

    def declare(view: View) -> View:
        view.body_max_bytes = max_bytes  # type: ignore[attr-defined]
        return view

    return declare
