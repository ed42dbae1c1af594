from django.contrib import admin

from .models import PullCursor, QcFinding


@admin.register(QcFinding)
class QcFindingAdmin(admin.ModelAdmin):
    list_display = (
        "feedback_id",
        "issuer",
        "kind",
        "interface",
        "business_key",
        "reply_by",
        "assignee",
        "state",
    )
    list_filter = ("state", "kind", "issuer", "assignee")
    search_fields = ("feedback_id", "interface", "business_key")
    readonly_fields = [f.name for f in QcFinding._meta.fields if f.name != "assignee"]

    def has_add_permission(self, request):
        return False  # findings come from the platform


@admin.register(PullCursor)
class PullCursorAdmin(admin.ModelAdmin):
    """The kept cursor: clear it to read the platform's feed again from the start."""

    list_display = ("feed", "cursor", "pulled_at", "last_error")
    readonly_fields = ("pulled_at", "last_error")
