"""The watch consumer every dialect's WebSocket extends: ``WatchConsumer``.

The storage core publishes every committed change to the bucket's channel-layer
group. A watcher authenticates at the handshake, joins its process' feed of the
bucket (``buckets.core.fanout``: one subscription per bucket per process, which
orders the events, fills gaps from the database and encodes each frame once),
and forwards the changes whose key matches the watcher's pattern, in revision
order and exactly once; it never writes. What a handshake needs is the subclass's
declaration (``access``, a ``kvsite.access.guard.Need``, as a REST view's), decided here
by ``guard.need_decide`` before anything else of the request is looked at; which bucket
a socket then watches, what is missing when it is gone and how a change is rendered are
the subclass's too (``watch_target``, ``target_missing``, ``frame_text``).

A watcher with ``?since=`` or ``?include=current`` first sends what it reads
from the database, then the feed's changes after that revision: it joins the
feed before reading, so nothing committed in between is missed, and drops
changes at or below what it has sent.

A watch follows its principal: on the feed's timer, once per heartbeat interval, the
consumer asks ``kvsite.access.revalidation.principal_revalidate`` (off the event loop)
whether the key or staff session it opened with still stands, and closes it with 4401 once
it does not (4403 if its permissions or scopes no longer allow the watch). A revocation
is thus seen within ``KV_API_KEY_CACHE_SECONDS`` plus one heartbeat interval.

Backpressure: the feed only appends changes to the watcher's bounded outbox; one
task per socket filters and writes them. A client that reads too slowly fills
the outbox and is closed with 4008 and the revision it has everything up to, so
it can resume with ``?since=``.
"""

import asyncio
import contextlib
import json
import logging
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.utils import await_many_dispatch
from django.conf import settings

from buckets.core import replay
from buckets.core.exceptions import DomainError, PermissionDenied, Unauthenticated, Unavailable
from buckets.core.fanout import (
    BucketFeed,
    Change,
    FeedBucketMissing,
    FeedEnd,
    FeedUnavailable,
    feed_join,
    tick_interval,
)
from buckets.watch.options import WatchOptions, key_matcher, query_value
from kvsite.access.apikeys import apikey_authenticate
from kvsite.access.authentication import principal_for_user
from kvsite.access.guard import Call, Need, Resource, need_decide
from kvsite.access.permissions import Principal
from kvsite.access.revalidation import Authenticated, principal_revalidate
from kvsite.access.tickets import ticket_redeem
from kvsite.http import metrics

logger = logging.getLogger(__name__)

CLOSE_INTERNAL = 1011
CLOSE_OVERFLOW = 4008
CLOSE_HEARTBEAT = 4408
CLOSE_OUT_OF_RANGE = 4410

# Queued in a watcher's outbox when a heartbeat is due.
_PING = object()


def close_code(status: int) -> int:
    """The close code for a refusal after accept: 4000 + the HTTP status (4401, 4403, 4404, ...)."""
    return 4000 + status


def error_frame(code: str, message: str, **details: object) -> dict:
    return {"type": "error", "code": code, "message": message, **details}


class _WatchEnded(Exception):
    """Ends a watch from inside the sending task: close with ``code`` after sending ``frame``."""

    def __init__(self, code: int, frame: dict) -> None:
        super().__init__(frame.get("message", ""))
        self.code = code
        self.frame = frame


class WatchConsumer(AsyncJsonWebsocketConsumer, ABC):
    """One watcher: authenticate, decide, join the bucket's feed, forward matching changes in order.

    Each consumer declares ``access``, what its handshake needs; ``tests/kvsite/access/test_guard.py``
    walks ``kvsite/routing.py`` and fails on a consumer without one.
    """

    access: ClassVar[Need]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bucket = ""
        self.options = WatchOptions(pattern=None, since=None, include_current=False)
        self.matches: Callable[[str], object] | None = None
        self.feed: BucketFeed | None = None
        # Changes (and _PING) the sending task has yet to take; at most KV_WATCH_QUEUE_SIZE changes.
        self.outbox: deque[Change | object] = deque()
        self.outbox_size = settings.KV_WATCH_QUEUE_SIZE
        # Set while the sending task waits for the outbox, with everything before sent.
        self.parked: asyncio.Future | None = None
        # The revision the client has every matching change up to (None: not a consistent view yet).
        self.reached: int | None = None
        self.last_sent = 0.0
        self.ping_queued = False
        self.ping_unanswered_since: float | None = None
        self.unreported = 0  # frames sent, not yet added to the delivered-events counter
        self.pump: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        # A close asked for before the handshake completed (the feed ended meanwhile).
        self.close_after_accept: tuple[int, dict] | None = None
        self.stop_requests: asyncio.Queue[dict] = asyncio.Queue()
        self.counted = False  # in the watchers-connected gauge
        # Who the watch is for, and the handshake decided for them; re-checked from recheck_at on.
        self.authenticated: Authenticated | None = None
        self.call: Call | None = None
        self.recheck_at = math.inf
        self.recheck: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer loop without a channel-layer channel per socket: changes come from the feed."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive, self.stop_requests.get], self.dispatch)

    # --- Handshake -----------------------------------------------------------------------

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        try:
            self.authenticated = await self._authenticate(query)
            self.call = self._call(self.authenticated.principal, query)
            # The resolver may read the database (which namespace owns a bucket).
            resource = await database_sync_to_async(self._decide)(self.call)
            self.bucket, self.options = self.watch_target(resource=resource, query=query)
            self.matches = key_matcher(self.options.pattern)
            # Join before reading the bucket's position: a change committed after the
            # read is then certain to arrive live.
            await self._join()
            position = await database_sync_to_async(replay.bucket_position)(bucket=self.bucket)
            if position is None:
                raise self.target_missing()
        except DomainError as error:
            self._leave()
            await self._refuse(error)
            return
        except BaseException:
            self._leave()
            raise
        await self.accept()
        metrics.WATCHERS.inc()
        self.counted = True
        self.last_sent = asyncio.get_running_loop().time()
        self.recheck_at = self.last_sent + self._recheck_interval()
        self.pump = asyncio.create_task(self._pump(position))
        if self.close_after_accept is not None:
            self._shutdown(*self.close_after_accept)

    def _call(self, principal: Principal, query: dict[str, list[str]]) -> Call:
        """What a resolver may read of the handshake, as ``kvsite.access.authentication.request_call`` for HTTP."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in self.scope.get("headers", []):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            # Repeated headers read as one, comma-joined, as Django reads them for a REST view.
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return Call(
            kwargs=dict(self.scope.get("url_route", {}).get("kwargs", {})),
            headers=headers,
            query={name: values[-1] for name, values in query.items()},
            principal=principal,
        )

    def _decide(self, call: Call) -> Resource:
        need = getattr(type(self), "access", None)
        if not isinstance(need, Need):
            raise PermissionDenied("this watch declares no access")
        return need_decide(need, call)

    @abstractmethod
    def watch_target(self, *, resource: Resource, query: dict[str, list[str]]) -> tuple[str, WatchOptions]:
        """The internal bucket to watch and the options, once ``access`` was decided on ``resource``.

        Only names the bucket (and checks the request's values: DomainError); access is decided already.
        """

    @abstractmethod
    def target_missing(self) -> DomainError:
        """The refusal when the watched bucket does not exist (or no longer does)."""

    async def _join(self) -> None:
        try:
            self.feed = await feed_join(bucket=self.bucket, watcher=self)
        except FeedUnavailable:
            raise Unavailable("change events are unavailable; try again shortly") from None
        except FeedBucketMissing:
            raise self.target_missing() from None

    async def _authenticate(self, query: dict[str, list[str]]) -> Authenticated:
        """Bearer header, then ticket, then a staff session; Unauthenticated if none."""
        headers = dict(self.scope.get("headers", []))
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("Authorization must be 'Bearer <token>'")
            return Authenticated(await database_sync_to_async(apikey_authenticate)(token=token.strip()))
        ticket = query_value(query, "ticket")
        if ticket:
            return await database_sync_to_async(ticket_redeem)(ticket=ticket)
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            if not user.is_staff:
                raise PermissionDenied("only staff users may watch with a session")
            return Authenticated(principal_for_user(user), session_key=self.scope["session"].session_key or "")
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

    # --- Client frames, and what the feed calls (FeedWatcher) -----------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Any frame from the client answers a ping (``{"type": "pong"}`` is the polite one).

        Changes only go to the client, so it has nothing large to say: a frame over
        4 KiB closes the socket with 1009 (message too big), so one connection makes
        the server take at most one large frame (up to uvicorn's --ws-max-size), not a stream.
        """
        limit = 4096
        if len(text_data if text_data is not None else bytes_data or b"") > limit:
            message = f"client frames are at most {limit} bytes (send only pongs)"
            self._shutdown(1009, error_frame("resource_exhausted", message))
            return
        self.ping_unanswered_since = None

    def offer(self, change: Change) -> None:
        """A live change from the feed: queue it for the sending task (a full outbox closes with 4008)."""
        if self.closer is not None:
            return
        parked = self.parked
        if parked is not None:
            if change.revision <= self.reached:
                return
            if self.matches is not None and not self.matches(change.key):
                # Nothing queued, nothing being sent: the client has every matching change through this one.
                self.reached = change.revision
                return
            self.parked = None
            parked.set_result(None)
        elif len(self.outbox) >= self.outbox_size:
            metrics.EVENTS_DROPPED.inc(len(self.outbox) + 1)
            self._shutdown(
                CLOSE_OVERFLOW,
                error_frame("resource_exhausted", "the watcher fell behind; reconnect with ?since=<revision>"),
            )
            return
        self.outbox.append(change)

    def tick(self, now: float) -> None:
        """The feed's timer: report sent frames, close a client that left a ping unanswered, ping an idle one."""
        if self.unreported:
            metrics.EVENTS_DELIVERED.inc(self.unreported)
            self.unreported = 0
        if self.pump is None or self.closer is not None:
            return
        if now >= self.recheck_at and self.recheck is None:
            self.recheck_at = now + self._recheck_interval()
            self.recheck = asyncio.create_task(self._recheck())
        unanswered = self.ping_unanswered_since
        if unanswered is not None and now - unanswered > settings.KV_WATCH_HEARTBEAT_TIMEOUT_SECONDS:
            self._shutdown(CLOSE_HEARTBEAT, error_frame("deadline_exceeded", "no answer to ping"))
        elif now - self.last_sent >= settings.KV_WATCH_HEARTBEAT_SECONDS and not self.ping_queued:
            # Counted from now, not from when it goes out: a client that stopped reading is closed too.
            if unanswered is None:
                self.ping_unanswered_since = now
            self.ping_queued = True
            self.outbox.append(_PING)
            if self.parked is not None:
                self.parked.set_result(None)
                self.parked = None

    def end(self, why: FeedEnd, position: replay.BucketPosition | None) -> None:
        """The feed stopped (the bucket was deleted or recreated, or reading failed)."""
        if why is FeedEnd.BUCKET_DELETED:
            self._shutdown(close_code(404), error_frame("not_found", "the bucket was deleted"))
        elif why is FeedEnd.BUCKET_RECREATED:
            self._shutdown(
                CLOSE_OUT_OF_RANGE,
                error_frame(
                    "out_of_range",
                    "the bucket was recreated; re-read it and watch from there",
                    oldest_revision=position.oldest_revision if position else None,
                    last_revision=position.last_revision if position else None,
                ),
            )
        else:
            self._shutdown(CLOSE_INTERNAL, error_frame("internal", "internal error"))

    async def watch_stop(self, message: dict) -> None:
        """Sent to ourselves when a close could not reach a client that stopped reading."""
        self._leave()
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        self._leave()

    def _leave(self) -> None:
        if self.counted:
            metrics.WATCHERS.dec()
            self.counted = False
        if self.unreported:
            metrics.EVENTS_DELIVERED.inc(self.unreported)
            self.unreported = 0
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
        if self.recheck is not None and self.recheck is not asyncio.current_task():
            self.recheck.cancel()
        if self.feed is not None:
            self.feed.leave(self)
            self.feed = None

    # --- Following the principal ---------------------------------------------------------

    @staticmethod
    def _recheck_interval() -> float:
        """Re-checks fall due this far apart: on ticks ``tick_interval()`` apart, they run a heartbeat apart at most."""
        return max(0.0, settings.KV_WATCH_HEARTBEAT_SECONDS - tick_interval())

    async def _recheck(self) -> None:
        """Close the watch once its principal no longer stands (4401) or may no longer watch this (4403)."""
        try:
            self.authenticated = await database_sync_to_async(self._revalidate)()
        except DomainError as error:
            self._shutdown(close_code(error.status), error_frame(error.code, error.message))
        except Exception:
            # Failing closed: the client reconnects (with since) and its handshake decides afresh.
            logger.exception("re-checking the principal of a watch of %s failed", self.bucket)
            self._shutdown(CLOSE_INTERNAL, error_frame("internal", "internal error"))
        finally:
            self.recheck = None

    def _revalidate(self) -> Authenticated:
        """The principal as it stands now; its access decided again if its permissions or scopes changed."""
        held, call = self.authenticated, self.call
        if held is None or call is None:
            raise Unauthenticated("not authenticated")
        principal = principal_revalidate(principal=held.principal, session_key=held.session_key)
        if principal != held.principal:
            self._decide(replace(call, principal=principal))
        return replace(held, principal=principal)

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
            self.reached = since
            await self._fill(through=last)
        else:
            if self.options.include_current:
                await self._send_current(through=last)
                await self._send({"type": "ready", "revision": last})
            self.reached = last

    async def _send_current(self, *, through: int) -> None:
        after = 0
        batch = settings.KV_WATCH_REPLAY_BATCH
        while True:
            events = await database_sync_to_async(replay.current_events)(
                bucket=self.bucket, through=through, after=after, pattern=self.options.pattern, limit=batch
            )
            for event in events:
                await self._send_change(Change(event))
            if len(events) < batch:
                return
            after = events[-1]["revision"]

    async def _fill(self, *, through: int) -> None:
        """Send every kept matching change after ``reached`` up to ``through``, read from the database."""
        batch = settings.KV_WATCH_REPLAY_BATCH
        while self.reached < through:
            events = await database_sync_to_async(replay.change_events_after)(
                bucket=self.bucket, after=self.reached, through=through, pattern=self.options.pattern, limit=batch
            )
            for event in events:
                await self._send_change(Change(event))
                self.reached = event["revision"]
            self.reached = events[-1]["revision"] if len(events) >= batch else through

    async def _follow(self) -> None:
        """Send the feed's changes, in the order they came, from the outbox; wait when it is empty."""
        loop = asyncio.get_running_loop()
        outbox = self.outbox
        while True:
            while outbox:
                change = outbox.popleft()
                if change is _PING:
                    self.ping_queued = False
                    await self._send({"type": "ping"})
                    continue
                if change.revision <= self.reached:
                    continue  # sent by the replay already
                if self.matches is None or self.matches(change.key):
                    await self._send_change(change)
                self.reached = change.revision
            self.parked = loop.create_future()
            await self.parked

    @abstractmethod
    def frame_text(self, change: Change) -> str:
        """The text frame for a change; ``change.text(render)`` renders it once for every watcher in this process."""

    async def _send_change(self, change: Change) -> None:
        await self.send(text_data=self.frame_text(change))
        self.last_sent = asyncio.get_running_loop().time()
        self.unreported += 1

    async def _send(self, frame: dict) -> None:
        await self.send_json(frame)
        self.last_sent = asyncio.get_running_loop().time()

    # --- Closing -------------------------------------------------------------------------

    def _shutdown(self, code: int, frame: dict) -> None:
        if self.pump is None:
            # Not accepted yet: frames and a close code can only follow the accept.
            self.close_after_accept = self.close_after_accept or (code, frame)
        elif self.closer is None:
            self.closer = asyncio.create_task(self._close_with(code, frame))

    async def _close_with(self, code: int, frame: dict) -> None:
        if self.pump is not None:
            self.pump.cancel()
            # Wait for the sending task to stop, so `reached` no longer moves.
            await asyncio.gather(self.pump, return_exceptions=True)
        if code == CLOSE_OVERFLOW and self.reached is not None:
            frame = {**frame, "revision": self.reached}
        try:
            async with asyncio.timeout(settings.KV_WATCH_CLOSE_TIMEOUT_SECONDS):
                await self.send_json(frame)
                await self.close(code=code)
        except TimeoutError:
            # The client stopped reading, so the close frame cannot go out: end the
            # consumer instead and let the server drop the connection.
            self.stop_requests.put_nowait({"type": "watch.stop"})
        except OSError:
            pass  # already gone
