from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from kvsite import errors, health

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/kv/swagger-ui", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/kv/", include("buckets.api.urls")),
    path("api/v1/", include("buckets.api.config_urls")),
    re_path(r"^api/", errors.json_not_found),
    path("admin/", admin.site.urls),
]

handler400 = "kvsite.errors.json_bad_request"
handler403 = "kvsite.errors.json_permission_denied"
handler404 = "kvsite.errors.json_not_found"
handler500 = "kvsite.errors.json_server_error"
