from django.contrib import admin

from .models import InterfacePolicy
from .schedules import sync_schedules


@admin.register(InterfacePolicy)
class InterfacePolicyAdmin(admin.ModelAdmin):
    list_display = (
        "interface",
        "enabled",
        "mode",
        "interval_seconds",
        "max_in_flight",
        "rate_per_second",
        "deadline_minutes",
        "max_age_hours",
        "archive_after_days",
        "archive_payload",
    )
    list_editable = ("enabled", "mode", "interval_seconds", "deadline_minutes")
    search_fields = ("interface",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        sync_schedules()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        sync_schedules()

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.method == "POST":
            sync_schedules()
        return response
