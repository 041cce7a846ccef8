"""Hostile inputs, by hand: every one is a clear 4xx with a JSON body, never a 500; a frame flood on a watch socket."""

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.test import Client
from rest_framework.test import APIClient
from websockets.exceptions import ConnectionClosed

from tests.buckets.kv.test_consumers import Watcher
from tests.live_server import asgi_server_factory, ws_connect  # noqa: F401  (pytest fixture)

pytestmark = pytest.mark.django_db

API = "/api/v1/kv/buckets"


@pytest.fixture
def kv(admin_client: APIClient, make_bucket) -> APIClient:
    make_bucket("h")
    return admin_client


def assert_4xx_json(response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert (body.get("code") or body.get("error", {}).get("code")) is not None


def test_a_10_mb_body_is_413(kv: APIClient) -> None:
    response = kv.generic("PUT", f"{API}/h/keys/big", b"x" * (10 * 1024 * 1024))

    assert_4xx_json(response, 413)


@pytest.mark.parametrize("path", [f"{API}/h/keys/%FF%FE", f"{API}/h/keys/a%00b", f"{API}/h/keys/%C3%28"])
def test_invalid_utf8_and_nul_in_keys_are_400(kv: APIClient, path: str) -> None:
    assert_4xx_json(kv.generic("PUT", path, b"1"))
    assert_4xx_json(kv.get(path))


@pytest.mark.parametrize("key", ["a%2Fb", "..", "a/../b", "%2E%2E", "./a"])
def test_encoded_slashes_and_dot_segments_never_escape_the_bucket(kv: APIClient, key: str) -> None:
    response = kv.generic("PUT", f"{API}/h/keys/{key}", b"1")

    assert response.status_code in (200, 400, 404), response.content
    if response.status_code == 200:
        # Whatever key it became, it lives in bucket h and reads back from there.
        listed = kv.get(f"{API}/h/keys").json()["keys"]
        assert len(listed) == 1
    else:
        assert_4xx_json(response)


@pytest.mark.parametrize("header", ["9" * 10_000, "W/" * 1000, "1,2,3", '"' * 10_001, ", " * 10_000])
def test_huge_or_odd_if_match_is_400(kv: APIClient, header: str) -> None:
    assert_4xx_json(kv.generic("PUT", f"{API}/h/keys/k", b"1", HTTP_IF_MATCH=header), 400)


@pytest.mark.parametrize("header", ['"' + "1" * 30 + '"', ", ".join(['"9"'] * 10_000), '"' + "x" * 10_000 + '"'])
def test_huge_well_formed_entity_tags_that_name_no_revision_are_412(kv: APIClient, header: str) -> None:
    # RFC 9110: a well-formed tag is compared, not refused; no revision of ours is 30 digits long.
    assert_4xx_json(kv.generic("PUT", f"{API}/h/keys/k", b"1", HTTP_IF_MATCH=header), 412)


def test_a_10000_token_wildcard_filter_is_400(kv: APIClient) -> None:
    pattern = ".".join(["*"] * 10_000)

    assert_4xx_json(kv.get(f"{API}/h/keys", {"filter": pattern}), 400)


def test_a_long_but_valid_filter_works(kv: APIClient) -> None:
    pattern = ".".join(["*"] * 200)

    assert kv.get(f"{API}/h/keys", {"filter": pattern}).status_code == 200


@pytest.mark.parametrize("depth", [100, 10_000, 100_000])
def test_deeply_nested_json_in_config_and_items_is_400(admin_client: APIClient, depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    config = admin_client.generic(
        "POST", "/api/v1/config/deep", b'{"a":' + deep + b"}", content_type="application/json"
    )
    item = admin_client.generic("PUT", "/kv/items/deep", b'{"value":' + deep + b"}", content_type="application/json")

    assert_4xx_json(config, 400)
    assert_4xx_json(item, 400)


def test_bucket_creation_with_hostile_json(admin_client: APIClient) -> None:
    for body in (
        b"[" * 100_000,
        b'{"name": "' + b"a" * 1_000_000 + b'"}',
        b"\xff\xfe",
        json.dumps({"name": None}).encode(),
    ):
        assert_4xx_json(admin_client.generic("POST", API, body, content_type="application/json"))


def test_unauthenticated_hostile_requests_are_still_json(db) -> None:
    response = Client().generic("PUT", f"{API}/h/keys/%FF", b"x" * 100)

    assert_4xx_json(response, 401)


# --- Clients flooding a watch socket -----------------------------------------------------------

MIB = 1024 * 1024
SMALL_FLOOD_FRAMES = 5000
# 300 MiB: far more than the margin below, were the server to hold on to them.
LARGE_FLOOD_FRAMES = 300
# Generous: the server's resident memory moves by a few MiB on its own; buffering the
# floods would take hundreds (the large flooder alone offers 1 MiB a frame).
RSS_MARGIN_KIB = 64 * 1024


def small_frame(index: int) -> str | bytes:
    """What a confused client might send: pongs, other JSON, not JSON, binary; up to 4 KiB."""
    frames = ('{"type": "pong"}', '{"type": "subscribe", "key": ">"}', "not json {", "x" * 4096, bytes(4096), b"\x00")
    return frames[index % len(frames)]


def large_frame(index: int) -> str | bytes:
    return "x" * MIB if index % 2 else bytes(MIB)


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples a process's resident memory (KiB) every 20 ms in a thread while in the ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = vm_rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, vm_rss_kib(self.pid))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Flood:
    sent: int = 0
    closed_with: int | None = None  # the server's close code, if it closed the socket


async def flood(ws, frame: Callable[[int], str | bytes], *, at_least: int, until: asyncio.Event) -> Flood:
    """Send frames as fast as the connection takes them: ``at_least`` of them, and until ``until`` is set."""
    outcome = Flood()
    try:
        while outcome.sent < at_least or not until.is_set():
            await ws.send(frame(outcome.sent))
            outcome.sent += 1
            # send() only waits once the socket's buffer is full: let this process' other clients run too.
            await asyncio.sleep(0)
    except ConnectionClosed as closed:
        outcome.closed_with = closed.rcvd.code if closed.rcvd else None
    return outcome


async def frames_until_closed(ws) -> list[dict]:
    """What the server sent on a socket it closed, in order."""
    frames = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            frames.append(json.loads(await ws.recv()))
    return frames


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_frame_flood_on_a_watch_socket_neither_grows_the_server_nor_holds_up_other_watchers(
    make_bucket,
    issue_token,
    asgi_server_factory,  # noqa: F811
) -> None:
    """The watch socket only sends: small client frames are taken as pongs, large ones close it with 1009."""
    make_bucket("flood")
    token = issue_token("admin")
    server = asgi_server_factory()
    path = "/api/v1/kv/buckets/flood/watch"
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[list[int], list[int], Flood, Flood, list[dict], int, int]:
        async with (
            ws_connect(server, path, token=token) as watching,
            ws_connect(server, path, token=token) as flooding_small,
            ws_connect(server, path, token=token) as flooding_large,
            httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http,
        ):
            watcher = Watcher(watching)

            async def put(key: str) -> int:
                response = await http.put(f"/api/v1/kv/buckets/flood/keys/{key}", content=b"v")
                assert response.status_code == 200, response.text
                return response.json()["revision"]

            async def delivered(key: str, to: Watcher = watcher) -> int:
                return (await to.through(await put(key), timeout=20))[-1]["revision"]

            # Given a watcher that receives changes, and a server that has served some already.
            await delivered("warm-up")
            before = vm_rss_kib(server.process.pid)
            with PeakRss(server.process.pid) as rss:
                # When two clients flood their sockets, one with small frames, one with 1 MiB ones...
                stop = asyncio.Event()
                floods = [
                    asyncio.create_task(flood(flooding_small, small_frame, at_least=SMALL_FLOOD_FRAMES, until=stop)),
                    asyncio.create_task(flood(flooding_large, large_frame, at_least=LARGE_FLOOD_FRAMES, until=stop)),
                ]
                # ...the watcher still gets every change while they do.
                during = [await delivered(f"during-{n}") for n in range(10)]
                stop.set()
                small, large = await asyncio.gather(*floods)
                after = [await delivered("after")]
                # The small flooder is still served: it receives the changes it was sent meanwhile.
                after.append(await delivered("after-small", Watcher(flooding_small)))
            large_frames = await frames_until_closed(flooding_large)
        return during, after, small, large, large_frames, before, rss.peak

    during, after, small, large, large_frames, before, peak = asyncio.run(scenario())

    # Then the server is up, and its memory did not follow the floods.
    assert server.process.poll() is None
    assert peak - before < RSS_MARGIN_KIB, f"RSS grew from {before} to {peak} KiB"
    assert during == list(range(2, 12)) and after == [12, 13]
    # The small flood was taken, thousands of frames and all through the watcher's changes
    # (it never stopped before `stop`); the large one was closed with 1009 long before its 300 frames.
    assert small.sent >= SMALL_FLOOD_FRAMES and small.closed_with is None
    assert large.closed_with == 1009 and large.sent < LARGE_FLOOD_FRAMES
    assert large_frames[-1] == {
        "type": "error",
        "code": "resource_exhausted",
        "message": "client frames are at most 4096 bytes (send only pongs)",
    }
