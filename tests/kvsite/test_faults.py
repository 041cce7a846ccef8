"""Faults with real processes: a server killed mid-stream, Redis down, PostgreSQL restarted under load."""

import asyncio
import base64
import itertools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from django.db.models import Sum

from buckets import store
from buckets.models import Entry
from buckets.names import app_bucket
from kvsite.apikeys import apikey_create
from tests.live_server import asgi_server_factory, free_port, manage  # noqa: F401  (pytest fixture)
from tests.postgres_cluster import PostgresCluster, postgres_cluster  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

BUCKET = app_bucket("faults")


async def write_until_killed(server, token: str, *, clients: int, kill_after: int) -> list[tuple[str, int, bytes]]:
    """Concurrent writers, each key written once; SIGKILL the server once `kill_after` writes are acknowledged."""
    acknowledged: list[tuple[str, int, bytes]] = []
    counter = iter(range(10**9))
    killed = asyncio.Event()

    async def writer(http: httpx.AsyncClient) -> None:
        while not killed.is_set():
            index = next(counter)
            key, value = f"k{index}", f"value-{index}".encode() * 20
            try:
                response = await http.put(f"/api/v1/kv/buckets/faults/keys/{key}", content=value)
            except httpx.HTTPError:
                return  # the server died under this request: not acknowledged
            assert response.status_code == 200, response.text
            acknowledged.append((key, response.json()["revision"], value))
            if len(acknowledged) >= kill_after and not killed.is_set():
                killed.set()
                os.kill(server.process.pid, signal.SIGKILL)

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http:
        await asyncio.gather(*(writer(http) for _ in range(clients)))
    return acknowledged


def test_sigkill_mid_stream_loses_no_acknowledged_write_and_leaves_consistent_data(
    asgi_server_factory,  # noqa: F811
) -> None:
    store.bucket_create(name=BUCKET, history=2)
    token = apikey_create(name="faults", role="admin").token
    server = asgi_server_factory()

    acknowledged = asyncio.run(write_until_killed(server, token, clients=8, kill_after=150))
    server.process.wait(timeout=10)

    # Every acknowledged write is readable, with its revision and bytes.
    for key, revision, value in acknowledged:
        entry = store.entry_get(bucket=BUCKET, key=key)
        assert (entry.revision, bytes(entry.value)) == (revision, value)
    # No revision was handed out twice, and the stored ones are gapless.
    acked_revisions = [revision for _, revision, _ in acknowledged]
    assert len(set(acked_revisions)) == len(acked_revisions)
    bucket = store.bucket_get(name=BUCKET)
    stored = sorted(Entry.objects.filter(bucket=bucket).values_list("revision", flat=True))
    assert stored == list(range(1, bucket.last_revision + 1))
    # No half-written entry, and the counters match a full recount.
    rows = Entry.objects.filter(bucket=bucket)
    assert all(entry.size == len(bytes(entry.value)) and entry.is_latest for entry in rows)
    assert bucket.values_count == rows.count()
    assert bucket.bytes_total == (rows.aggregate(total=Sum("size"))["total"] or 0)
    assert bucket.live_keys == rows.count()
    # A restarted server carries on at the next revision.
    restarted = asgi_server_factory()
    response = httpx.put(
        f"{restarted.http_url}/api/v1/kv/buckets/faults/keys/after",
        content=b"x",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json() == {"revision": bucket.last_revision + 1}


def test_redis_down_writes_and_reads_still_succeed_and_watchers_miss_nothing(
    asgi_server_factory,  # noqa: F811
    tmp_path,
) -> None:
    import json
    import shutil
    import subprocess
    import time

    from tests.live_server import ws_connect

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    port = free_port()
    redis_command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis_process = subprocess.Popen([*redis_command, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    store.bucket_create(name=BUCKET)
    token = apikey_create(name="faults", role="admin").token
    server = asgi_server_factory(
        redis_url=f"redis://127.0.0.1:{port}/0",
        env={"KV_WATCH_HEARTBEAT_SECONDS": "0.5", "KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS": "5"},
    )
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[list[int], int | None]:
        received: list[int] = []
        async with ws_connect(server, "/api/v1/kv/buckets/faults/watch", token=token) as ws:
            async with httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http:
                first = await http.put("/api/v1/kv/buckets/faults/keys/a", content=b"1")
                assert first.status_code == 200
                redis_process.kill()
                redis_process.wait(timeout=10)
                # Redis is gone: the write still commits, the read still answers.
                second = await http.put("/api/v1/kv/buckets/faults/keys/b", content=b"2")
                assert second.status_code == 200, second.text
                assert (await http.get("/api/v1/kv/buckets/faults/keys/b")).status_code == 200
            try:
                while len(received) < 2:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if frame["type"] == "ping":
                        await ws.send('{"type": "pong"}')
                    elif frame["type"] == "kv_update":
                        received.append(frame["revision"])
            except Exception:  # closed: the client must be told how to resume
                return received, ws.close_code
        return received, None

    try:
        received, close_code = asyncio.run(scenario())
    finally:
        if redis_process.poll() is None:
            redis_process.kill()
    # Either every change arrived (the gap was read from the database), or the
    # watcher was closed with a code that tells it to resume with ?since=.
    assert received == [1, 2] or close_code in (1011, 4008, 1012), (received, close_code)


@dataclass
class Answer:
    method: str
    sent_in: str  # the phase the request was sent in
    answered_in: str
    status: int
    content_type: str
    body: bytes

    @property
    def unavailable_json(self) -> bool:
        """A 503 ``{"error": ..., "code": "unavailable"}`` in JSON (never HTML or a traceback)."""
        if self.status != 503 or not self.content_type.startswith("application/json"):
            return False
        body = json.loads(self.body)
        return body.get("code") == "unavailable" and isinstance(body.get("error"), str)


@dataclass
class OutageDrill:
    """Writers that PUT a new key and GET back the last one acknowledged, while the test moves PostgreSQL."""

    http: httpx.AsyncClient
    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    acknowledged: list[tuple[str, int, bytes, str]] = field(default_factory=list)  # key, revision, value, phase
    numbers: Iterator[int] = field(default_factory=itertools.count)

    async def _request(self, method: str, key: str, **options) -> httpx.Response:
        sent_in = self.phase
        response = await self.http.request(method, f"/api/v1/kv/buckets/outage/keys/{key}", **options)
        content_type = response.headers.get("content-type", "")
        answer = Answer(method, sent_in, self.phase, response.status_code, content_type, response.content)
        self.answers.append(answer)
        return response

    async def writer(self) -> None:
        while self.phase != "done":
            number = next(self.numbers)
            key, value, sent_in = f"k{number}", f"value-{number}".encode(), self.phase
            response = await self._request("PUT", key, content=value)
            if response.status_code == 200:
                self.acknowledged.append((key, response.json()["revision"], value, sent_in))
            if self.acknowledged:
                await self._request("GET", self.acknowledged[-1][0])

    def within(self, phase: str) -> list[Answer]:
        """The answers to requests sent and answered in ``phase``."""
        return [answer for answer in self.answers if answer.sent_in == answer.answered_in == phase]

    def acknowledged_in(self, phase: str) -> int:
        return sum(1 for *_, sent_in in self.acknowledged if sent_in == phase)

    async def wait_for(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                seen = Counter((answer.sent_in, answer.answered_in, answer.status) for answer in self.answers)
                pytest.fail(f"{what}: not within {timeout} s (answers by phase sent, answered, status: {dict(seen)})")
            await asyncio.sleep(0.05)


@pytest.mark.postgres
def test_postgres_restarted_under_load_answers_503_json_then_recovers_without_a_server_restart(
    postgres_only,
    postgres_cluster: PostgresCluster,  # noqa: F811
    asgi_server_factory,  # noqa: F811
) -> None:
    # Given a server on a PostgreSQL cluster of this test's own (the shared one stays up), whose
    # requests wait at most 2 s for a database connection (KV_DB_POOL_TIMEOUT, 5 by default).
    database_url = postgres_cluster.create_kvsite_database()
    env = {"DATABASE_URL": database_url}
    token = manage("createapikey", "outage", "--role", "admin", env=env).strip().splitlines()[-1]
    server = asgi_server_factory(env={**env, "KV_DB_POOL_TIMEOUT": "2"})
    pid = server.process.pid
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[OutageDrill, httpx.Response, httpx.Response, list[httpx.Response]]:
        async with httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http:
            assert (await http.post("/api/v1/kv/buckets", json={"name": "outage"})).status_code == 201
            drill = OutageDrill(http)
            writers = [asyncio.create_task(drill.writer()) for _ in range(4)]
            # When the cluster stops (immediate: connections cut, like a crash) in a stream of writes...
            await drill.wait_for(lambda: len(drill.acknowledged) >= 40, timeout=30, what="40 writes before the stop")
            drill.phase = "stopping"
            await asyncio.to_thread(postgres_cluster.stop, "immediate")
            drill.phase = "down"
            ready_down = await http.get("/ready")
            both = {"PUT", "GET"}
            await drill.wait_for(
                lambda: {answer.method for answer in drill.within("down")} == both,
                timeout=30,
                what="a PUT and a GET answered while down",
            )
            # ...and starts again, with the same server process still running.
            drill.phase = "starting"
            await asyncio.to_thread(postgres_cluster.start)
            drill.phase = "back"
            await drill.wait_for(lambda: drill.acknowledged_in("back") >= 30, timeout=30, what="30 writes after")
            ready_back = await http.get("/ready")
            drill.phase = "done"
            await asyncio.gather(*writers)
            reads = [await http.get(f"/api/v1/kv/buckets/outage/keys/{key}") for key, *_ in drill.acknowledged]
        return drill, ready_down, ready_back, reads

    drill, ready_down, ready_back, reads = asyncio.run(scenario())

    # Then every answer was a success or a JSON 503 "unavailable": no 500, no HTML, no traceback.
    wrong = [answer for answer in drill.answers if answer.status != 200 and not answer.unavailable_json]
    assert wrong == [], "\n".join(line for line in server.log().splitlines() if "kvsite.access" not in line)[-8000:]
    # While the database was down nothing succeeded, and /ready said so.
    assert {answer.status for answer in drill.within("down")} == {503}
    assert ready_down.status_code == 503 and ready_down.json() == {"status": "unavailable", "database": "down"}
    # Once it was back, the same server process served again without a restart...
    assert server.process.poll() is None and server.process.pid == pid
    assert ready_back.status_code == 200
    assert {answer.status for answer in drill.within("back")} == {200}
    # ...and every acknowledged write, from before and after the outage, reads back exactly.
    for (key, revision, value, _), read in zip(drill.acknowledged, reads, strict=True):
        assert read.status_code == 200, read.text
        body = read.json()
        assert (body["key"], body["revision"], base64.b64decode(body["value"])) == (key, revision, value)
    revisions = [revision for _, revision, _, _ in drill.acknowledged]
    assert len(set(revisions)) == len(revisions)


def test_an_unreachable_database_is_a_503_json_on_the_key_and_items_apis(asgi_server_factory) -> None:  # noqa: F811
    # Given a server whose database refuses connections, and whose pool gives up waiting after a second,
    unreachable = {"DATABASE_URL": "postgres://postgres@127.0.0.1:1/unreachable", "KV_DB_POOL_TIMEOUT": "1"}
    server = asgi_server_factory(env=unreachable)
    # and a well-formed token: checking it is the request's first use of the database.
    headers = {"Authorization": "Bearer kvs_" + "t" * 43}

    # When a client reads a key through the bucket API and an item through the items API,
    with httpx.Client(base_url=server.http_url, headers=headers, timeout=30) as http:
        key = http.get("/api/v1/kv/buckets/b/keys/k")
        item = http.get("/kv/items/k")

    # then both answer 503 "unavailable" in their own JSON shape.
    assert key.status_code == 503 and key.headers["content-type"] == "application/json"
    assert key.json() == {"error": "database unavailable", "code": "unavailable"}
    assert item.status_code == 503 and item.headers["content-type"].startswith("application/json")
    assert item.json() == {
        "requestId": item.headers["X-Request-Id"],
        "data": None,
        "error": {"code": "unavailable", "message": "database unavailable"},
    }
