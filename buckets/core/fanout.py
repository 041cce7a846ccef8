"""Per-process change feeds: one channel-layer subscription per bucket, shared by every local watcher.

The storage core publishes each committed change once to the bucket's group
(with Redis, one PUBLISH). In each server process a ``BucketFeed`` is the only
member of that group for its bucket, however many sockets watch it: it takes
each event once (one decode), puts the bucket's events back into revision order,
fills gaps from the database once for all its watchers, and hands every watcher
the same ``Change``, whose frame text is encoded once. Watchers only filter keys
and write to their own sockets. Before this, every watcher had a channel of its
own: each event was decoded, ordered, gap-checked and JSON-encoded once per
watcher, and a gap cost one database read per watcher.

Why ordering needs work: events are published after commit from whichever
thread or process wrote, so revision 6 can arrive before 5, and a channel layer
may drop a message (Redis down, a full in-memory queue). Revisions are gapless
per bucket and the feed sees every event of the bucket, so anything but
"last + 1" is a gap: events ahead are held back for ``KV_WATCH_GAP_SECONDS``
(the missing one is usually just late), then the missing range is read from the
database (``buckets.core.replay``). A feed that has heard nothing for a heartbeat
interval reads the bucket's last revision, so a lost final event (or every event,
while Redis is down) still arrives without a later write.

The feed also runs its watchers' clock (heartbeats, unanswered pings, metrics)
from one timer, so a watcher needs no timer of its own per frame.
"""

import asyncio
import contextlib
import enum
import json
import logging
import math
import weakref
from collections.abc import Callable, Mapping
from typing import Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from buckets.core import replay
from buckets.core.events import ChangeEvent, bucket_group, is_change_event

logger = logging.getLogger(__name__)


# Turns a change event into the frame a dialect's watchers send (a JSON object).
FrameRender = Callable[[ChangeEvent], Mapping[str, object]]


class Change:
    """One ``kv_update`` event as every local watcher of its bucket receives it: decoded once, encoded once."""

    __slots__ = ("_texts", "event", "key", "revision")

    def __init__(self, event: ChangeEvent) -> None:
        self.event = event
        self.key = event["key"]
        self.revision = event["revision"]
        self._texts: dict[FrameRender | None, str] = {}

    def text(self, render: FrameRender | None = None) -> str:
        """The JSON frame: the event itself, or ``render(event)``; computed on first use, then shared."""
        try:
            return self._texts[render]
        except KeyError:
            text = self._texts[render] = json.dumps(self.event if render is None else render(self.event))
            return text


class RevisionOrder:
    """Puts one bucket's events back into revision order.

    Every revision at or below ``last`` has been dealt with: delivered, or known
    not to be kept any more. An event above ``last + 1`` waits until the ones
    before it arrive, or until ``settle`` says what the database holds.
    """

    def __init__(self, *, last: int) -> None:
        self.last = last
        self._ahead: dict[int, ChangeEvent] = {}

    @property
    def waiting(self) -> int:
        """How many events are held back behind a gap."""
        return len(self._ahead)

    def offer(self, event: ChangeEvent) -> list[ChangeEvent]:
        """Take one live event; return the events now deliverable, in order (duplicates vanish)."""
        revision = event["revision"]
        if revision <= self.last:
            return []
        self._ahead[revision] = event
        return self._release()

    def settle(self, *, events: list[ChangeEvent], through: int) -> list[ChangeEvent]:
        """Close the gap up to ``through`` with ``events`` read from the database.

        Revisions up to ``through`` had committed before the read, so one missing
        from both ``events`` and the held-back events is gone for good (trimmed,
        purged, or not matching the read's pattern) and is skipped.
        """
        known = {revision: event for revision, event in self._ahead.items() if revision <= through}
        for revision in known:
            del self._ahead[revision]
        known.update((event["revision"], event) for event in events if event["revision"] > self.last)
        ready = [known[revision] for revision in sorted(known)]
        self.last = max(self.last, through)
        return ready + self._release()

    def _release(self) -> list[ChangeEvent]:
        ready = []
        while self.last + 1 in self._ahead:
            self.last += 1
            ready.append(self._ahead.pop(self.last))
        return ready


class FeedEnd(enum.Enum):
    """Why a feed stopped: its watchers are closed with a matching code."""

    BUCKET_DELETED = "bucket_deleted"
    BUCKET_RECREATED = "bucket_recreated"
    FAILED = "failed"


class FeedUnavailable(Exception):
    """The channel layer refused the subscription (Redis down)."""


class FeedBucketMissing(Exception):
    """The bucket does not exist."""


class FeedWatcher(Protocol):
    """What a feed needs of a watcher. None of these may block, join or leave a feed."""

    def offer(self, change: Change) -> None:
        """A change, in revision order, once (a watcher may see changes older than its own start)."""

    def tick(self, now: float) -> None:
        """The feed's timer, a few times per heartbeat interval (``now``: the event loop's clock)."""

    def end(self, why: FeedEnd, position: replay.BucketPosition | None) -> None:
        """The feed stopped; no more changes will come."""


class _LoopFeeds:
    """The feeds of one event loop (a server process has one; tests run several loops in turn)."""

    def __init__(self) -> None:
        self.open: dict[str, BucketFeed] = {}
        # Feeds still leaving their group: a new feed of the bucket joins only after that.
        self.closing: dict[str, asyncio.Future[None]] = {}


_feeds_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopFeeds]" = weakref.WeakKeyDictionary()


def _loop_feeds() -> _LoopFeeds:
    loop = asyncio.get_running_loop()
    feeds = _feeds_by_loop.get(loop)
    if feeds is None:
        feeds = _feeds_by_loop[loop] = _LoopFeeds()
    return feeds


def open_feeds() -> dict[str, "BucketFeed"]:
    """This event loop's open feeds by internal bucket name (for tests and diagnostics)."""
    return dict(_loop_feeds().open)


async def feed_join(*, bucket: str, watcher: FeedWatcher) -> "BucketFeed":
    """Add ``watcher`` to this process' feed of ``bucket``, opening the feed first if there is none.

    Returns once the feed is live: every change committed after this returns
    reaches the watcher through ``offer``, so a watcher reads the bucket's
    position after joining, never before. Raises ``FeedUnavailable`` or
    ``FeedBucketMissing``.
    """
    feeds = _loop_feeds()
    feed = feeds.open.get(bucket)
    if feed is None:
        feed = feeds.open[bucket] = BucketFeed(bucket=bucket, feeds=feeds)
    feed.watchers[watcher] = None
    try:
        await asyncio.shield(feed.opening)
    except BaseException:
        feed.leave(watcher)
        raise
    return feed


def tick_interval() -> float:
    """How often a feed calls its watchers' ``tick``: a quarter of the shorter heartbeat setting, at least 50 ms."""
    return max(0.05, min(settings.KV_WATCH_HEARTBEAT_SECONDS, settings.KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS) / 4)


class BucketFeed:
    """The live change stream of one bucket in this process (see the module docstring)."""

    def __init__(self, *, bucket: str, feeds: _LoopFeeds) -> None:
        self.bucket = bucket
        self.group = bucket_group(bucket)
        self.watchers: dict[FeedWatcher, None] = {}  # an ordered set
        self.order = RevisionOrder(last=0)
        self.closed = False
        self._feeds = feeds
        self._layer = get_channel_layer()
        self._channel: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._check_at: float | None = None
        self._quiet_since = 0.0
        self._wake = asyncio.Event()
        # Subscribing and reading the position; joiners wait on it (``feed_join``).
        self.opening: asyncio.Future[None] = asyncio.ensure_future(self._open())

    # --- Opening and closing ---------------------------------------------------------------

    async def _open(self) -> None:
        try:
            previous = self._feeds.closing.get(self.bucket)
            if previous is not None:
                await asyncio.shield(previous)
            try:
                self._channel = await self._layer.new_channel()
                await self._layer.group_add(self.group, self._channel)
            except Exception as error:
                logger.exception("subscribing to %s failed", self.group)
                raise FeedUnavailable(str(error)) from None
            # Joined first, then read: a change committed after this read is certain to arrive live.
            position = await database_sync_to_async(replay.bucket_position)(bucket=self.bucket)
            if position is None:
                raise FeedBucketMissing(self.bucket)
        except BaseException:
            self._close()
            raise
        self.order = RevisionOrder(last=position.last_revision)
        self._quiet_since = asyncio.get_running_loop().time()
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._keep())]
        if not self.watchers:  # every joiner gave up while the feed opened
            self._close()

    def leave(self, watcher: FeedWatcher) -> None:
        """Remove ``watcher``; the last one to leave closes the feed."""
        self.watchers.pop(watcher, None)
        if not self.watchers and self.opening.done():
            self._close()

    def _close(self) -> None:
        """Stop taking events and leave the group (in the background; a new feed of the bucket waits for it)."""
        if self.closed:
            return
        self.closed = True
        if self._feeds.open.get(self.bucket) is self:
            del self._feeds.open[self.bucket]
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if self._channel is None:
            return
        leaving = asyncio.ensure_future(self._leave_group(tasks))
        self._feeds.closing[self.bucket] = leaving

        def forget(done: asyncio.Future[None]) -> None:
            if self._feeds.closing.get(self.bucket) is done:
                del self._feeds.closing[self.bucket]

        leaving.add_done_callback(forget)

    async def _leave_group(self, tasks: list[asyncio.Task[None]]) -> None:
        # A cancelled receive is what makes the Redis layer unsubscribe the feed's own channel.
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._layer.group_discard(self.group, self._channel)
        except Exception:
            logger.warning("leaving %s failed (the channel layer is unreachable)", self.group, exc_info=True)

    def _end(self, why: FeedEnd, position: replay.BucketPosition | None = None) -> None:
        watchers = tuple(self.watchers)
        self.watchers.clear()
        self._close()
        for watcher in watchers:
            watcher.end(why, position)

    # --- Events in ---------------------------------------------------------------------------

    async def _receive(self) -> None:
        receive, channel = self._layer.receive, self._channel
        try:
            while True:
                self.take(await receive(channel))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("receiving change events of %s failed", self.bucket)
            self._end(FeedEnd.FAILED)

    def take(self, event: Mapping[str, object]) -> None:
        """One event from the channel layer: order it, hand out what is now in order, plan a gap check."""
        if not is_change_event(event):
            return
        now = asyncio.get_running_loop().time()
        self._quiet_since = now
        self._hand_out(self.order.offer(event))
        if not self.order.waiting:
            # A gap the late event closed needs no database read.
            self._check_at = None
        elif self.order.waiting >= settings.KV_WATCH_QUEUE_SIZE:
            # Held back as much as a watcher may queue: stop waiting, read the gap now.
            self._check_at = now
            self._wake.set()
        elif self._check_at is None:
            self._check_at = now + settings.KV_WATCH_GAP_SECONDS
            self._wake.set()

    def _hand_out(self, events: list[ChangeEvent]) -> None:
        for event in events:
            change = Change(event)
            for watcher in tuple(self.watchers):
                watcher.offer(change)

    # --- Timer: gap checks, quiet checks, watchers' clock ---------------------------------------

    async def _keep(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat = settings.KV_WATCH_HEARTBEAT_SECONDS
        interval = tick_interval()
        next_tick = loop.time() + interval
        try:
            while True:
                now = loop.time()
                check_at = math.inf if self._check_at is None else self._check_at
                due = min(next_tick, check_at, self._quiet_since + heartbeat)
                if due > now:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(due - now):
                            await self._wake.wait()
                    continue
                if (now >= check_at or now >= self._quiet_since + heartbeat) and not await self._catch_up():
                    return
                now = loop.time()
                if now >= next_tick:
                    for watcher in tuple(self.watchers):
                        watcher.tick(now)
                    next_tick = now + interval
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("watch of %s failed", self.bucket)
            self._end(FeedEnd.FAILED)

    async def _catch_up(self) -> bool:
        """Read from the database whatever came after the last revision handed out; False if the feed ended."""
        self._check_at = None
        self._quiet_since = asyncio.get_running_loop().time()
        # Live events keep coming while the database answers: compare with what was handed out before the read.
        handed_out = self.order.last
        position = await database_sync_to_async(replay.bucket_position)(bucket=self.bucket)
        if position is None:
            self._end(FeedEnd.BUCKET_DELETED)
            return False
        if position.last_revision < handed_out:
            self._end(FeedEnd.BUCKET_RECREATED, position)
            return False
        batch = settings.KV_WATCH_REPLAY_BATCH
        through = position.last_revision
        while self.order.last < through:
            events = await database_sync_to_async(replay.change_events_after)(
                bucket=self.bucket, after=self.order.last, through=through, limit=batch
            )
            upto = events[-1]["revision"] if len(events) >= batch else through
            self._hand_out(self.order.settle(events=events, through=upto))
        if self.order.waiting:
            self._check_at = asyncio.get_running_loop().time() + settings.KV_WATCH_GAP_SECONDS
        return True
