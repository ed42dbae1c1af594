"""Admin for the dictionaries: list, search, edit, Excel/CSV import and export, change history.

Lab and ops staff maintain these with the ``hospital_interop.maintain_dictionaries``
permission (their accounts need "可登录后台" / is_staff to reach the admin site).
"""

from django.contrib import admin
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin

from hospital_interop.security.uploads import LimitedImportForm

from . import models as m
from . import resources as r

PERM = "hospital_interop.maintain_dictionaries"


class DictionaryAdmin(ImportExportModelAdmin, SimpleHistoryAdmin):
    import_template_name = "dictionaries/admin/import.html"
    import_form_class = LimitedImportForm  # UPLOAD_LIMITS["dictionary_import"]
    formats = (XLSX, CSV)
    list_per_page = 50
    history_list_display = ()

    def _allowed(self, request) -> bool:
        return request.user.is_active and request.user.has_perm(PERM)

    def has_module_permission(self, request):
        return self._allowed(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request) or super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request) or super().has_delete_permission(request, obj)

    def has_import_permission(self, request):
        return self._allowed(request) or request.user.is_superuser

    def has_export_permission(self, request):
        return self._allowed(request) or request.user.is_superuser


@admin.register(m.StandardDepartment)
class StandardDepartmentAdmin(DictionaryAdmin):
    resource_classes = [r.StandardDepartmentResource]
    list_display = ("code", "name", "active", "updated_at")
    search_fields = ("code", "name")
    list_filter = ("active",)


@admin.register(m.StandardBodyPart)
class StandardBodyPartAdmin(DictionaryAdmin):
    resource_classes = [r.StandardBodyPartResource]
    list_display = ("code", "name", "active")
    search_fields = ("code", "name")


@admin.register(m.StandardExamItem)
class StandardExamItemAdmin(DictionaryAdmin):
    resource_classes = [r.StandardExamItemResource]
    list_display = ("code", "name", "modality_code", "body_part", "valid_days", "active")
    search_fields = ("code", "name")
    list_filter = ("modality_code", "active")
    autocomplete_fields = ("body_part",)


@admin.register(m.StandardLabItem)
class StandardLabItemAdmin(DictionaryAdmin):
    resource_classes = [r.StandardLabItemResource]
    list_display = ("code", "name", "specimen_type_code", "unit", "valid_days", "active")
    search_fields = ("code", "name")
    list_filter = ("specimen_type_code", "active")


@admin.register(m.HospitalDepartment)
class HospitalDepartmentAdmin(DictionaryAdmin):
    resource_classes = [r.HospitalDepartmentResource]
    list_display = ("code", "name", "standard", "active")
    search_fields = ("code", "name", "standard__code", "standard__name")
    list_filter = ("active", ("standard", admin.EmptyFieldListFilter))
    autocomplete_fields = ("standard",)


@admin.register(m.Doctor)
class DoctorAdmin(DictionaryAdmin):
    resource_classes = [r.DoctorResource]
    list_display = ("staff_no", "name", "license_no", "department", "title", "active")
    search_fields = ("staff_no", "name", "license_no")
    list_filter = ("active", "department")
    autocomplete_fields = ("department",)


@admin.register(m.ChargeItem)
class ChargeItemAdmin(DictionaryAdmin):
    resource_classes = [r.ChargeItemResource]
    list_display = ("code", "name", "price", "unit", "active")
    search_fields = ("code", "name")


@admin.register(m.HospitalBodyPart)
class HospitalBodyPartAdmin(DictionaryAdmin):
    resource_classes = [r.HospitalBodyPartResource]
    list_display = ("code", "name", "standard", "active")
    search_fields = ("code", "name")
    autocomplete_fields = ("standard",)


class ExamItemMappingInline(admin.TabularInline):
    model = m.ExamItemMapping
    extra = 0
    autocomplete_fields = ("body_part", "standard_item", "standard_body_part")


@admin.register(m.ExamOrderItem)
class ExamOrderItemAdmin(DictionaryAdmin):
    resource_classes = [r.ExamOrderItemResource]
    list_display = ("code", "name", "modality_code", "charge_item", "active")
    search_fields = ("code", "name")
    list_filter = ("modality_code", "active")
    autocomplete_fields = ("charge_item",)
    inlines = [ExamItemMappingInline]


@admin.register(m.ExamItemMapping)
class ExamItemMappingAdmin(DictionaryAdmin):
    resource_classes = [r.ExamItemMappingResource]
    list_display = ("order_item", "body_part", "standard_item", "standard_body_part", "updated_at")
    search_fields = ("order_item__code", "order_item__name", "standard_item__code", "standard_item__name")
    autocomplete_fields = ("order_item", "body_part", "standard_item", "standard_body_part")


@admin.register(m.LabSubItem)
class LabSubItemAdmin(DictionaryAdmin):
    resource_classes = [r.LabSubItemResource]
    list_display = ("code", "name", "unit", "standard", "charge_item", "active")
    search_fields = ("code", "name", "standard__code", "standard__name")
    list_filter = ("active", ("standard", admin.EmptyFieldListFilter))
    autocomplete_fields = ("standard", "charge_item")


class LabOrderItemInline(admin.TabularInline):
    model = m.LabOrderItem
    extra = 0
    autocomplete_fields = ("sub_item",)


@admin.register(m.LabOrder)
class LabOrderAdmin(DictionaryAdmin):
    resource_classes = [r.LabOrderResource]
    list_display = ("code", "name", "specimen_type_code", "active")
    search_fields = ("code", "name")
    inlines = [LabOrderItemInline]


@admin.register(m.LabOrderItem)
class LabOrderItemAdmin(DictionaryAdmin):
    resource_classes = [r.LabOrderItemResource]
    list_display = ("order", "sub_item", "position")
    search_fields = ("order__code", "order__name", "sub_item__code", "sub_item__name")
    autocomplete_fields = ("order", "sub_item")


@admin.register(m.LabChargeMapping)
class LabChargeMappingAdmin(DictionaryAdmin):
    resource_classes = [r.LabChargeMappingResource]
    list_display = ("charge_item", "standard_item", "updated_at")
    search_fields = ("charge_item__code", "charge_item__name", "standard_item__code", "standard_item__name")
    autocomplete_fields = ("charge_item", "standard_item")


@admin.register(m.RefusalReason)
class RefusalReasonAdmin(DictionaryAdmin):
    resource_classes = [r.RefusalReasonResource]
    list_display = ("code", "name", "platform_code", "needs_note", "position", "active")
    list_editable = ("position", "active")
    search_fields = ("code", "name")


@admin.register(m.HospitalCode)
class HospitalCodeAdmin(DictionaryAdmin):
    resource_classes = [r.HospitalCodeResource]
    list_display = ("value_set", "code", "name", "standard_code", "standard_name", "active", "updated_at")
    search_fields = ("code", "name", "standard_code", "standard_name")
    list_filter = ("value_set", "active", ("standard_code", admin.EmptyFieldListFilter))
