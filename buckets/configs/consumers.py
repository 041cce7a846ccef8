"""Live watch of one config document: ``/api/v1/config/{name}/watch``.

The shared watch protocol (``buckets.watch``: authentication, the shared feed with
its ordering and gap filling, ``since``, heartbeats, bounded queues) on the document's
``SYS_config_<env>`` bucket, narrowed to the document's key, with each change
rendered as the config API renders documents. The handshake needs ``config:read`` on
``config:<environment>``, the resource the config API's routes name.
"""

import base64
import json

from buckets.configs import services as configs
from buckets.configs.inputs import config_resource
from buckets.core.exceptions import DomainError, NotFound
from buckets.core.fanout import Change
from buckets.core.keys import validate_key
from buckets.watch.consumer import WatchConsumer
from buckets.watch.options import WatchOptions, watch_options
from kvsite.access.guard import Need, Resource
from kvsite.access.permissions import CONFIG_READ


def config_frame(event: dict) -> dict:
    """A ``kv_update`` of a config bucket as a ``config_update`` (``data`` None after a delete)."""
    data = json.loads(base64.b64decode(event["value"])) if event["operation"] == "put" else None
    return {
        "type": "config_update",
        "name": event["key"],
        "data": data,
        "revision": event["revision"],
        "updatedAt": event["created_at"],
    }


class ConfigWatchConsumer(WatchConsumer):
    """One watcher of one config document (environment: ``?environment=`` or the Ironflow header)."""

    # The REST routes' resolver: one reading of the environment (header or query) for both front doors.
    access = Need(CONFIG_READ, resource=config_resource)

    def watch_target(self, *, resource: Resource, query: dict[str, list[str]]) -> tuple[str, WatchOptions]:
        name = validate_key(self.scope["url_route"]["kwargs"]["name"])
        bucket = configs.config_bucket(resource.name)
        # The document's name is a literal key pattern: only its changes pass.
        return bucket, watch_options(query={**query, "key": [name]})

    def target_missing(self) -> DomainError:
        return NotFound("this environment has no config documents yet")

    def frame_text(self, change: Change) -> str:
        # Rendered once per change and process, like the bucket watch's frames.
        return change.text(config_frame)
