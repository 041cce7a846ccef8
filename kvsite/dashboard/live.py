"""Where the pages' live updates come from.

Bucket pages use the key watch socket (``/api/v1/kv/buckets/{bucket}/watch``),
which accepts the staff session cookie. Config documents live in
``SYS_config_<env>`` buckets, which that socket does not serve (it only builds
``APP_`` names); when a config watch route is registered (named
``config-watch``), the document page uses it, and otherwise it polls the
document's revision.
"""

from urllib.parse import quote, urlencode

from kvsite.routing import websocket_urlpatterns

CONFIG_WATCH_ROUTE = "config-watch"


def config_watch_url(*, environment: str, name: str) -> str | None:
    """The path of the config watch socket for one document, or None if the server has none."""
    for pattern in websocket_urlpatterns:
        if getattr(pattern, "name", None) == CONFIG_WATCH_ROUTE:
            route = str(pattern.pattern)
            for placeholder in ("<path:name>", "<str:name>", "<name>"):
                route = route.replace(placeholder, quote(name, safe="/"))
            return f"/{route.lstrip('^')}?{urlencode({'environment': environment})}"
    return None
