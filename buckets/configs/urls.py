from django.urls import path

from buckets.configs import views as config_views

# Document names follow the key rules and may contain '/'; the sub-resources
# are matched first.
urlpatterns = [
    path("config", config_views.ConfigListApi.as_view(), name="config-list"),
    path("config/<path:name>/history", config_views.ConfigHistoryApi.as_view(), name="config-history"),
    path("config/<path:name>/rollback", config_views.ConfigRollbackApi.as_view(), name="config-rollback"),
    path("config/<path:name>", config_views.ConfigDetailApi.as_view(), name="config-detail"),
]
