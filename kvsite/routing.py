"""WebSocket routes (filled by the watch feature)."""

websocket_urlpatterns: list = []
