"""WSGI entry point, for serving the HTTP API from sync workers (gunicorn)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvsite.settings")
application = get_wsgi_application()
