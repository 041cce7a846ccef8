"""Routes of the items API under /kv/; every other path there is a 404 envelope."""

from django.urls import path, re_path

from buckets.items import views as items_views

# A key may contain '/' and, to be refused with a 400 rather than missed with a
# 404, any character: `<path:key>` would not match a newline.
urlpatterns = [
    path("items", items_views.ItemListApi.as_view(), name="items-list"),
    re_path(r"^items/(?P<key>[\s\S]+)\Z", items_views.ItemDetailApi.as_view(), name="items-detail"),
    path("limits", items_views.ItemLimitsApi.as_view(), name="items-limits"),
    re_path(r"", items_views.ItemsNotFoundApi.as_view(), name="items-not-found"),
]
