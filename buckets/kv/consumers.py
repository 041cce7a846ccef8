"""Live watch of a bucket over WebSocket: ``/api/v1/kv/buckets/{bucket}/watch``.

The shared watch protocol (``buckets.watch``) on the user bucket the path names,
sending the core's ``kv_update`` events as they are.
"""

from buckets.core.exceptions import BucketNotFound, DomainError
from buckets.core.fanout import Change
from buckets.core.names import app_bucket
from buckets.watch.consumer import WatchConsumer
from buckets.watch.options import WatchOptions, watch_options
from kvsite.access.permissions import ENTRY_READ, Principal


class KeyWatchConsumer(WatchConsumer):
    """One watcher of a bucket's keys (all of them, or those matching ``?key=``)."""

    def watch_target(self, *, principal: Principal, query: dict[str, list[str]]) -> tuple[str, WatchOptions]:
        name = self.scope["url_route"]["kwargs"]["bucket"]
        principal.require(ENTRY_READ, bucket=name)
        return app_bucket(name), watch_options(query=query)

    def target_missing(self) -> DomainError:
        return BucketNotFound(self.scope["url_route"]["kwargs"]["bucket"])

    def frame_text(self, change: Change) -> str:
        return change.text()
