"""Live watch end to end: a real uvicorn server, a real WebSocket client, writes through the HTTP API.

Most tests share one server for the module (short heartbeat, short gap wait);
overflow and the Redis fan-out start servers of their own.
"""

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from buckets.core import store
from buckets.core.names import app_bucket
from tests.live_server import (  # noqa: F401  (pytest fixtures)
    AsgiServer,
    asgi_server_factory,
    redis_url,
    running_asgi_server,
    ws_connect,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

FAST_WATCH = {
    "KV_WATCH_HEARTBEAT_SECONDS": "0.5",
    # Generous: a loaded CI machine must not make an answering client look silent.
    "KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS": "4",
    "KV_WATCH_GAP_SECONDS": "0.1",
    "KV_WATCH_CLOSE_TIMEOUT_SECONDS": "5",
}


@pytest.fixture(scope="module")
def server(django_db_setup) -> Iterator[AsgiServer]:
    with running_asgi_server(env=FAST_WATCH) as shared:
        yield shared


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("admin")


def watch_path(bucket: str, **params: object) -> str:
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return f"/api/v1/kv/buckets/{bucket}/watch" + (f"?{query}" if query else "")


class KvHttp:
    """Writes through the server's REST API, so the server publishes the events."""

    def __init__(self, server: AsgiServer, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=server.http_url + "/api/v1/kv/buckets/", headers={"Authorization": f"Bearer {token}"}
        )

    async def put(self, bucket: str, key: str, value: bytes = b"v") -> int:
        response = await self.client.put(f"{bucket}/keys/{key}", content=value)
        assert response.status_code == 200, response.text
        return response.json()["revision"]

    async def delete(self, bucket: str, key: str, *, purge: bool = False) -> None:
        response = await self.client.delete(f"{bucket}/keys/{key}", params={"purge": "true"} if purge else None)
        assert response.status_code == 204, response.text

    async def aclose(self) -> None:
        await self.client.aclose()


class Watcher:
    """A watch client that reads in the background and answers pings, as a real client does."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._frames: asyncio.Queue[dict] = asyncio.Queue()
        self.pings = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                frame = json.loads(message)
                if frame["type"] == "ping":
                    self.pings += 1
                    # A ping can be the frame just before a close: the frames after it are still read.
                    with contextlib.suppress(ConnectionClosed):
                        await self.ws.send(json.dumps({"type": "pong"}))
                else:
                    await self._frames.put(frame)

    async def next(self, *, timeout: float = 10) -> dict:
        return await asyncio.wait_for(self._frames.get(), timeout)

    async def take(self, count: int, *, timeout: float = 10) -> list[dict]:
        return [await self.next(timeout=timeout) for _ in range(count)]

    async def through(self, revision: int, *, timeout: float = 10) -> list[dict]:
        """kv_update frames up to and including ``revision``."""
        received: list[dict] = []
        while not received or received[-1]["revision"] < revision:
            frame = await self.next(timeout=timeout)
            assert frame["type"] == "kv_update", frame
            received.append(frame)
        return received

    async def nothing_more(self, *, seconds: float = 0.4) -> None:
        await asyncio.sleep(seconds)
        assert self._frames.empty(), f"unexpected frame {self._frames.get_nowait()}"

    async def close_code(self, *, timeout: float = 10) -> int | None:
        await asyncio.wait_for(self._reader, timeout)
        return self.ws.close_code


@contextlib.asynccontextmanager
async def watching(server: AsgiServer, path: str, **options) -> AsyncIterator[Watcher]:
    async with ws_connect(server, path, **options) as ws:
        watcher = Watcher(ws)
        try:
            yield watcher
        finally:
            watcher._reader.cancel()


async def refusal(server: AsgiServer, path: str, **options) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(server, path, **options):
            pass
    response = refused.value.response
    return response.status_code, json.loads(bytes(response.body))


def keys_of(received: list[dict]) -> list[str]:
    return [frame["key"] for frame in received]


def write_directly(bucket: str, key: str) -> int:
    """Write in this test process: its event goes to this process' channel layer, so the server never sees it.

    Runs in a worker thread (the test's event loop keeps going) with a connection of its own.
    """
    try:
        return store.entry_put(bucket=app_bucket(bucket), key=key, value=b"direct").revision
    finally:
        connection.close()


# --- Filters and frames ---------------------------------------------------------------------


def test_each_pattern_receives_exactly_its_keys(server, token, make_bucket) -> None:
    make_bucket("app")
    patterns = {"all": None, "gt": ">", "star": "user.*", "deep": "user.>", "exact": "user.1", "top": "*"}

    async def scenario() -> dict[str, list[dict]]:
        kv = KvHttp(server, token)
        async with contextlib.AsyncExitStack() as stack:
            opened = {
                name: await stack.enter_async_context(watching(server, watch_path("app", key=pattern), token=token))
                for name, pattern in patterns.items()
            }
            stack.push_async_callback(kv.aclose)
            for key in ["user.1", "user.2.name", "config", "user.3", "user.1"]:
                await kv.put("app", key)
            expected_counts = {"all": 5, "gt": 5, "star": 3, "deep": 4, "exact": 2, "top": 1}
            received = {name: await opened[name].take(count) for name, count in expected_counts.items()}
            for watcher in opened.values():
                await watcher.nothing_more(seconds=0.2)
            return received

    received = asyncio.run(scenario())

    assert keys_of(received["all"]) == ["user.1", "user.2.name", "config", "user.3", "user.1"]
    assert keys_of(received["gt"]) == keys_of(received["all"])
    assert keys_of(received["star"]) == ["user.1", "user.3", "user.1"]
    assert keys_of(received["deep"]) == ["user.1", "user.2.name", "user.3", "user.1"]
    assert keys_of(received["exact"]) == ["user.1", "user.1"]
    assert keys_of(received["top"]) == ["config"]
    assert [frame["revision"] for frame in received["all"]] == [1, 2, 3, 4, 5]
    first = received["all"][0]
    assert first["type"] == "kv_update"
    assert first["bucket"] == "app"
    assert first["value"] == "dg=="
    assert first["operation"] == "put"
    assert first["created_at"].endswith("Z")


def test_delete_and_purge_arrive_as_frames_without_value(server, token, make_bucket) -> None:
    make_bucket("app", history=5)

    async def scenario() -> list[dict]:
        kv = KvHttp(server, token)
        try:
            async with watching(server, watch_path("app", key="cfg.*"), token=token) as watcher:
                await kv.put("app", "cfg.a", b"one")
                await kv.delete("app", "cfg.a")
                await kv.put("app", "cfg.a", b"two")
                await kv.delete("app", "cfg.a", purge=True)
                return await watcher.take(4)
        finally:
            await kv.aclose()

    received = asyncio.run(scenario())

    assert [(f["operation"], f["value"], f["revision"]) for f in received] == [
        ("put", "b25l", 1),
        ("delete", "", 2),
        ("put", "dHdv", 3),
        ("purge", "", 4),
    ]


# --- Handshake refusals and credentials -----------------------------------------------------


def test_refusals_carry_the_api_status_and_code(server, issue_token, make_bucket) -> None:
    make_bucket("app")
    admin = issue_token("admin")
    other_buckets_only = issue_token("reader", buckets="other-*")

    async def scenario() -> dict[str, tuple[int, dict]]:
        return {
            "unknown bucket": await refusal(server, watch_path("nope"), token=admin),
            "no credentials": await refusal(server, watch_path("app")),
            "bad token": await refusal(server, watch_path("app"), token="kvs_not-a-real-token"),
            "bad scheme": await refusal(server, watch_path("app"), headers={"Authorization": "Basic eDp5"}),
            "wrong bucket": await refusal(server, watch_path("app"), token=other_buckets_only),
            "bad pattern": await refusal(server, watch_path("app", key="a.>.b"), token=admin),
            "bad since": await refusal(server, watch_path("app", since="-1"), token=admin),
            "since and current": await refusal(server, watch_path("app", since=1, include="current"), token=admin),
            "used ticket": await refusal(server, watch_path("app", ticket="kvt_never-issued"), token=None),
        }

    refused = asyncio.run(scenario())

    assert refused["unknown bucket"] == (404, {"error": "bucket 'nope' not found", "code": "not_found"})
    for case in ("no credentials", "bad token", "bad scheme", "used ticket"):
        assert refused[case][0] == 401, case
        assert refused[case][1]["code"] == "unauthenticated", case
    assert refused["wrong bucket"][0] == 403
    assert refused["wrong bucket"][1]["code"] == "permission_denied"
    for case in ("bad pattern", "bad since", "since and current"):
        assert refused[case][0] == 400, case
        assert refused[case][1]["code"] == "invalid_argument", case


def test_api_clients_need_no_origin_but_a_foreign_origin_is_refused(server, token, make_bucket) -> None:
    make_bucket("app")
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[str, int]:
        async with connect(server.ws_url + watch_path("app", include="current"), additional_headers=headers) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                server.ws_url + watch_path("app"), additional_headers=headers, origin="https://evil.example"
            ):
                pass
        return first, refused.value.response.status_code

    assert asyncio.run(scenario()) == ("ready", 403)


def test_a_staff_session_may_watch_and_other_sessions_may_not(server, token, make_bucket) -> None:
    make_bucket("app")
    users = get_user_model()
    staff, plain = Client(), Client()
    staff.force_login(users.objects.create_user("staff", password="x", is_staff=True))
    plain.force_login(users.objects.create_user("plain", password="x"))

    def cookie(client: Client) -> dict[str, str]:
        return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}

    async def scenario() -> tuple[tuple[int, dict], dict]:
        refused = await refusal(server, watch_path("app"), headers=cookie(plain))
        kv = KvHttp(server, token)
        try:
            async with watching(server, watch_path("app"), headers=cookie(staff)) as watcher:
                await kv.put("app", "k")
                return refused, await watcher.next()
        finally:
            await kv.aclose()

    refused, frame = asyncio.run(scenario())

    assert refused == (403, {"error": "only staff users may watch with a session", "code": "permission_denied"})
    assert frame["key"] == "k"


def test_a_ticket_opens_one_websocket_once(server, token, make_bucket) -> None:
    make_bucket("app")

    async def scenario() -> tuple[httpx.Response, httpx.Response, dict, tuple[int, dict]]:
        kv = KvHttp(server, token)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            anonymous = await http.post("/api/v1/ws-ticket")
            issued = await http.post("/api/v1/ws-ticket", headers={"Authorization": f"Bearer {token}"})
        ticket = issued.json()["ticket"]
        try:
            async with watching(server, watch_path("app", ticket=ticket)) as watcher:
                await kv.put("app", "k")
                frame = await watcher.next()
        finally:
            await kv.aclose()
        return anonymous, issued, frame, await refusal(server, watch_path("app", ticket=ticket))

    anonymous, issued, frame, reused = asyncio.run(scenario())

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthenticated"
    assert issued.status_code == 201
    assert issued.json()["expires_in"] == 30
    assert issued.json()["ticket"].startswith("kvt_")
    assert frame["key"] == "k"
    assert reused == (401, {"error": "invalid or expired ticket", "code": "unauthenticated"})


# --- Resume, snapshot, heartbeat --------------------------------------------------------------


def test_since_replays_then_goes_live_without_gap_or_duplicate_while_writes_race(server, token, make_bucket) -> None:
    # History deep enough that nothing is trimmed: every revision must then arrive.
    make_bucket("app", history=64)
    total = 120

    async def scenario() -> tuple[list[dict], list[dict], int]:
        kv = KvHttp(server, token)
        first_writes_done = asyncio.Event()

        async def writer() -> int:
            revision = 0
            for index in range(total):
                revision = await kv.put("app", f"{'k' if index % 2 else 'o'}.{index}")
                if index == 40:
                    first_writes_done.set()
            return revision

        try:
            writing = asyncio.create_task(writer())
            await first_writes_done.wait()
            async with (
                watching(server, watch_path("app", since=20), token=token) as everything,
                watching(server, watch_path("app", since=20, key="k.*"), token=token) as filtered,
            ):
                last = await writing
                all_frames = await everything.through(last)
                k_frames = await filtered.through(last)
                await everything.nothing_more(seconds=0.3)
                await filtered.nothing_more(seconds=0.1)
            return all_frames, k_frames, last
        finally:
            await kv.aclose()

    all_frames, k_frames, last = asyncio.run(scenario())

    assert last == total
    assert [frame["revision"] for frame in all_frames] == list(range(21, total + 1))
    # Index i is written at revision i + 1 and odd indexes are the k.* keys: even revisions.
    assert [frame["revision"] for frame in k_frames] == [rev for rev in range(21, total + 1) if rev % 2 == 0]
    assert all(frame["key"].startswith("k.") for frame in k_frames)


def test_since_beyond_kept_history_is_out_of_range(server, token, make_bucket) -> None:
    make_bucket("app", history=1)

    async def scenario() -> list[tuple[dict, int]]:
        kv = KvHttp(server, token)
        try:
            await kv.put("app", "a")
            await kv.put("app", "a")  # trims revision 1
            await kv.put("app", "b")
            outcomes = []
            for since in (0, 9):
                async with watching(server, watch_path("app", since=since), token=token) as watcher:
                    outcomes.append((await watcher.next(), await watcher.close_code()))
            async with watching(server, watch_path("app", since=1), token=token) as watcher:
                outcomes.append((await watcher.next(), 0))
            return outcomes
        finally:
            await kv.aclose()

    (too_old, old_code), (too_new, new_code), (resumed, _) = asyncio.run(scenario())

    assert too_old["code"] == "out_of_range"
    assert too_old["oldest_revision"] == 2
    assert too_old["last_revision"] == 3
    assert old_code == 4410
    assert too_new["code"] == "out_of_range"
    assert new_code == 4410
    assert resumed["revision"] == 2


def test_include_current_sends_live_values_then_ready_then_changes(server, token, make_bucket) -> None:
    make_bucket("app")

    async def scenario() -> list[dict]:
        kv = KvHttp(server, token)
        try:
            await kv.put("app", "user.1", b"1")  # 1, overwritten below
            await kv.put("app", "user.2", b"2")  # 2
            await kv.put("app", "other", b"x")  # 3
            await kv.put("app", "user.3", b"3")  # 4, deleted below
            await kv.put("app", "user.1", b"1b")  # 5
            await kv.delete("app", "user.3")  # 6
            async with watching(server, watch_path("app", key="user.*", include="current"), token=token) as watcher:
                snapshot = await watcher.take(3)
                await kv.put("app", "user.4", b"4")  # 7
                return [*snapshot, await watcher.next()]
        finally:
            await kv.aclose()

    received = asyncio.run(scenario())

    assert [(f["type"], f.get("key"), f["revision"]) for f in received] == [
        ("kv_update", "user.2", 2),
        ("kv_update", "user.1", 5),
        ("ready", None, 6),
        ("kv_update", "user.4", 7),
    ]
    assert received[1]["value"] == "MWI="
    assert received[0]["operation"] == "put"


def test_idle_watchers_get_pings_and_silent_ones_are_closed(server, token, make_bucket) -> None:
    make_bucket("app")

    async def scenario() -> tuple[int, int]:
        async with (
            watching(server, watch_path("app"), token=token) as answering,
            ws_connect(server, watch_path("app"), token=token) as silent,
        ):
            # The silent client reads (its library does) but never answers.
            silent_frames = []
            with contextlib.suppress(ConnectionClosed):
                async for message in silent:
                    silent_frames.append(json.loads(message))
            assert silent_frames[0] == {"type": "ping"}
            assert silent_frames[-1]["code"] == "deadline_exceeded"
            assert answering.ws.close_code is None
            return answering.pings, silent.close_code

    pings, silent_code = asyncio.run(scenario())

    # The silent one was closed 0.5 s (idle) + 1.5 s (no answer) after connecting.
    assert pings >= 2
    assert silent_code == 4408


# --- No silent loss ---------------------------------------------------------------------------


def test_a_lost_event_is_read_from_the_database_in_order(server, token, make_bucket) -> None:
    make_bucket("app")

    async def scenario() -> tuple[list[dict], list[dict]]:
        kv = KvHttp(server, token)
        try:
            async with watching(server, watch_path("app"), token=token) as watcher:
                await kv.put("app", "a")  # 1
                # 2 reaches no watcher; 3 arrives and shows the gap.
                await asyncio.to_thread(write_directly, "app", "lost")
                await kv.put("app", "b")  # 3
                gap_filled = await watcher.take(3)
                # A lost last event: no later write shows it, the idle check does.
                await asyncio.to_thread(write_directly, "app", "tail")  # 4
                tail = await watcher.take(1, timeout=3)
                await watcher.nothing_more()
                return gap_filled, tail
        finally:
            await kv.aclose()

    gap_filled, tail = asyncio.run(scenario())

    assert [(f["key"], f["revision"]) for f in gap_filled] == [("a", 1), ("lost", 2), ("b", 3)]
    assert gap_filled[1]["value"] == "ZGlyZWN0"
    assert [(f["key"], f["revision"]) for f in tail] == [("tail", 4)]


def _small_receive_buffer_socket(server: AsgiServer) -> socket.socket:
    """A client socket that reads little per round trip, so a slow reader stalls the server quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    return sock


def test_a_slow_reader_is_closed_with_4008_and_resumes_with_since(
    asgi_server_factory: Callable[..., AsgiServer],  # noqa: F811  (the fixture imported above)
    token,
    make_bucket,
) -> None:
    make_bucket("app", history=64)
    slow_server = asgi_server_factory(
        env={
            **FAST_WATCH,
            "KV_WATCH_QUEUE_SIZE": "4",
            "KV_WATCH_HEARTBEAT_SECONDS": "30",
            "KV_WATCH_CLOSE_TIMEOUT_SECONDS": "60",
        }
    )
    # More than the kernel buffers between server and client hold (a few MB), uncompressed.
    writes = 80
    value = os.urandom(100_000)

    async def scenario() -> tuple[list[dict], dict, int, list[dict]]:
        kv = KvHttp(slow_server, token)
        try:
            async with ws_connect(
                slow_server,
                watch_path("app"),
                token=token,
                sock=_small_receive_buffer_socket(slow_server),
                max_queue=1,
                compression=None,
            ) as slow:
                for index in range(writes):
                    await kv.put("app", f"k.{index}", value)
                # Now read: everything before the overflow, its error frame, then the close.
                reader = Watcher(slow)
                received = []
                while (frame := await reader.next())["type"] == "kv_update":
                    received.append(frame)
                code = await reader.close_code()
            async with watching(slow_server, watch_path("app", since=frame["revision"]), token=token) as resumed:
                rest = await resumed.through(writes)
            return received, frame, code, rest
        finally:
            await kv.aclose()

    received, last_frame, code, rest = asyncio.run(scenario())

    assert code == 4008
    assert last_frame["type"] == "error"
    assert last_frame["code"] == "resource_exhausted"
    assert 1 <= last_frame["revision"] < writes
    assert [f["revision"] for f in received] == list(range(1, last_frame["revision"] + 1))
    assert [f["revision"] for f in rest] == list(range(last_frame["revision"] + 1, writes + 1))


# --- Fan-out across processes -------------------------------------------------------------------


def test_writes_through_one_process_reach_watchers_of_another_in_order_once(
    asgi_server_factory: Callable[..., AsgiServer],  # noqa: F811  (the fixtures imported above)
    redis_url: str,  # noqa: F811
    token,
    make_bucket,
) -> None:
    make_bucket("app", history=64)
    server_a = asgi_server_factory(redis_url=redis_url, env=FAST_WATCH)
    server_b = asgi_server_factory(redis_url=redis_url, env=FAST_WATCH)
    writers, per_writer = 4, 25

    async def scenario() -> tuple[list[dict], list[dict], list[dict]]:
        kv = KvHttp(server_b, token)
        try:
            async with (
                watching(server_a, watch_path("app"), token=token) as on_a,
                watching(server_a, watch_path("app", key="w0.*"), token=token) as filtered_on_a,
                watching(server_b, watch_path("app"), token=token) as on_b,
            ):
                # Concurrent writers: their after-commit publishes race each other.
                results = await asyncio.gather(
                    *(asyncio.gather(*(kv.put("app", f"w{w}.{i}") for i in range(per_writer))) for w in range(writers))
                )
                total = writers * per_writer
                w0_last = max(results[0])
                received = (
                    await on_a.through(total),
                    await filtered_on_a.through(w0_last),
                    await on_b.through(total),
                )
                for watcher in (on_a, filtered_on_a, on_b):
                    await watcher.nothing_more(seconds=0.3)
                return received
        finally:
            await kv.aclose()

    on_a, filtered_on_a, on_b = asyncio.run(scenario())

    total = writers * per_writer
    assert [f["revision"] for f in on_a] == list(range(1, total + 1))
    assert [f["revision"] for f in on_b] == list(range(1, total + 1))
    assert len(filtered_on_a) == per_writer
    assert all(f["key"].startswith("w0.") for f in filtered_on_a)
    assert [f["revision"] for f in filtered_on_a] == sorted(f["revision"] for f in filtered_on_a)
