"""WebSocket routes."""

from django.urls import path

from buckets.watch import KeyWatchConsumer

websocket_urlpatterns = [
    path("api/v1/kv/buckets/<str:bucket>/watch", KeyWatchConsumer.as_asgi(), name="kv-watch"),
]
