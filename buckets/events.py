"""Change events: published to the bucket's channel-layer group after commit.

Publishing from ``transaction.on_commit`` means a rolled-back write announces
nothing, and a watcher that sees revision N can read it at once. A failed
publish (Redis down) never fails the write that has already committed.
"""

import base64
import logging
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from buckets.names import SYS_SECRETS_PREFIX

logger = logging.getLogger(__name__)


def bucket_group(bucket_name: str) -> str:
    """Channel-layer group of a bucket (internal name: ASCII, well under 100 chars)."""
    return f"kv.{bucket_name}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def change_event(*, bucket: str, key: str, value: bytes, revision: int, operation: str, created_at: datetime) -> dict:
    """The ``kv_update`` event; ``bucket`` is the name clients know (unprefixed for APP_).

    Secret buckets' events never carry the value: even sealed, it has no business
    on the channel layer.
    """
    carries_value = operation == "put" and not bucket.startswith(SYS_SECRETS_PREFIX)
    return {
        "type": "kv_update",
        "bucket": bucket,
        "key": key,
        "value": base64.b64encode(value).decode() if carries_value else "",
        "revision": revision,
        "operation": operation,
        "created_at": rfc3339(created_at),
    }


def publish(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        # The write is durable already; watchers detect the gap through `since`.
        logger.exception("publishing %s revision %s to %s failed", event.get("type"), event.get("revision"), group)


def publish_on_commit(group: str, event: dict) -> None:
    transaction.on_commit(lambda: publish(group, event))
