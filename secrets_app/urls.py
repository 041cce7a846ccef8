from django.urls import path

from secrets_app import views

# Names may contain '/', so `<path:name>`; ".../value" is matched first, which
# means a secret whose last segment is "value" cannot be read with a plain GET.
urlpatterns = [
    path("secrets", views.SecretListCreateApi.as_view(), name="secrets"),
    path("secrets/<path:name>/value", views.SecretValueApi.as_view(), name="secret-value"),
    path("secrets/<path:name>", views.SecretDetailApi.as_view(), name="secret"),
]
