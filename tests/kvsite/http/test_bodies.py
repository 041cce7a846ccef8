"""The request body contract on every serving path: what is acknowledged is exactly what was sent.

Each case runs on a real server of each path users run (``tests.live_server.SERVING_PATHS``):
chunked bodies, bodies over the cap, clients that close or half-close mid-body and bodies
longer than their Content-Length. "Nothing written" is checked in the database (the bucket's
last revision) and "nothing published" on a live watch: the first change a watcher receives
after the bad requests is the good write that follows them.
"""

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from buckets.core import store
from buckets.core.names import app_bucket
from kvsite.access.apikeys import apikey_create
from kvsite.http.bodies import REFUSED_ROUTE, WsgiBodyGuard, _framing
from kvsite.http.metrics import REQUESTS
from tests.buckets.kv.test_consumers import Watcher
from tests.live_server import (
    SERVING_PATHS,
    AsgiServer,
    redis_available,
    server_redis_url,
    start_asgi_server,
    ws_connect,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# A small ceiling (the default bucket's value size) keeps the over-cap cases quick; other routes take 64 KiB.
CEILING = 1024 * 1024
SERVER_ENV = {"KV_VALUE_SIZE_CEILING": str(CEILING)}
BUCKET = "bodies"


@dataclass
class Served:
    """A server of one serving path, and where to watch what it publishes."""

    http: AsgiServer
    watch: AsgiServer  # the same server, except for WSGI (no WebSockets): a production server on its Redis


@pytest.fixture(scope="module", params=SERVING_PATHS)
def served(request, django_db_setup, django_db_blocker) -> Iterator[Served]:
    serving = request.param
    if serving != "development" and not redis_available(server_redis_url()):
        pytest.skip(f"the {serving} path needs Redis at {server_redis_url()}")
    with django_db_blocker.unblock(), contextlib.ExitStack() as stack:
        http = start_asgi_server(serving=serving, env=SERVER_ENV)
        stack.callback(http.stop)
        watch = http
        if serving == "wsgi":
            # The README's layout: granian serves HTTP, uvicorn the WebSockets, both on one Redis.
            watch = start_asgi_server(serving="production", env=SERVER_ENV)
            stack.callback(watch.stop)
        yield Served(http=http, watch=watch)


@pytest.fixture
def token(served) -> str:
    store.bucket_create(name=app_bucket(BUCKET), history=5)
    return apikey_create(name="bodies", role="admin").token


def last_revision() -> int:
    return store.bucket_get(name=app_bucket(BUCKET)).last_revision


# --- Raw HTTP/1.1, to send what no well-behaved client library would ------------------------------


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def read_answer(sock: socket.socket, *, timeout: float = 10) -> RawAnswer | None:
    """The first response on ``sock``, or None when the server closed without one."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    status = int(status_line.split()[1])
    if headers.get("transfer-encoding") == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        body = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            body, rest = body + rest[:size], rest[size + 2 :]
        return RawAnswer(status=status, headers=headers, body=body)
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawAnswer(status=status, headers=headers, body=rest[:length])


def raw_request(
    server: AsgiServer, head: str, body: bytes = b"", *, then: str = "wait", token: str | None = None
) -> RawAnswer | None:
    """Send ``head`` (request line and headers, no blank line) and ``body``; then wait, half-close or close."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    message = f"{head}\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(message)
        if then == "close":
            # Let the server take the bytes in before the connection drops, as a crashed client's would.
            sock.settimeout(0.3)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                sock.recv(1)
            return None
        if then == "half-close":
            sock.shutdown(socket.SHUT_WR)
        return read_answer(sock)


def put_head(key: str, **headers: object) -> str:
    lines = [f"PUT /api/v1/kv/buckets/{BUCKET}/keys/{key} HTTP/1.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines)


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


@contextlib.asynccontextmanager
async def watching(served: Served, token: str) -> AsyncIterator[Watcher]:
    async with ws_connect(served.watch, f"/api/v1/kv/buckets/{BUCKET}/watch", token=token) as ws:
        yield Watcher(ws)


async def good_write_is_next(served: Served, token: str, watcher: Watcher, before: int) -> None:
    """A good write after the bad requests gets the next revision, and it is the first change watched."""
    async with httpx.AsyncClient(base_url=served.http.http_url, timeout=10) as http:
        response = await http.put(
            f"/api/v1/kv/buckets/{BUCKET}/keys/after", content=b"ok", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.json() == {"revision": before + 1}
    frame = await watcher.next(timeout=10)
    assert (frame["key"], frame["revision"]) == ("after", before + 1)


def read_key(served: Served, token: str, key: str) -> bytes | None:
    response = httpx.get(
        f"{served.http.http_url}/api/v1/kv/buckets/{BUCKET}/keys/{key}", headers={"Authorization": f"Bearer {token}"}
    )
    return base64.b64decode(response.json()["value"]) if response.status_code == 200 else None


# --- Chunked bodies ------------------------------------------------------------------------------


def test_a_chunked_put_stores_exactly_the_bytes_sent(served: Served, token: str) -> None:
    value = b'{"v":"important"}'

    answer = raw_request(
        served.http, put_head("k1", Transfer_Encoding="chunked"), chunked(value[:5], value[5:]), token=token
    )

    assert answer is not None and answer.status == 200, answer
    assert answer.json() == {"revision": 1}
    assert read_key(served, token, "k1") == value


def test_a_streamed_body_from_a_client_library_is_read_whole(served: Served, token: str) -> None:
    # httpx sends an iterator as Transfer-Encoding: chunked, as Go's io.Reader or Node streams do.
    parts = [b"x" * 10_000, b"y" * 10_000, b"z"]

    response = httpx.put(
        f"{served.http.http_url}/api/v1/kv/buckets/{BUCKET}/keys/streamed",
        content=iter(parts),
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 200, response.text
    assert read_key(served, token, "streamed") == b"".join(parts)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/v1/kv/buckets", b'{"name": "chunky", "history": 3}', 201),
        ("POST", "/api/v1/config/chunky", b'{"flags": {"beta": true}}', 200),
        ("PUT", "/kv/items/chunky", b'{"value": {"n": 1.10}}', 200),
    ],
)
def test_a_chunked_json_body_is_parsed_like_the_same_bytes_with_a_length(
    served: Served, token: str, method: str, path: str, body: bytes, status: int
) -> None:
    head = f"{method} {path} HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"

    answer = raw_request(served.http, head, chunked(body[:7], body[7:]), token=token)

    assert answer is not None and answer.status == status, answer
    readback = httpx.get(served.http.http_url + path, headers={"Authorization": f"Bearer {token}"})
    assert readback.status_code == 200
    if path.startswith("/api/v1/config"):
        assert readback.json()["data"] == {"flags": {"beta": True}}
    if path.startswith("/kv/items"):
        assert readback.content.count(b'"value":{"n":1.10}') == 1


def test_a_chunked_body_over_the_cap_is_413_and_nothing_is_written(served: Served, token: str) -> None:
    async def scenario() -> None:
        async with watching(served, token) as watcher:
            before = await asyncio.to_thread(last_revision)
            parts = [b"x" * 512 * 1024] * 3  # 1.5 MiB against a 1 MiB cap
            answer = await asyncio.to_thread(
                raw_request, served.http, put_head("big", Transfer_Encoding="chunked"), chunked(*parts), token=token
            )
            assert answer is not None and answer.status == 413, answer
            assert answer.json()["code"] == "resource_exhausted"
            assert str(CEILING) in answer.json()["error"]
            assert await asyncio.to_thread(last_revision) == before
            await good_write_is_next(served, token, watcher, before)

    asyncio.run(scenario())


def test_a_content_length_over_the_cap_is_413_before_the_body_is_sent(served: Served, token: str) -> None:
    # Only the head goes out: the answer cannot wait for a body that never comes.
    answer = raw_request(served.http, put_head("big", Content_Length=CEILING + 1), token=token)

    assert answer is not None and answer.status == 413, answer
    assert answer.json() == {
        "error": f"request body is {CEILING + 1} bytes; at most {CEILING} are allowed here",
        "code": "resource_exhausted",
    }


def test_each_route_has_its_own_cap(served: Served, token: str) -> None:
    # Bucket creation takes small JSON: 64 KiB + 1 is refused though a key PUT could take it.
    head = "POST /api/v1/kv/buckets HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 70000"

    answer = raw_request(served.http, head, token=token)

    assert answer is not None and answer.status == 413, answer


# --- Cut-short bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("then", ["close", "half-close"])
def test_a_body_cut_short_writes_and_publishes_nothing(served: Served, token: str, then: str) -> None:
    async def scenario() -> None:
        async with watching(served, token) as watcher:
            for value in (b"one", b"two"):  # the key has history, so "latest" is a real check
                await asyncio.to_thread(raw_request, served.http, put_head("config", Content_Length=3), value,
                                        token=token)  # fmt: skip
            watched = await watcher.through(2)
            before = await asyncio.to_thread(last_revision)
            # When a client announces 1000 bytes, sends 19 and closes (or half-closes)...
            answer = await asyncio.to_thread(
                raw_request, served.http, put_head("config", Content_Length=1000), b'{"config": "partial',
                then=then, token=token,
            )  # fmt: skip
            # ...it is told 400 if it can still hear, and nothing is written or published.
            if answer is not None:
                assert answer.status == 400, answer
                assert "ended after 19 of the 1000 bytes" in answer.json()["error"]
            assert await asyncio.to_thread(last_revision) == before == watched[-1]["revision"]
            assert await asyncio.to_thread(read_key, served, token, "config") == b"two"
            await good_write_is_next(served, token, watcher, before)

    asyncio.run(scenario())


def test_bytes_past_the_content_length_are_not_part_of_the_value(served: Served, token: str) -> None:
    before = last_revision()

    answer = raw_request(served.http, put_head("exact", Content_Length=5), b"12345 and then some", token=token)

    # The five announced bytes are the body; what follows is read as the next request, which is
    # not HTTP: a server may answer that 400 first and close. Whatever was stored is those 5 bytes.
    assert answer is not None and answer.status in (200, 400), answer
    stored = read_key(served, token, "exact")
    if answer.status == 200:
        assert answer.json() == {"revision": before + 1}
        assert stored == b"12345"
    assert stored in (None, b"12345")
    assert last_revision() - before == (stored is not None)


def test_a_malformed_content_length_is_400(served: Served, token: str) -> None:
    answer = raw_request(served.http, put_head("k", Content_Length="+5"), b"12345", token=token)

    # Some servers refuse it themselves (400 without our body): either way it is a 400, never a write.
    assert answer is None or answer.status == 400, answer
    assert last_revision() == 0


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "chunked, chunked"])
def test_a_transfer_coding_other_than_chunked_is_501_and_nothing_is_written(
    served: Served, token: str, coding: str
) -> None:
    # The servers undo "chunked" only: "gzip, chunked" would hand the view the compressed bytes.
    body = chunked(b"\x1f\x8b\x08\x00 compressed bytes")

    answer = raw_request(served.http, put_head("zipped", Transfer_Encoding=coding), body, token=token)

    # A server may refuse the coding itself (400/501); where it passes it on, kvsite answers 501.
    assert answer is None or answer.status in (400, 501), answer
    if answer is not None and answer.headers.get("content-type") == "application/json":
        assert answer.status == 501 and answer.json()["code"] == "unimplemented"
    assert last_revision() == 0


def test_expect_100_continue_over_the_cap_gets_the_413_and_no_invitation_to_send(served: Served, token: str) -> None:
    head = put_head("big", Content_Length=CEILING + 1, Expect="100-continue")

    answer = raw_request(served.http, head, token=token)

    assert answer is not None and answer.status == 413, answer


# --- Where a server cannot say where a chunked body ends ---------------------------------------------


def test_a_wsgi_server_without_input_terminated_gets_411_for_a_chunked_body() -> None:
    seen: dict = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    class Endless:
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("read a stream with no known end")

    environ = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/api/v1/kv/buckets/b/keys/k"}
    environ |= {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": Endless()}

    WsgiBodyGuard(app)(environ, lambda *args: None)

    assert seen["kvsite.body_refusal"].status == 411
    assert seen["CONTENT_LENGTH"] == "0" and "HTTP_TRANSFER_ENCODING" not in seen


def test_a_chunked_request_that_bypassed_the_guards_is_411_not_an_empty_body(admin_client, make_bucket) -> None:
    make_bucket("b")
    refusals = REQUESTS.labels(REFUSED_ROUTE, "PUT", "411")
    counted = refusals._value.get()

    response = admin_client.generic("PUT", "/api/v1/kv/buckets/b/keys/k", b"", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert response.json() == {
        "error": "this server cannot read a chunked body: send Content-Length",
        "code": "length_required",
    }
    assert refusals._value.get() == counted + 1  # the request metrics count it


@pytest.mark.parametrize(
    ("content_length", "transfer_encoding", "outcome"),
    [
        (None, None, "no body"),
        ("", None, "no body"),
        ("0", None, "no body"),
        ("5", None, "length 5"),
        ("5, 5", None, "length 5"),  # repeated, equal
        ("5, 6", None, "refused 400"),
        ("+5", None, "refused 400"),
        ("5_0", None, "refused 400"),
        (" 5", None, "length 5"),  # whitespace around a value is the header's, not the number's
        ("1" * 19, None, "refused 400"),
        (None, "chunked", "chunked"),
        ("5", "Chunked", "chunked"),  # Transfer-Encoding wins over Content-Length (RFC 9112 6.1)
        (None, "gzip, chunked", "refused 501"),
        (None, "chunked, gzip", "refused 501"),
        (None, "identity", "refused 501"),
    ],
)
def test_framing_is_read_by_the_rfc_before_any_server_quirk(content_length, transfer_encoding, outcome) -> None:
    framing = _framing(content_length, transfer_encoding)

    if framing.refusal is not None:
        described = f"refused {framing.refusal.status}"
    elif framing.chunked:
        described = "chunked"
    else:
        described = f"length {framing.length}" if framing.length else "no body"
    assert described == outcome
