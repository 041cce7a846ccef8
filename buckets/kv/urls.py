"""Routes of the bucket & key API under /api/v1/kv/."""

from django.urls import path

from buckets.kv import views

# A key may contain '/', so `<path:key>`; ".../history" is matched first, which
# means a key whose last segment is "history" cannot be read with a plain GET.
urlpatterns = [
    path("buckets", views.BucketListCreateApi.as_view(), name="kv-buckets"),
    path("buckets/<str:bucket>", views.BucketDetailApi.as_view(), name="kv-bucket"),
    path("buckets/<str:bucket>/keys", views.KeyListApi.as_view(), name="kv-keys"),
    path("buckets/<str:bucket>/keys/<path:key>/history", views.KeyHistoryApi.as_view(), name="kv-key-history"),
    path("buckets/<str:bucket>/keys/<path:key>", views.KeyDetailApi.as_view(), name="kv-key"),
]
