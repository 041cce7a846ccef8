"""Faults with real processes: a server killed mid-stream, Redis down, PostgreSQL restarted under load.

They claim production behaviour, so they run on the production path (``make serve``:
gunicorn and a uvicorn worker, debug off, Redis) and PostgreSQL, once, in CI's PostgreSQL pass.
"""

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from django.db.models import Sum
from websockets.exceptions import ConnectionClosed

from buckets.core import store
from buckets.core.events import bucket_group
from buckets.core.names import app_bucket
from buckets.models import Entry
from kvsite.access.apikeys import apikey_create
from tests.live_server import (  # noqa: F401  (asgi_server_factory: a pytest fixture)
    RUN_CHANNEL_PREFIX,
    AsgiServer,
    asgi_server_factory,
    free_port,
    manage,
    redis_available,
    ws_connect,
)
from tests.postgres_cluster import PostgresCluster, postgres_cluster  # noqa: F401  (pytest fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

BUCKET = app_bucket("faults")
# The kill drill's bucket keeps 3 revisions of each of its 20 keys, each written about 8 times.
HISTORY = 3
KEYS = 20


@dataclass(eq=False)
class Write:
    """One PUT the drill sent, and what became of it."""

    key: str
    value: bytes
    revision: int | None = None  # acknowledged: answered 200 with this revision
    in_flight: bool = False  # the server died before answering
    body_cut_short: bool = False  # the server died while part of the body was still with the client


@dataclass
class KillDrill:
    """Writers cycling over ``KEYS`` keys until ``kill_after`` writes are acknowledged, then a SIGKILL.

    One of them trickles its bodies in pieces, and the kill waits for a moment
    when it holds pieces back, so one write always dies with half its body sent.
    """

    server: AsgiServer
    http: httpx.AsyncClient
    kill_after: int
    writes: list[Write] = field(default_factory=list)
    acknowledged: int = 0
    numbers: Iterator[int] = field(default_factory=itertools.count)
    holding_back: Write | None = None  # the trickled write whose next piece is not handed to httpx yet
    killed: bool = False

    def next_write(self) -> Write:
        number = next(self.numbers)
        key = f"k{number % KEYS}"
        # Unique per write and 0.2 to 15 KB: a stored prefix of one is no value anybody sent.
        write = Write(key, f"{key}={number};".encode() * (40 + number % 7 * 300))
        self.writes.append(write)
        return write

    async def put(self, write: Write, content: bytes | AsyncIterator[bytes], headers: dict[str, str]) -> bool:
        """Send one write and record the outcome; False once the server is gone."""
        try:
            response = await self.http.put(
                f"/api/v1/kv/buckets/faults/keys/{write.key}", content=content, headers=headers
            )
        except httpx.TransportError:
            write.in_flight = True
            return False
        assert response.status_code == 200, response.text
        write.revision = response.json()["revision"]
        self.acknowledged += 1
        if self.acknowledged >= self.kill_after and self.holding_back is not None and not self.killed:
            self.killed = True
            self.holding_back.body_cut_short = True
            self.server.kill()
        return True

    async def writer(self) -> None:
        while not self.killed:
            write = self.next_write()
            if not await self.put(write, write.value, {}):
                return

    async def trickler(self) -> None:
        """Bodies in four pieces 50 ms apart, chunked or with a Content-Length, by turns."""
        for turn in itertools.count():
            if self.killed:
                return
            write = self.next_write()
            size = -(-len(write.value) // 4)
            pieces = [write.value[start : start + size] for start in range(0, len(write.value), size)]

            async def body(write: Write = write, pieces: list[bytes] = pieces) -> AsyncIterator[bytes]:
                yield pieces[0]
                for piece in pieces[1:]:
                    self.holding_back = write
                    await asyncio.sleep(0.05)
                    self.holding_back = None
                    yield piece

            headers = {"Content-Length": str(len(write.value))} if turn % 2 else {}
            if not await self.put(write, body(), headers):
                return


def group_processes(group: int) -> list[int]:
    """Processes of process group ``group`` still alive (zombies are dead: they only wait to be reaped)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state != "Z":
                alive.append(int(stat.parent.name))
    return sorted(alive)


@pytest.mark.postgres
def test_sigkill_mid_stream_loses_no_acknowledged_write_and_leaves_consistent_data(
    postgres_only,
    asgi_server_factory,  # noqa: F811
) -> None:
    # Given a production server (gunicorn and its uvicorn worker) and a bucket keeping 3 revisions per key...
    store.bucket_create(name=BUCKET, history=HISTORY)
    token = apikey_create(name="faults", role="admin").token
    headers = {"Authorization": f"Bearer {token}"}
    server = asgi_server_factory(serving="production")
    group = server.process.pid  # the server leads a process group of its own
    assert len(group_processes(group)) >= 2, "a manager and its worker"

    # ...when 8 writers overwrite 20 keys and the whole group is SIGKILLed mid-stream...
    async def scenario() -> list[Write]:
        async with httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http:
            drill = KillDrill(server, http, kill_after=8 * KEYS)
            await asyncio.gather(drill.trickler(), *(drill.writer() for _ in range(7)))
        return drill.writes

    writes = asyncio.run(scenario())
    deadline = time.monotonic() + 5
    while group_processes(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_processes(group) == [], "a worker outlived the kill"
    acknowledged = [write for write in writes if write.revision is not None]
    in_flight = [write for write in writes if write.in_flight]
    per_key = Counter(write.key for write in acknowledged)
    assert len(per_key) == KEYS and min(per_key.values()) > HISTORY, "every key was overwritten"
    assert any(write.body_cut_short for write in in_flight), "the kill landed in the middle of a body"

    # ...then a restarted production server shows each key's kept history as the writers left it.
    restarted = asgi_server_factory(serving="production")
    sent = {(write.key, write.value): write for write in writes}
    kept: dict[str, list[tuple[int, Write | None]]] = {}  # key: (revision, the write of that value), oldest first
    with httpx.Client(base_url=restarted.http_url, headers=headers, timeout=30) as http:
        for key in sorted({write.key for write in writes}):
            history = http.get(f"/api/v1/kv/buckets/faults/keys/{key}/history").json()["entries"]
            latest = http.get(f"/api/v1/kv/buckets/faults/keys/{key}").json()
            assert latest == history[-1] and {entry["operation"] for entry in history} == {"put"}
            kept[key] = [(entry["revision"], sent.get((key, base64.b64decode(entry["value"])))) for entry in history]
        info = http.get("/api/v1/kv/buckets/faults").json()

    # Every kept value is one a writer sent whole for that key, byte for byte (a
    # truncated or mixed-up value matches none), under the revision its writer was told.
    stored = {revision: write for entries in kept.values() for revision, write in entries}
    strays = [
        (key, revision)
        for key, entries in kept.items()
        for revision, write in entries
        if write is None or write.body_cut_short or write.revision not in (None, revision)
    ]
    assert strays == []
    assert len(set(map(id, stored.values()))) == len(stored), "a write stored twice"
    assert all(len(entries) <= HISTORY for entries in kept.values())
    # Every acknowledged write is kept, or pushed out of its key's history by newer writes;
    # its revision went to nobody else.
    for write in acknowledged:
        assert stored.get(write.revision, write) is write, f"revision {write.revision} handed out twice"
        newer = [revision for revision, _ in kept[write.key] if revision > write.revision]
        assert write.revision in stored or len(newer) == HISTORY, f"acknowledged {write.key}@{write.revision} lost"
    # Each key's latest value is its last acknowledged write, or one that was in flight when the server died.
    for key, entries in kept.items():
        last_acknowledged = max((write for write in acknowledged if write.key == key), key=lambda write: write.revision)
        assert entries[-1][1] is last_acknowledged or entries[-1][1] in in_flight, key
    # Revisions are gapless: each one up to the last is kept, or was acknowledged, or (at
    # most one each) belongs to a write in flight whose entry newer ones pushed out.
    bucket = store.bucket_get(name=BUCKET)
    assert max(stored) == bucket.last_revision >= max(write.revision for write in acknowledged)
    unaccounted = set(range(1, bucket.last_revision + 1)) - stored.keys() - {write.revision for write in acknowledged}
    pushed_out = [write for write in in_flight if write not in stored.values() and not write.body_cut_short]
    assert len(unaccounted) <= len(pushed_out), sorted(unaccounted)
    # The counters match a recount, and the bucket's info shows them.
    rows = Entry.objects.filter(bucket=bucket)
    assert all(entry.size == len(bytes(entry.value)) for entry in rows)
    assert (bucket.values_count, bucket.bytes_total, bucket.live_keys) == (
        rows.count(),
        rows.aggregate(total=Sum("size"))["total"],
        rows.filter(is_latest=True, operation=Entry.Operation.PUT).count(),
    )
    assert (info["values"], info["bytes"]) == (bucket.values_count, bucket.bytes_total)
    assert bucket.live_keys == KEYS
    # And the restarted server carries on at the next revision.
    after = httpx.put(f"{restarted.http_url}/api/v1/kv/buckets/faults/keys/after", content=b"x", headers=headers)
    assert (after.status_code, after.json()) == (200, {"revision": bucket.last_revision + 1})


@dataclass
class ThrowAwayRedis:
    """A redis-server of this test's own, on one port, to kill and start again (the shared one stays up)."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen([*command, "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not redis_available(self.url):
            assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def subscribers(self, channel: str) -> int:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)
        finally:
            client.close()


@pytest.fixture
def throwaway_redis(tmp_path) -> Iterator[ThrowAwayRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = ThrowAwayRedis(port=free_port(), directory=tmp_path)
    server.start()
    yield server
    server.kill()


@dataclass
class WatchLog:
    """What a watcher received: ``kv_update`` frames as (revision, key, value), and how its socket ended."""

    changes: list[tuple[int, str, bytes]] = field(default_factory=list)
    close_code: int | None = None

    async def follow(self, ws) -> None:
        """Read frames until the socket closes, answering pings."""
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "ping":
                    # A ping can be the frame just before a close: the frames after it are still read.
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send('{"type": "pong"}')
                elif frame["type"] == "kv_update":
                    self.changes.append((frame["revision"], frame["key"], base64.b64decode(frame["value"])))
        self.close_code = ws.close_code

    async def wait_for(self, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.changes) < count and self.close_code is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


@pytest.mark.postgres
def test_redis_down_writes_and_reads_still_succeed_and_watchers_miss_nothing(
    postgres_only,
    asgi_server_factory,  # noqa: F811
    throwaway_redis: ThrowAwayRedis,
) -> None:
    # Given a production server on a Redis of this test's own, watchers pinged (and
    # feeds re-checking the database) after 0.5 s of silence, and a watcher of the bucket...
    store.bucket_create(name=BUCKET)
    token = apikey_create(name="faults", role="admin").token
    server = asgi_server_factory(
        serving="production",
        redis_url=throwaway_redis.url,
        env={"KV_WATCH_HEARTBEAT_SECONDS": "0.5", "KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS": "5"},
    )
    group_channel = f"{RUN_CHANNEL_PREFIX}__group__{bucket_group(BUCKET)}"
    headers = {"Authorization": f"Bearer {token}"}
    log = WatchLog()
    while_down: list[tuple[int, str, bytes]] = []  # what the watcher had before Redis came back

    async def scenario() -> dict[str, httpx.Response]:
        answers = {}
        async with (
            ws_connect(server, "/api/v1/kv/buckets/faults/watch", token=token) as ws,
            httpx.AsyncClient(base_url=server.http_url, headers=headers, timeout=30) as http,
        ):
            following = asyncio.create_task(log.follow(ws))
            answers["put a"] = await http.put("/api/v1/kv/buckets/faults/keys/a", content=b"1")
            # When Redis dies (the first change may be on its way through it), a write
            # still commits and a read still answers...
            await asyncio.to_thread(throwaway_redis.kill)
            answers["put b"] = await http.put("/api/v1/kv/buckets/faults/keys/b", content=b"2")
            answers["get b"] = await http.get("/api/v1/kv/buckets/faults/keys/b")
            await log.wait_for(2, timeout=15)
            while_down.extend(log.changes)
            # ...and once it is back on the same port, the feed subscribes again and a third write arrives too.
            await asyncio.to_thread(throwaway_redis.start)
            deadline = time.monotonic() + 15
            while not await asyncio.to_thread(throwaway_redis.subscribers, group_channel):
                assert time.monotonic() < deadline, "the feed did not subscribe again to the restarted Redis"
                await asyncio.sleep(0.1)
            answers["put c"] = await http.put("/api/v1/kv/buckets/faults/keys/c", content=b"3")
            await log.wait_for(3, timeout=15)
            # A few more heartbeat intervals: a change the database re-checks found twice would show now.
            await asyncio.sleep(2)
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        return answers

    answers = asyncio.run(scenario())

    # Then every write and read succeeded...
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 200)
    assert base64.b64decode(answers["get b"].json()["value"]) == b"2"
    # ...and the watcher got every change, in order, each once, on a socket still open: those
    # written before and during the outage while Redis was still down (read from the database).
    assert while_down == [(1, "a", b"1"), (2, "b", b"2")], server.log()[-4000:]
    assert log.changes == [(1, "a", b"1"), (2, "b", b"2"), (3, "c", b"3")], server.log()[-4000:]
    assert log.close_code is None


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
    # Given a production server on a PostgreSQL cluster of this test's own (the shared one stays
    # up), whose requests wait at most 2 s for a database connection (KV_DB_POOL_TIMEOUT, 5 by default).
    database_url = postgres_cluster.create_kvsite_database()
    env = {"DATABASE_URL": database_url}
    token = manage("createapikey", "outage", "--role", "admin", env=env).strip().splitlines()[-1]
    server = asgi_server_factory(serving="production", env={**env, "KV_DB_POOL_TIMEOUT": "2"})
    # gunicorn would replace a worker that died and stay up itself: the worker is what must last.
    processes = group_processes(server.process.pid)
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
            # ...and starts again, with the same server processes still running.
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
    # Once it was back, the same server processes served again without a restart...
    assert group_processes(server.process.pid) == processes
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
