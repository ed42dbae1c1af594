from django.contrib import admin

from .models import BindingConflict


@admin.register(BindingConflict)
class BindingConflictAdmin(admin.ModelAdmin):
    """Refused requests that named a visit, order or report of another patient (read only)."""

    list_display = ("at", "source", "kind", "ref", "field", "what")
    list_filter = ("kind", "source", "what")
    search_fields = ("ref",)
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
