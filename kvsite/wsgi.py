"""WSGI entry point, for serving the HTTP API from WSGI servers (granian, gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvsite.settings")
django_wsgi_app = get_wsgi_application()

from kvsite.http.bodies import WsgiBodyGuard  # noqa: E402  (needs the app registry)
from kvsite.http.paths import WsgiPathBytes  # noqa: E402

# Every request body is read whole and checked before Django sees the request; the path's
# bytes are kept, since Django replaces PATH_INFO with its own reading of them.
application = WsgiPathBytes(WsgiBodyGuard(django_wsgi_app))
