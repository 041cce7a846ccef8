"""``GET /metrics``: Prometheus text format, for ``metrics:read`` (or anyone, if KV_METRICS_PUBLIC)."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request

from kvsite.access.guard import METRICS, Need, whole
from kvsite.access.guarded import GuardedApi
from kvsite.access.permissions import METRICS_READ
from kvsite.http.metrics import render_metrics


class MetricsApi(GuardedApi):
    access = {"GET": Need(METRICS_READ, resource=whole(METRICS))}

    def get_permissions(self) -> list[BasePermission]:
        # Scrapers inside a private network may be allowed without a key; by default the declaration decides.
        return [AllowAny()] if settings.KV_METRICS_PUBLIC else super().get_permissions()

    @extend_schema(operation_id="metrics", responses={(200, "text/plain"): str})
    def get(self, request: Request) -> HttpResponse:
        """Prometheus text. Needs metrics:read (a scoped key: the scope metrics), unless KV_METRICS_PUBLIC."""
        body, content_type = render_metrics()
        return HttpResponse(body, content_type=content_type)
