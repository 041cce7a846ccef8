"""The per-process bucket feed: one subscription per bucket, each change decoded, ordered and encoded once.

Feed tests run in this process on the in-memory channel layer with recording
watchers; the Redis test counts a real server's subscriptions.
"""

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from buckets.core import events, fanout, replay, store
from buckets.core.fanout import Change, FeedEnd, feed_join, open_feeds
from buckets.core.names import app_bucket
from tests.live_server import asgi_server_factory, redis_url, ws_connect  # noqa: F401  (pytest fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingWatcher:
    """A FeedWatcher that keeps what the feed hands it."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.ended: FeedEnd | None = None

    def offer(self, change: Change) -> None:
        self.changes.append(change)

    def tick(self, now: float) -> None:
        pass

    def end(self, why: FeedEnd, position: replay.BucketPosition | None) -> None:
        self.ended = why

    @property
    def revisions(self) -> list[int]:
        return [change.revision for change in self.changes]


@pytest.fixture
def quick_gaps(settings) -> None:
    settings.KV_WATCH_GAP_SECONDS = 0.05
    settings.KV_WATCH_HEARTBEAT_SECONDS = 30  # no quiet-feed reads in the middle of a test


@pytest.fixture
def unpublished(monkeypatch) -> None:
    """Writes announce nothing: the test hands the feed exactly the events it wants."""
    monkeypatch.setattr(events, "publish", lambda group, event: None)


def run(scenario: Callable[[], Awaitable]) -> object:
    async def closing() -> object:
        try:
            return await scenario()
        finally:
            # The feed's reads ran in asgiref's worker thread: close its connection there.
            await database_sync_to_async(connections.close_all)()

    return asyncio.run(closing())


def put(bucket: str, key: str, value: bytes = b"v") -> Awaitable:
    return database_sync_to_async(store.entry_put)(bucket=app_bucket(bucket), key=key, value=value)


# Bound at import, so counting the feed's reads (a monkeypatched replay) leaves the test's own out.
_stored_events = replay.change_events_after


def _read_stored(bucket: str, through: int) -> list[dict]:
    # In a thread of its own: a test may hold asgiref's worker thread, where the feed reads.
    try:
        return _stored_events(bucket=app_bucket(bucket), after=0, through=through)
    finally:
        connections.close_all()


async def send_revisions(bucket: str, *revisions: int) -> None:
    """Publish the stored events of ``revisions`` to the bucket's group, in the order given."""
    stored = await asyncio.to_thread(_read_stored, bucket, max(revisions))
    by_revision = {event["revision"]: event for event in stored}
    for revision in revisions:
        await get_channel_layer().group_send(events.bucket_group(app_bucket(bucket)), by_revision[revision])


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_watchers_of_a_bucket_share_one_feed_one_subscription_and_each_change(
    make_bucket, quick_gaps, unpublished
) -> None:
    make_bucket("app")
    make_bucket("other")

    async def scenario() -> None:
        layer = get_channel_layer()
        on_app = [RecordingWatcher() for _ in range(5)]
        on_other = RecordingWatcher()
        feeds = [await feed_join(bucket=app_bucket("app"), watcher=watcher) for watcher in on_app]
        await feed_join(bucket=app_bucket("other"), watcher=on_other)

        # One feed per bucket, and one member in the bucket's group however many watch it.
        assert len(set(map(id, feeds))) == 1
        assert set(open_feeds()) == {app_bucket("app"), app_bucket("other")}
        assert len(layer.groups[events.bucket_group(app_bucket("app"))]) == 1

        await put("app", "k")
        await send_revisions("app", 1)
        await until(lambda: all(watcher.changes for watcher in on_app))

        # Every watcher got the very same change, whose text is encoded once.
        first = on_app[0].changes[0]
        assert all(watcher.changes == [first] for watcher in on_app)
        assert first.text() is first.text()
        assert json.loads(first.text())["key"] == "k"
        assert on_other.changes == []

        for watcher in on_app:
            feeds[0].leave(watcher)
        await until(lambda: events.bucket_group(app_bucket("app")) not in layer.groups)
        assert set(open_feeds()) == {app_bucket("other")}
        open_feeds()[app_bucket("other")].leave(on_other)
        await until(lambda: not layer.groups)

    run(scenario)


def test_a_rendering_is_computed_once_per_change() -> None:
    calls = []

    def render(event: dict) -> dict:
        calls.append(event["revision"])
        return {"type": "rendered", "revision": event["revision"]}

    change = Change({"type": "kv_update", "key": "k", "revision": 3})

    texts = {change.text(render) for _ in range(100)}

    assert calls == [3]
    assert texts == {'{"type": "rendered", "revision": 3}'}
    assert json.loads(change.text())["type"] == "kv_update"


def test_the_feed_orders_events_and_fills_a_gap_with_one_read_for_every_watcher(
    make_bucket, quick_gaps, unpublished, monkeypatch
) -> None:
    make_bucket("app", history=10)
    reads = []
    read = replay.change_events_after

    def counting_read(**kwargs) -> list[dict]:
        reads.append((kwargs["after"], kwargs["through"]))
        return read(**kwargs)

    monkeypatch.setattr(replay, "change_events_after", counting_read)

    async def scenario() -> list[RecordingWatcher]:
        watchers = [RecordingWatcher() for _ in range(20)]
        for watcher in watchers:
            await feed_join(bucket=app_bucket("app"), watcher=watcher)
        for index in range(5):
            await put("app", f"k{index}")
        # 3 arrives before 2, 4 and 5 never arrive.
        await send_revisions("app", 1, 3, 2)
        await until(lambda: len(watchers[0].changes) == 3)
        await send_revisions("app", 5)
        await until(lambda: all(len(watcher.changes) == 5 for watcher in watchers))
        for watcher in watchers:
            open_feeds()[app_bucket("app")].leave(watcher)
        return watchers

    watchers = run(scenario)

    assert all(watcher.revisions == [1, 2, 3, 4, 5] for watcher in watchers)
    assert reads == [(3, 5)]


def test_a_gap_read_racing_live_events_keeps_the_feed(make_bucket, quick_gaps, unpublished, monkeypatch) -> None:
    # The database's answer is older than live events that arrived meanwhile: no sign of a recreated bucket.
    make_bucket("app", history=10)
    answering = threading.Event()
    position = replay.bucket_position

    def slow_position(**kwargs) -> replay.BucketPosition | None:
        read = position(**kwargs)
        answering.wait(5)
        return read

    def put_elsewhere(key: str) -> None:
        # Not in asgiref's worker thread, which the slow read holds.
        try:
            store.entry_put(bucket=app_bucket("app"), key=key, value=b"v")
        finally:
            connections.close_all()

    async def scenario() -> RecordingWatcher:
        watcher = RecordingWatcher()
        feed = await feed_join(bucket=app_bucket("app"), watcher=watcher)
        await put("app", "k1")
        await put("app", "k2")
        monkeypatch.setattr(replay, "bucket_position", slow_position)
        await send_revisions("app", 2)  # 1 is missing: the gap read starts, and reads last revision 2
        await asyncio.sleep(0.3)
        await asyncio.to_thread(put_elsewhere, "k3")
        await asyncio.to_thread(put_elsewhere, "k4")
        await send_revisions("app", 1, 3, 4)
        await until(lambda: watcher.revisions == [1, 2, 3, 4])
        answering.set()
        await asyncio.sleep(0.3)
        assert feed.closed is False
        feed.leave(watcher)
        return watcher

    watcher = run(scenario)

    assert watcher.ended is None
    assert watcher.revisions == [1, 2, 3, 4]


def test_a_quiet_feed_finds_a_deleted_bucket_and_ends_its_watchers(make_bucket, settings) -> None:
    settings.KV_WATCH_HEARTBEAT_SECONDS = 0.2
    make_bucket("app")

    async def scenario() -> RecordingWatcher:
        watcher = RecordingWatcher()
        await feed_join(bucket=app_bucket("app"), watcher=watcher)
        await database_sync_to_async(store.bucket_delete)(name=app_bucket("app"))
        await until(lambda: watcher.ended is not None)
        assert open_feeds() == {}
        return watcher

    assert run(scenario).ended is FeedEnd.BUCKET_DELETED


def test_joining_a_missing_bucket_opens_no_feed() -> None:
    async def scenario() -> None:
        with pytest.raises(fanout.FeedBucketMissing):
            await feed_join(bucket=app_bucket("nope"), watcher=RecordingWatcher())
        assert open_feeds() == {}
        await until(lambda: not get_channel_layer().groups)

    run(scenario)


# --- Through a real server and Redis --------------------------------------------------------------


def test_one_redis_subscription_per_bucket_per_process_whatever_the_watcher_count(
    asgi_server_factory,  # noqa: F811
    redis_url,  # noqa: F811
    issue_token,
    make_bucket,
) -> None:
    import httpx
    import redis

    from tests.live_server import RUN_CHANNEL_PREFIX

    make_bucket("app")
    make_bucket("other")
    token = issue_token("admin")
    server = asgi_server_factory(redis_url=redis_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def subscriptions() -> dict[str, int]:
        channels = client.pubsub_channels(f"{RUN_CHANNEL_PREFIX}*")
        return {name.removeprefix(RUN_CHANNEL_PREFIX): count for name, count in client.pubsub_numsub(*channels)}

    async def scenario() -> tuple[dict[str, int], list[dict], dict[str, int]]:
        watches = [("app", 7), ("other", 2)]
        sockets = [
            await ws_connect(server, f"/api/v1/kv/buckets/{bucket}/watch", token=token)
            for bucket, count in watches
            for _ in range(count)
        ]
        try:
            during = subscriptions()
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                written = await http.put(
                    "/api/v1/kv/buckets/app/keys/k", content=b"1", headers={"Authorization": f"Bearer {token}"}
                )
                assert written.status_code == 200
            frames = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in sockets[:7]]
        finally:
            for ws in sockets:
                await ws.close()
        deadline = time.monotonic() + 10
        while (after := subscriptions()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return during, frames, after

    try:
        during, frames, after = asyncio.run(scenario())
    finally:
        client.close()

    # Per bucket: its group, and the feed's own channel, each subscribed once.
    groups = {name: count for name, count in during.items() if "__group__" in name}
    assert groups == {"__group__kv.APP_app": 1, "__group__kv.APP_other": 1}
    assert len(during) == 4
    assert set(during.values()) == {1}
    assert {(frame["key"], frame["revision"]) for frame in frames} == {("k", 1)}
    assert after == {}


def test_watchers_stay_open_while_redis_is_down_and_go_live_again_when_it_is_back(
    asgi_server_factory,  # noqa: F811
    issue_token,
    make_bucket,
    tmp_path,
) -> None:
    import shutil
    import socket
    import subprocess

    import httpx

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]
    make_bucket("app")
    token = issue_token("admin")
    redis_process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    # A long heartbeat: within this test only live events (and the gaps they reveal) deliver anything.
    server = asgi_server_factory(redis_url=f"redis://127.0.0.1:{port}/0", env={"KV_WATCH_HEARTBEAT_SECONDS": "60"})

    async def scenario() -> tuple[list[int], float]:
        nonlocal redis_process
        received: list[int] = []
        async with (
            ws_connect(server, "/api/v1/kv/buckets/app/watch", token=token) as ws,
            httpx.AsyncClient(base_url=server.http_url, headers={"Authorization": f"Bearer {token}"}) as http,
        ):

            async def write(key: str) -> None:
                assert (await http.put(f"/api/v1/kv/buckets/app/keys/{key}", content=b"1")).status_code == 200

            async def receive_through(revision: int) -> None:
                while not received or received[-1] < revision:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 20))["revision"])

            await write("before")  # 1
            await receive_through(1)
            redis_process.kill()
            redis_process.wait(10)
            await write("while-down")  # 2: its publish fails
            redis_process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            await asyncio.sleep(3)  # the server's subscriber reconnects and subscribes again
            started = time.monotonic()
            await write("after")  # 3: live again, and it shows that 2 is missing
            await write("after-2")  # 4
            await receive_through(4)
            return received, time.monotonic() - started

    try:
        received, took = asyncio.run(scenario())
    finally:
        redis_process.kill()
        redis_process.wait(10)

    assert received == [1, 2, 3, 4]
    assert took < 10  # far below the 60 s heartbeat: events arrive live again
