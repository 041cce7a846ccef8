"""Django admin: the audit log, read-only (rows are append-only everywhere)."""

from django.contrib import admin

from kvsite.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "action", "namespace", "key_path", "actor_type", "actor_name", "success", "reason"]
    list_filter = ["action", "success", "actor_type"]
    search_fields = ["namespace", "key_path", "actor_name", "request_id"]
    date_hierarchy = "timestamp"
    ordering = ["-id"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
