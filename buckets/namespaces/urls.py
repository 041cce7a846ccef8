"""Routes of the namespaces API under /api/v1/kv/.

Namespace ids are UUIDs (the ``uuid`` converter), so ``/api/v1/kv/<id>/...``
never matches ``/api/v1/kv/buckets/...``. Key paths contain '/', so the
sub-resources are matched first; a multi-segment key path may not end in one
of their names (``inputs.RESERVED_SEGMENTS``).
"""

from django.urls import path

from buckets.namespaces import views

urlpatterns = [
    path("namespaces", views.NamespaceListCreateApi.as_view(), name="kv-namespaces"),
    path("namespaces/<uuid:ns_id>", views.NamespaceDetailApi.as_view(), name="kv-namespace"),
    path("<uuid:ns_id>/entries", views.EntryListApi.as_view(), name="kv-ns-entries"),
    path("<uuid:ns_id>/entries/<path:key_path>/rotate", views.EntryRotateApi.as_view(), name="kv-ns-entry-rotate"),
    path(
        "<uuid:ns_id>/entries/<path:key_path>/versions", views.EntryVersionsApi.as_view(), name="kv-ns-entry-versions"
    ),
    path(
        "<uuid:ns_id>/entries/<path:key_path>/rollback", views.EntryRollbackApi.as_view(), name="kv-ns-entry-rollback"
    ),
    path("<uuid:ns_id>/entries/<path:key_path>", views.EntryDetailApi.as_view(), name="kv-ns-entry"),
    path("<uuid:ns_id>/bulk/get", views.BulkGetApi.as_view(), name="kv-ns-bulk-get"),
    path("<uuid:ns_id>/bulk/set", views.BulkSetApi.as_view(), name="kv-ns-bulk-set"),
    path("<uuid:ns_id>/bulk/delete", views.BulkDeleteApi.as_view(), name="kv-ns-bulk-delete"),
]
