"""The WebSocket Origin check with real handshakes: the site's own origin (scheme, host and port), listed extra
origins, and no Origin at all; every other origin is refused before the consumer runs.

The handshakes carry a staff session cookie, the credential a foreign page could make a
browser send; each is tried on the serving paths that serve WebSockets.
"""

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from buckets.core import store
from buckets.core.names import app_bucket
from tests.live_server import AsgiServer, redis_available, server_redis_url, start_asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

EXTRA = "https://app.example.com"
# The servers' and the session cookie's: a session is only valid under the key that signed it.
SECRET_KEY = secrets.token_urlsafe(48)
WATCH = "/api/v1/kv/buckets/app/watch"


@pytest.fixture(scope="module", params=["development", "production"])
def server(request, django_db_setup, django_db_blocker) -> Iterator[AsgiServer]:
    serving = request.param
    if serving != "development" and not redis_available(server_redis_url()):
        pytest.skip(f"the {serving} path needs Redis at {server_redis_url()}")
    env = {"KV_ALLOWED_ORIGINS": f"{EXTRA}, http://tools.example.com:8080", "DJANGO_SECRET_KEY": SECRET_KEY}
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        served = start_asgi_server(serving=serving, env=env)
        stack.callback(served.stop)
        yield served


@pytest.fixture
def cookie(server) -> dict[str, str]:
    """A staff session's cookie, and the bucket it watches."""
    store.bucket_create(name=app_bucket("app"))
    client = Client()
    with override_settings(SECRET_KEY=SECRET_KEY):
        client.force_login(get_user_model().objects.create_user("staff", password="x", is_staff=True))
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def handshake(server: AsgiServer, *, origin: str | None, headers: dict[str, str]) -> int:
    """The status of a WebSocket handshake to ``server`` (101 when it opened and sent its first frame)."""

    async def attempt() -> int:
        try:
            async with connect(
                server.ws_url + WATCH + "?include=current", origin=origin, additional_headers=headers, open_timeout=10
            ) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


def test_the_sites_own_origin_is_accepted(server, cookie) -> None:
    assert handshake(server, origin=server.http_url, headers=cookie) == 101


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:3000",  # another port on the same host: another site
        "https://127.0.0.1:{port}",  # another scheme
        "http://localhost:{port}",  # another host, though an allowed one
        "http://127.0.0.1",  # the default port
        "http://evil.example:{port}",
        "null",
        "http://127.0.0.1:{port}/path",
        "HTTP://127.0.0.1:{port}.evil.example",
    ],
)
def test_every_other_origin_is_refused(server, cookie, origin: str) -> None:
    assert handshake(server, origin=origin.format(port=server.port), headers=cookie) == 403


@pytest.mark.parametrize("origin", [EXTRA, EXTRA + ":443", "http://tools.example.com:8080"])
def test_an_origin_listed_in_kv_allowed_origins_is_accepted(server, cookie, origin: str) -> None:
    assert handshake(server, origin=origin, headers=cookie) == 101


@pytest.mark.parametrize("origin", ["http://app.example.com", "https://app.example.com:8443", "https://example.com"])
def test_a_listed_origin_matches_in_full(server, cookie, origin: str) -> None:
    assert handshake(server, origin=origin, headers=cookie) == 403


def test_a_handshake_without_origin_is_allowed(server, cookie, issue_token) -> None:
    # Not a browser: it authenticates by what it sends itself, which no other site can make it send.
    assert handshake(server, origin=None, headers={"Authorization": f"Bearer {issue_token('reader')}"}) == 101
    assert handshake(server, origin=None, headers=cookie) == 101


def raw_handshake(server: AsgiServer, *, host: str, origin: str, cookie: dict[str, str]) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = (
            f"GET {WATCH} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nCookie: {cookie['Cookie']}\r\n\r\n"
        )
        sock.sendall(request.encode())
        return int(sock.recv(4096).split(b" ", 2)[1])


def test_a_host_outside_allowed_hosts_has_no_origin_of_its_own(server, cookie) -> None:
    # A page of a name that resolves to this server (DNS rebinding) is same-origin only by its own Host header.
    assert raw_handshake(server, host=f"evil.example:{server.port}", origin=f"http://evil.example:{server.port}",
                         cookie=cookie) == 403  # fmt: skip
    assert raw_handshake(server, host=f"127.0.0.1:{server.port}", origin=server.http_url, cookie=cookie) == 101


def test_kv_allowed_origins_are_full_origins() -> None:
    from kvsite.websocket_origin import origins_parse

    assert origins_parse(" https://App.Example.com ,http://[::1]:8000,, http://x.example:80") == frozenset(
        {("https", "app.example.com", 443), ("http", "::1", 8000), ("http", "x.example", 80)}
    )
    for bad in ("app.example.com", "ftp://x.example", "https://x.example/path", "https://", "*", "https://x:99999"):
        with pytest.raises(ImproperlyConfigured, match="KV_ALLOWED_ORIGINS"):
            origins_parse(bad)


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "allowed"),
    [
        ("ws", "[::1]:8000", "http://[::1]:8000", True),
        ("ws", "[::1]:8000", "http://[::1]:8001", False),
        ("wss", "kv.example.com", "https://kv.example.com", True),
        ("wss", "kv.example.com:443", "https://KV.example.com", True),
        ("wss", "kv.example.com", "http://kv.example.com", False),
        ("ws", "kv.example.com", "https://kv.example.com", False),
        ("ws", "other.example.com", "http://other.example.com", False),  # not an allowed host
        ("ws", "kv.example.com", "https://app.example.com", True),  # listed
    ],
)
def test_the_sites_own_origin_is_its_host_with_the_scheme_the_server_sees(
    settings, scheme: str, host: str, origin: str, allowed: bool
) -> None:
    from kvsite.websocket_origin import origin_allowed, origins_parse

    settings.ALLOWED_HOSTS = ["kv.example.com", "[::1]"]
    settings.KV_ALLOWED_ORIGINS = origins_parse(EXTRA)
    scope = {"type": "websocket", "scheme": scheme, "headers": [(b"host", host.encode()), (b"origin", origin.encode())]}

    assert origin_allowed(scope) is allowed
    assert origin_allowed({**scope, "headers": [*scope["headers"], (b"origin", origin.encode())]}) is False
