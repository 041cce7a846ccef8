"""WebSocket routes."""

from django.urls import path

from buckets.configs.consumers import ConfigWatchConsumer
from buckets.kv.consumers import KeyWatchConsumer

websocket_urlpatterns = [
    path("api/v1/kv/buckets/<str:bucket>/watch", KeyWatchConsumer.as_asgi(), name="kv-watch"),
    path("api/v1/config/<path:name>/watch", ConfigWatchConsumer.as_asgi(), name="config-watch"),
]
