"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvsite.settings")
# Pooled database connections under ASGI (see DATABASES in settings); WSGI workers keep theirs.
os.environ.setdefault("KV_DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddleware  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware  # noqa: E402

from kvsite.http.bodies import AsgiBodyGuard  # noqa: E402
from kvsite.routing import websocket_urlpatterns  # noqa: E402
from kvsite.websocket_origin import browser_origin_validator  # noqa: E402


class WebsocketSessionMiddleware(SessionMiddleware):
    """Channels' session middleware, minus its wrapper around every message sent.

    The wrapper saves a modified session on ``http.response.start`` only, so on a
    WebSocket it never does anything, yet it costs a lazy-session lookup per
    frame: ~8% of a server's CPU when it fans out thousands of watch frames a second.
    """

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def websocket_auth_stack(inner):
    """Channels' ``AuthMiddlewareStack`` (cookie, session, user in the scope) with ``WebsocketSessionMiddleware``."""
    return CookieMiddleware(WebsocketSessionMiddleware(AuthMiddleware(inner)))


def http_application():
    """Django's HTTP side: its WSGI handler on a pool of threads when Redis carries the events.

    Django's ASGI handler runs every synchronous view and middleware on one thread per
    process (``sync_to_async(thread_sensitive=True)``), so an ASGI worker serves one
    request at a time and pays an event-loop hop on each; the WSGI handler on
    ``KV_HTTP_THREADS`` threads (a2wsgi) serves several (the README's "Serving choice"
    gives the figures, measured under uvicorn x2). Without ``REDIS_URL`` (development) the
    in-memory channel layer's queues belong to the server's event loop, which only
    Django's ASGI handler lets a view's ``async_to_sync`` reach, so it stays.
    """
    if not settings.REDIS_URL:
        return django_asgi_app
    from a2wsgi import WSGIMiddleware
    from django.core.wsgi import get_wsgi_application

    return WSGIMiddleware(get_wsgi_application(), workers=settings.KV_HTTP_THREADS)


application = ProtocolTypeRouter(
    {
        # Every request body is read whole and checked before Django sees the request.
        "http": AsgiBodyGuard(http_application()),
        "websocket": browser_origin_validator(websocket_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)
