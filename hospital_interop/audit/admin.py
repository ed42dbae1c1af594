"""The trail in the admin: read only, and only for the security officer (安全审计员, a staff user
of that role). Nobody adds, changes or deletes an entry here, and a superuser does not read it by
being one (``roles.SEPARATE_FROM_ADMIN``); retention is ``manage.py audit_purge``, integrity
``manage.py audit_verify``."""

from django.contrib import admin

from hospital_interop.roles import holds

from .models import AuditRecord


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = (
        "seq",
        "at",
        "username",
        "roles",
        "ip",
        "action",
        "object_type",
        "object_id",
        "short_patient",
    )
    list_filter = ("action", "actor_type", "object_type")
    search_fields = ("username", "object_id", "=patient")
    date_hierarchy = "at"
    actions = None

    @admin.display(description="患者摘要")
    def short_patient(self, obj):
        return obj.patient[:12] + "…" if obj.patient else ""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AuditRecord._meta.fields]

    def has_module_permission(self, request):
        return holds(request.user, "audit.view_auditrecord")

    def has_view_permission(self, request, obj=None):
        return holds(request.user, "audit.view_auditrecord")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
