"""``GET /metrics``: Prometheus text format, for admins (or anyone, if KV_METRICS_PUBLIC)."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from kvsite.access.authentication import IsPrincipal
from kvsite.access.permissions import METRICS_READ
from kvsite.http.metrics import render_metrics


class MetricsApi(APIView):
    def get_permissions(self):
        # Scrapers inside a private network may be allowed without a key; the default is admins only.
        return [AllowAny()] if settings.KV_METRICS_PUBLIC else [IsPrincipal()]

    @extend_schema(operation_id="metrics", responses={(200, "text/plain"): str})
    def get(self, request: Request) -> HttpResponse:
        if not settings.KV_METRICS_PUBLIC:
            request.user.require(METRICS_READ)
        body, content_type = render_metrics()
        return HttpResponse(body, content_type=content_type)
