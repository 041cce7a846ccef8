"""Origin checks for WebSocket handshakes that do not lock out API clients.

A browser's ``Origin`` must be the site's own origin, scheme, host and port alike, or one
listed in ``KV_ALLOWED_ORIGINS``. The site's own origin is what the browser connected to:
the handshake's ``Host`` (which must be one of ``ALLOWED_HOSTS``) with the scheme the
server sees (``ws`` is ``http``, ``wss`` is ``https``; behind a TLS proxy that is the
proxy's ``X-Forwarded-Proto`` when the server trusts it, else list the public origin).
Channels' ``OriginValidator`` with ``ALLOWED_HOSTS`` compared host names only, so a page
on ``http://localhost:3000`` could open the dashboard's sockets on ``:8000`` with its cookie.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

# An origin as compared: (scheme, host in lower case and IPv6 without brackets, port).
Origin = tuple[str, str, int]
DEFAULT_PORTS = {"http": 80, "https": 443}
# The web scheme of a page that is same-origin with a socket of this scheme.
PAGE_SCHEMES = {"ws": "http", "wss": "https"}


def origin_parse(text: str) -> Origin | None:
    """``text`` as an origin (``scheme://host[:port]``, http or https), or None if it is not one."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.query or parts.fragment:
        return None
    if "@" in parts.netloc:
        return None
    return scheme, parts.hostname, DEFAULT_PORTS[scheme] if port is None else port


def origins_parse(raw: str) -> frozenset[Origin]:
    """``KV_ALLOWED_ORIGINS``: comma-separated full origins; ImproperlyConfigured names one that is not."""
    origins = set()
    for text in raw.split(","):
        if not text.strip():
            continue
        origin = origin_parse(text)
        if origin is None:
            raise ImproperlyConfigured(
                f"KV_ALLOWED_ORIGINS: {text.strip()!r} is not an origin; write scheme://host[:port], "
                "http or https, nothing after the port (e.g. https://app.example.com)"
            )
        origins.add(origin)
    return frozenset(origins)


def _header(scope: dict, name: bytes) -> list[bytes]:
    return [value for header, value in scope.get("headers", []) if header == name]


def _site_origin(scope: dict) -> Origin | None:
    """The origin the client connected to: its Host, if an allowed host, with the scheme the server sees."""
    hosts = _header(scope, b"host")
    scheme = PAGE_SCHEMES.get(scope.get("scheme", "ws"))
    if len(hosts) != 1 or scheme is None:
        return None
    try:
        host = hosts[0].decode("ascii")
    except UnicodeDecodeError:
        return None
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # as Django's own request.get_host()
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, allowed):
        return None
    return origin_parse(f"{scheme}://{host}")


def origin_allowed(scope: dict) -> bool:
    """Whether a handshake's Origin may open a socket: none at all, the site's own, or a listed one."""
    origins = _header(scope, b"origin")
    if not origins:
        return True
    if len(origins) > 1:
        return False
    try:
        origin = origin_parse(origins[0].decode("ascii"))
    except UnicodeDecodeError:
        return False
    if origin is None:
        return False
    return origin in settings.KV_ALLOWED_ORIGINS or origin == _site_origin(scope)


class BrowserOriginValidator:
    """Refuse a foreign ``Origin``; allow a handshake that sends none.

    The check exists against cross-site WebSocket hijacking: a page on another
    site riding the dashboard's session cookie. Browsers always send ``Origin``
    on a WebSocket handshake, so a foreign one is refused. A client without it
    is not a browser, and authenticates with a bearer token or a ticket, which
    no other site can make it send.
    """

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("BrowserOriginValidator guards WebSocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def browser_origin_validator(application) -> BrowserOriginValidator:
    return BrowserOriginValidator(application)
