"""Dashboard routes, included at the site root after the API and admin routes.

Keys, document and secret names may contain '/', so they are the last path
segment (``<path:...>``) and actions are POST fields, never sub-paths.
"""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from . import apikeys, audit, buckets, config, errors, secrets
from .login import LoginView

app_name = "dashboard"

urlpatterns = [
    path("login", LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", buckets.bucket_list, name="buckets"),
    path("buckets", RedirectView.as_view(pattern_name="dashboard:buckets", query_string=True), name="bucket-index"),
    path("buckets/<str:bucket>", buckets.bucket_detail, name="bucket"),
    path("buckets/<str:bucket>/keys/<path:key>", buckets.key_detail, name="key"),
    path("config", config.config_index, name="config"),
    path("config/<str:environment>/<path:name>", config.config_document, name="config-document"),
    path("secrets", secrets.secret_index, name="secrets"),
    path("secrets/<str:environment>/<path:name>", secrets.secret_detail, name="secret"),
    path("audit", audit.audit_index, name="audit"),
    path("api-keys", apikeys.apikey_index, name="api-keys"),
    path("api-keys/revoke", apikeys.apikey_revoke_view, name="api-key-revoke"),
    # Last: any other path is the dashboard's 404 page, in development too, where Django would
    # otherwise answer with its debug page listing every URL pattern (APPEND_SLASH is off).
    # csrf_exempt: an unknown path is a 404 for any method, not a CSRF refusal.
    re_path(r"^.*$", csrf_exempt(errors.not_found), name="not-found"),
]
