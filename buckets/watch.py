"""Live watch of a bucket over WebSocket: ``/api/v1/kv/buckets/{bucket}/watch``.

The storage core publishes every committed change to the bucket's channel-layer
group. This consumer authenticates at the handshake, subscribes, and forwards
the changes whose key matches the watcher's pattern, in revision order and
exactly once; it never writes.

Why ordering needs work here: events are published after commit from whichever
thread or process wrote, so revision 6 can arrive before 5, and a channel layer
may drop a message. Revisions are gapless per bucket and the consumer sees every
event of the bucket (it filters by key itself), so anything but "last + 1" is a
gap: events ahead are held back for ``KV_WATCH_GAP_SECONDS`` (the missing one is
usually just late), then the missing range is read from the database
(``buckets.replay``). An idle watcher also looks at the bucket's last revision
before each heartbeat, so a lost final event is found without a later write.

Backpressure: the channel-layer handler only puts events on a bounded queue; a
single task orders, filters and writes them. A client that reads too slowly
fills the queue and is closed with 4008 and the revision it has everything up
to, so it can resume with ``?since=``.
"""

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from buckets import replay
from buckets.events import bucket_group
from buckets.exceptions import BucketNotFound
from buckets.names import app_bucket
from buckets.wildcards import KeyPattern, compile_pattern
from kvsite import metrics
from kvsite.apikeys import apikey_authenticate
from kvsite.authentication import principal_for_user
from kvsite.errors import DomainError, InvalidArgument, PermissionDenied, Unauthenticated, Unavailable
from kvsite.permissions import ENTRY_READ, Principal
from kvsite.tickets import ticket_redeem

logger = logging.getLogger(__name__)

CLOSE_INTERNAL = 1011
CLOSE_OVERFLOW = 4008
CLOSE_HEARTBEAT = 4408
CLOSE_OUT_OF_RANGE = 4410

_REVISION_RE = re.compile(r"^[0-9]{1,18}$")


def close_code(status: int) -> int:
    """The close code for a refusal after accept: 4000 + the HTTP status (4401, 4403, 4404, ...)."""
    return 4000 + status


def error_frame(code: str, message: str, **details: object) -> dict:
    return {"type": "error", "code": code, "message": message, **details}


@dataclass(frozen=True)
class WatchOptions:
    pattern: KeyPattern | None
    since: int | None
    include_current: bool


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def watch_options(*, query: dict[str, list[str]]) -> WatchOptions:
    """Parse ``?key=&since=&include=`` (InvalidArgument on nonsense)."""
    key = _single(query, "key")
    since_raw = _single(query, "since")
    include = _single(query, "include") or ""
    if since_raw is not None and not _REVISION_RE.match(since_raw):
        raise InvalidArgument("since must be a revision (a non-negative integer)")
    if include not in ("", "current"):
        raise InvalidArgument("include must be 'current'")
    since = int(since_raw) if since_raw is not None else None
    if since is not None and include:
        raise InvalidArgument("since and include=current exclude each other")
    return WatchOptions(
        pattern=compile_pattern(key) if key else None, since=since, include_current=include == "current"
    )


class RevisionOrder:
    """Puts one bucket's events back into revision order.

    Every revision at or below ``last`` has been dealt with: delivered, or known
    not to be kept any more. An event above ``last + 1`` waits until the ones
    before it arrive, or until ``settle`` says what the database holds.
    """

    def __init__(self, *, last: int) -> None:
        self.last = last
        self._ahead: dict[int, dict] = {}

    @property
    def waiting(self) -> int:
        """How many events are held back behind a gap."""
        return len(self._ahead)

    def offer(self, event: dict) -> list[dict]:
        """Take one live event; return the events now deliverable, in order (duplicates vanish)."""
        revision = event["revision"]
        if revision <= self.last:
            return []
        self._ahead[revision] = event
        return self._release()

    def settle(self, *, events: list[dict], through: int) -> list[dict]:
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

    def _release(self) -> list[dict]:
        ready = []
        while self.last + 1 in self._ahead:
            self.last += 1
            ready.append(self._ahead.pop(self.last))
        return ready


class _WatchEnded(Exception):
    """Ends a watch from inside the sending task: close with ``code`` after sending ``frame``."""

    def __init__(self, code: int, frame: dict) -> None:
        super().__init__(frame.get("message", ""))
        self.code = code
        self.frame = frame


class KeyWatchConsumer(AsyncJsonWebsocketConsumer):
    """One watcher: authenticate, subscribe to the bucket's group, forward matching changes in order."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bucket = ""
        self.group: str | None = None
        self.options = WatchOptions(pattern=None, since=None, include_current=False)
        self.inbox: asyncio.Queue[dict] = asyncio.Queue(maxsize=settings.KV_WATCH_QUEUE_SIZE)
        self.order = RevisionOrder(last=0)
        # The revision the client has every matching change up to (None: not a consistent view yet).
        self.reached: int | None = None
        self.check_at: float | None = None
        self.last_sent = 0.0
        self.ping_unanswered_since: float | None = None
        self.pump: asyncio.Task | None = None
        self.keeper: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        self.counted = False  # in the watchers-connected gauge

    # --- Handshake -----------------------------------------------------------------------

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            principal = await self._authenticate(query)
            self.bucket, self.options = self.watch_target(principal=principal, query=query)
            # Subscribe before reading the bucket's position: a change committed after
            # the read is then certain to arrive live.
            await self._subscribe(bucket_group(self.bucket))
            position = await database_sync_to_async(replay.bucket_position)(bucket=self.bucket)
            if position is None:
                raise self.target_missing()
        except DomainError as error:
            await self._leave()
            await self._refuse(error)
            return
        await self.accept()
        metrics.WATCHERS.inc()
        self.counted = True
        self.last_sent = asyncio.get_running_loop().time()
        self.pump = asyncio.create_task(self._pump(position))
        self.keeper = asyncio.create_task(self._keep_alive())

    def watch_target(self, *, principal: Principal, query: dict[str, list[str]]) -> tuple[str, WatchOptions]:
        """The internal bucket to watch and the options, once ``principal`` may read it."""
        name = self.scope["url_route"]["kwargs"]["bucket"]
        principal.require(ENTRY_READ, bucket=name)
        return app_bucket(name), watch_options(query=query)

    def target_missing(self) -> DomainError:
        return BucketNotFound(self.scope["url_route"]["kwargs"]["bucket"])

    async def _subscribe(self, group: str) -> None:
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.exception("subscribing to %s failed", group)
            raise Unavailable("change events are unavailable; try again shortly") from None
        self.group = group

    async def _authenticate(self, query: dict[str, list[str]]) -> Principal:
        """Bearer header, then ticket, then a staff session; Unauthenticated if none."""
        headers = dict(self.scope.get("headers", []))
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("Authorization must be 'Bearer <token>'")
            return await database_sync_to_async(apikey_authenticate)(token=token.strip())
        ticket = _single(query, "ticket")
        if ticket:
            return await database_sync_to_async(ticket_redeem)(ticket=ticket)
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            if not user.is_staff:
                raise PermissionDenied("only staff users may watch with a session")
            return principal_for_user(user)
        raise Unauthenticated("send 'Authorization: Bearer <token>', a staff session cookie, or ?ticket=")

    async def _refuse(self, error: DomainError) -> None:
        """Deny the handshake with the error's HTTP status, or, where the server cannot, accept and close 44xx."""
        if "websocket.http.response" in (self.scope.get("extensions") or {}):
            body = json.dumps({"error": error.message, "code": error.code}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if error.status == 401:
                headers.append((b"www-authenticate", b'Bearer realm="kvsite"'))
            await self.base_send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
            await self.base_send({"type": "websocket.http.response.body", "body": body})
            return
        await self.accept()
        await self.send_json(error_frame(error.code, error.message))
        await self.close(code=close_code(error.status))

    # --- Client frames and channel-layer events ------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Any frame from the client answers a ping (``{"type": "pong"}`` is the polite one)."""
        self.ping_unanswered_since = None

    async def dispatch(self, message: dict) -> None:
        if message["type"] == "kv_update":
            # The hot path: Channels' dispatch would hop to a thread per message to
            # close stale DB connections, and this handler never touches the database.
            self._enqueue(message)
            return
        await super().dispatch(message)

    def _enqueue(self, event: dict) -> None:
        if self.closer is not None:
            return
        try:
            self.inbox.put_nowait(event)
        except asyncio.QueueFull:
            metrics.EVENTS_DROPPED.inc(self.inbox.qsize() + 1)
            self._shutdown(
                CLOSE_OVERFLOW,
                error_frame("resource_exhausted", "the watcher fell behind; reconnect with ?since=<revision>"),
            )

    async def watch_stop(self, message: dict) -> None:
        """Sent to ourselves when a close could not reach a client that stopped reading."""
        await self._leave()
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if self.counted:
            metrics.WATCHERS.dec()
            self.counted = False
        current = asyncio.current_task()
        for task in (self.pump, self.keeper):
            if task is not None and task is not current:
                task.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    # --- The sending task ----------------------------------------------------------------

    async def _pump(self, position: replay.BucketPosition) -> None:
        try:
            await self._start(position)
            await self._follow()
        except _WatchEnded as end:
            self._shutdown(end.code, end.frame)
        except OSError:
            pass  # the client went away; its disconnect message cleans up
        except Exception:
            logger.exception("watch of %s failed", self.bucket)
            self._shutdown(CLOSE_INTERNAL, error_frame("internal", "internal error"))

    async def _start(self, position: replay.BucketPosition) -> None:
        """Replay (``since``) or send the current values (``include=current``), then go live from there."""
        last = position.last_revision
        since = self.options.since
        if since is not None:
            if since > last or since + 1 < position.oldest_revision:
                raise _WatchEnded(
                    CLOSE_OUT_OF_RANGE,
                    error_frame(
                        "out_of_range",
                        f"revisions after {since} are no longer kept; re-read the bucket and watch from there",
                        oldest_revision=position.oldest_revision,
                        last_revision=last,
                    ),
                )
            self.order = RevisionOrder(last=since)
            self.reached = since
            await self._fill(through=last)
        else:
            if self.options.include_current:
                await self._send_current(through=last)
                await self._send({"type": "ready", "revision": last})
            self.order = RevisionOrder(last=last)
            self.reached = last

    async def _send_current(self, *, through: int) -> None:
        after = 0
        batch = settings.KV_WATCH_REPLAY_BATCH
        while True:
            events = await database_sync_to_async(replay.current_events)(
                bucket=self.bucket, through=through, after=after, pattern=self.options.pattern, limit=batch
            )
            for event in events:
                await self._send(event)
            if len(events) < batch:
                return
            after = events[-1]["revision"]

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat = settings.KV_WATCH_HEARTBEAT_SECONDS
        while True:
            try:
                event = self.inbox.get_nowait()
            except asyncio.QueueEmpty:
                event = await self._next_event(loop, heartbeat)
            if event is not None:
                for ready in self.order.offer(event):
                    await self._deliver(ready)
                if not self.order.waiting:
                    # A gap the late event closed needs no database read.
                    self.check_at = None
                elif self.order.waiting >= self.inbox.maxsize:
                    # Held back as much as the queue may hold: stop waiting, read the gap now.
                    self.check_at = loop.time()
                elif self.check_at is None:
                    self.check_at = loop.time() + settings.KV_WATCH_GAP_SECONDS
            now = loop.time()
            if self.check_at is not None and now >= self.check_at:
                await self._catch_up()
            elif event is None and now - self.last_sent >= heartbeat:
                # Idle: a lost final event would otherwise wait for the next write to show.
                await self._catch_up()
                if loop.time() - self.last_sent >= heartbeat:
                    if self.ping_unanswered_since is None:
                        self.ping_unanswered_since = loop.time()
                    await self._send({"type": "ping"})

    async def _next_event(self, loop: asyncio.AbstractEventLoop, heartbeat: float) -> dict | None:
        """The next queued event, or None when a check or a heartbeat is due first."""
        due = self.last_sent + heartbeat
        if self.check_at is not None:
            due = min(due, self.check_at)
        try:
            async with asyncio.timeout(max(0.0, due - loop.time())):
                return await self.inbox.get()
        except TimeoutError:
            return None

    async def _catch_up(self) -> None:
        """Read from the database whatever came after the last revision dealt with."""
        self.check_at = None
        position = await database_sync_to_async(replay.bucket_position)(bucket=self.bucket)
        if position is None:
            raise _WatchEnded(close_code(404), error_frame("not_found", "the bucket was deleted"))
        if position.last_revision < self.order.last:
            raise _WatchEnded(
                CLOSE_OUT_OF_RANGE,
                error_frame(
                    "out_of_range",
                    "the bucket was recreated; re-read it and watch from there",
                    oldest_revision=position.oldest_revision,
                    last_revision=position.last_revision,
                ),
            )
        await self._fill(through=position.last_revision)
        if self.order.waiting:
            self.check_at = asyncio.get_running_loop().time() + settings.KV_WATCH_GAP_SECONDS

    async def _fill(self, *, through: int) -> None:
        """Deliver every kept change after ``order.last`` up to ``through``, merged with held-back events."""
        batch = settings.KV_WATCH_REPLAY_BATCH
        while self.order.last < through:
            events = await database_sync_to_async(replay.change_events_after)(
                bucket=self.bucket, after=self.order.last, through=through, pattern=self.options.pattern, limit=batch
            )
            upto = events[-1]["revision"] if len(events) >= batch else through
            for event in self.order.settle(events=events, through=upto):
                await self._deliver(event)
            self.reached = self.order.last

    async def _deliver(self, event: dict) -> None:
        pattern = self.options.pattern
        if pattern is None or pattern.matches(event["key"]):
            await self._send(event)
            metrics.EVENTS_DELIVERED.inc()
        self.reached = event["revision"]

    async def _send(self, frame: dict) -> None:
        await self.send_json(frame)
        self.last_sent = asyncio.get_running_loop().time()

    # --- Liveness and closing ------------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Close a client that leaves a ping unanswered (the sending task may be stuck writing to it)."""
        timeout = settings.KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS
        tick = max(0.05, min(timeout, settings.KV_WATCH_HEARTBEAT_SECONDS) / 2)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            unanswered = self.ping_unanswered_since
            if unanswered is not None and loop.time() - unanswered > timeout:
                self._shutdown(CLOSE_HEARTBEAT, error_frame("deadline_exceeded", "no answer to ping"))
                return

    def _shutdown(self, code: int, frame: dict) -> None:
        if self.closer is None:
            self.closer = asyncio.create_task(self._close_with(code, frame))

    async def _close_with(self, code: int, frame: dict) -> None:
        tasks = [task for task in (self.pump, self.keeper) if task is not None]
        for task in tasks:
            task.cancel()
        # Wait for the sending task to stop, so `reached` no longer moves.
        await asyncio.gather(*tasks, return_exceptions=True)
        if code == CLOSE_OVERFLOW and self.reached is not None:
            frame = {**frame, "revision": self.reached}
        try:
            async with asyncio.timeout(settings.KV_WATCH_CLOSE_TIMEOUT_SECONDS):
                await self.send_json(frame)
                await self.close(code=code)
        except TimeoutError:
            # The client stopped reading, so the close frame cannot go out: end the
            # consumer instead and let the server drop the connection.
            await self.channel_layer.send(self.channel_name, {"type": "watch.stop"})
        except OSError:
            pass  # already gone
