"""Live watch of a bucket over WebSocket: ``/api/v1/kv/buckets/{bucket}/watch``.

The shared watch protocol (``buckets.watch``) on the user bucket the path names,
sending the core's ``kv_update`` events as they are. The handshake needs what a read
of the bucket needs (``buckets.kv.access``: the bucket, or the namespace that owns it).
"""

from buckets.core.exceptions import BucketNotFound, DomainError
from buckets.core.fanout import Change
from buckets.kv import services as kv
from buckets.kv.access import bucket_named
from buckets.watch.consumer import WatchConsumer
from buckets.watch.options import WatchOptions, watch_options
from kvsite.access.guard import Need, Resource
from kvsite.access.permissions import ENTRY_READ


class KeyWatchConsumer(WatchConsumer):
    """One watcher of a bucket's keys (all of them, or those matching ``?key=``)."""

    access = Need(ENTRY_READ, resource=bucket_named)

    def watch_target(self, *, resource: Resource, query: dict[str, list[str]]) -> tuple[str, WatchOptions]:
        return kv.bucket_for_reads(name=self.scope["url_route"]["kwargs"]["bucket"]), watch_options(query=query)

    def target_missing(self) -> DomainError:
        return BucketNotFound(self.scope["url_route"]["kwargs"]["bucket"])

    def frame_text(self, change: Change) -> str:
        return change.text()
