"""Change events: published to the bucket's channel-layer group after commit.

Publishing from ``transaction.on_commit`` means a rolled-back write announces
nothing, and a watcher that sees revision N can read it at once. A failed
publish (Redis down) never fails the write that has already committed.
"""

import asyncio
import base64
import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypedDict, TypeGuard

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def bucket_group(bucket_name: str) -> str:
    """Channel-layer group of a bucket (internal name: ASCII, well under 100 chars)."""
    return f"kv.{bucket_name}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class ChangeEvent(TypedDict):
    """A ``kv_update`` event as the core publishes it and the watch replays it."""

    type: Literal["kv_update"]
    bucket: str
    key: str
    value: str  # base64 of the value; "" for markers and sealed buckets
    revision: int
    operation: str
    created_at: str  # RFC 3339, UTC


def is_change_event(message: Mapping[str, object]) -> TypeGuard[ChangeEvent]:
    """Whether a channel-layer message is a ``kv_update``: only ``change_event`` builds those."""
    return message.get("type") == "kv_update"


def change_event(
    *, bucket: str, key: str, value: bytes, revision: int, operation: str, created_at: datetime, sealed: bool
) -> ChangeEvent:
    """The ``kv_update`` event; ``bucket`` is the name clients know (unprefixed for APP_).

    A sealed bucket's events never carry the value (``Bucket.sealed``): even sealed,
    it has no business on the channel layer.
    """
    carries_value = operation == "put" and not sealed
    return {
        "type": "kv_update",
        "bucket": bucket,
        "key": key,
        "value": base64.b64encode(value).decode() if carries_value else "",
        "revision": revision,
        "operation": operation,
        "created_at": rfc3339(created_at),
    }


_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _publisher() -> asyncio.AbstractEventLoop:
    """This process's event loop for publishing, started on first use in a daemon thread.

    ``async_to_sync`` from a WSGI worker starts a loop and a thread for every call,
    and the Redis layer then a connection per loop: ~5 ms of CPU per write. One
    long-lived loop keeps one connection and costs a thread hand-off.
    """
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="kv-events", daemon=True).start()
            _publisher_loop = loop
        return _publisher_loop


def publish(group: str, event: ChangeEvent) -> None:
    """Send ``event`` to ``group``; through Redis without waiting (watchers reorder and fill gaps)."""
    publish_many(group, [event])


def publish_many(group: str, events: list[ChangeEvent]) -> None:
    """Send ``events`` to ``group`` in order, in one hop into this process's publishing loop.

    Every write publishes through here (one event, or a bulk write's batch), so all
    of them share the long-lived loop and its one connection. A failed send is
    logged and skipped: the writes are durable already, and watchers detect the gap.
    """
    layer = get_channel_layer()
    if layer is None or not events:
        return

    async def send_all() -> None:
        for event in events:
            try:
                await layer.group_send(group, event)
            except Exception:
                logger.exception(
                    "publishing %s revision %s to %s failed", event.get("type"), event.get("revision"), group
                )

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the ASGI server's loop, which async_to_sync finds (development only).
            async_to_sync(send_all)()
            return
        asyncio.run_coroutine_threadsafe(send_all(), _publisher())
    except Exception:
        logger.exception("publishing %d events to %s failed", len(events), group)


def publish_on_commit(group: str, event: ChangeEvent) -> None:
    transaction.on_commit(lambda: publish(group, event))
