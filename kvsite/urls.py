from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.negotiation import DefaultContentNegotiation

from kvsite.access.apikeys_api import ApiKeyListCreateApi, ApiKeyRevokeApi
from kvsite.access.audit_api import AuditListApi
from kvsite.access.tickets_api import WsTicketCreateApi
from kvsite.http import errors, health
from kvsite.http.metrics_api import MetricsApi

# The key and item routes come first: Django tries patterns in order, and every include
# that fails to match costs a request its share of the resolver's bookkeeping.
urlpatterns = [
    path("api/v1/kv/", include("buckets.kv.urls")),
    path("kv/", include("buckets.items.urls")),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    # The schema comes as YAML or JSON, so it negotiates (the API default answers JSON only).
    path(
        "api/v1/schema", SpectacularAPIView.as_view(content_negotiation_class=DefaultContentNegotiation), name="schema"
    ),
    path(
        "api/v1/kv/swagger-ui",
        SpectacularSwaggerView.as_view(url_name="schema", content_negotiation_class=DefaultContentNegotiation),
        name="swagger-ui",
    ),
    path("api/v1/kv/", include("buckets.namespaces.urls")),
    path("api/v1/", include("buckets.configs.urls")),
    path("api/v1/", include("secrets_app.urls")),
    path("api/v1/audit", AuditListApi.as_view(), name="audit"),
    path("api/v1/ws-ticket", WsTicketCreateApi.as_view(), name="ws-ticket"),
    path("api/v1/apikeys", ApiKeyListCreateApi.as_view(), name="apikeys"),
    path("api/v1/apikeys/<int:key_id>", ApiKeyRevokeApi.as_view(), name="apikey"),
    # csrf_exempt: an unknown API path is a 404 for any method, not a CSRF refusal.
    re_path(r"^api/", csrf_exempt(errors.json_not_found)),
    # One password door: the admin signs in through the dashboard's throttled, audited form.
    path("admin/login/", RedirectView.as_view(pattern_name="dashboard:login", query_string=True)),
    path("admin/", admin.site.urls),
    path("", include("kvsite.dashboard.urls")),
]

handler400 = "kvsite.http.errors.json_bad_request"
handler403 = "kvsite.dashboard.errors.permission_denied"
handler404 = "kvsite.dashboard.errors.not_found"
handler500 = "kvsite.http.errors.json_server_error"
