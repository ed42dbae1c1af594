from django.contrib import admin

from .models import PullCursor, PullIssue


@admin.register(PullCursor)
class PullCursorAdmin(admin.ModelAdmin):
    list_display = [
        "source",
        "view",
        "position",
        "rows_read",
        "records_created",
        "rows_rejected",
        "last_run_at",
        "last_success_at",
        "last_error",
    ]
    readonly_fields = [
        "view",
        "rows_read",
        "records_created",
        "rows_rejected",
        "last_run_at",
        "last_success_at",
        "last_error",
    ]
    fields = ["source", "position", *readonly_fields]


@admin.register(PullIssue)
class PullIssueAdmin(admin.ModelAdmin):
    list_display = ["created_at", "source", "record_type", "business_key", "position"]
    list_filter = ["source", "record_type"]
    search_fields = ["business_key"]
    readonly_fields = ["source", "record_type", "position", "business_key", "errors", "created_at"]

    def has_add_permission(self, request):
        return False
