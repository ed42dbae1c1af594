"""Admin for the dictionaries: list, search, edit, Excel/CSV import and export, change history.

Lab and ops staff maintain these with the ``hospital_interop.maintain_dictionaries``
permission (their accounts need "可登录后台" / is_staff to reach the admin site).
"""

from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import SelectableFieldsExportForm
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from hospital_interop.security.uploads import LimitedImportForm

from . import models as m
from . import resources as r

PERM = "hospital_interop.maintain_dictionaries"
EMPTY = "（空）"


class ColumnNameExportForm(SelectableFieldsExportForm):
    """The export page's column check boxes carry the spreadsheet's Chinese headers only (the
    library writes ``Code (院内科室代码)``: the attribute name, English, before the header)."""

    def _get_field_label(self, resource, field_name: str) -> str:
        field = resource.fields.get(field_name)
        return field.column_name if field else field_name


class HistoryChanges(HistoricalRecordContextHelper):
    """The 变更内容 column of a row's history, readable: an empty reference is 「（空）」, not the
    library's "Deleted 标准科室 (pk=None)" (it takes every null foreign key for a deleted row);
    a row deleted since is named in Chinese; yes/no and choices as the forms show them."""

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if isinstance(value, DeletedObject):
            if value.pk is None:
                return EMPTY
            return f"已删除的{value.model._meta.verbose_name}（编号 {value.pk}）"
        if value is None or value == "":
            return EMPTY
        if isinstance(value, bool):
            return "是" if value else "否"
        if getattr(field, "choices", None):
            return dict(field.flatchoices).get(value, value)
        return value


class DictionaryAdmin(ImportExportModelAdmin, SimpleHistoryAdmin):
    import_template_name = "dictionaries/admin/import.html"
    export_template_name = "dictionaries/admin/export.html"
    export_form_class = ColumnNameExportForm
    import_form_class = LimitedImportForm  # UPLOAD_LIMITS["dictionary_import"]
    object_history_list_template = "dictionaries/admin/object_history_list.html"
    object_history_form_template = "dictionaries/admin/object_history_form.html"
    formats = (XLSX, CSV)
    list_per_page = 50
    history_list_display = ()

    def import_action(self, request, **kwargs):
        """The import page, plus each refused cell spelt out for the template: row, column (the
        Chinese header), reason and the row's content, shown directly (the library's page hides
        the reasons in a pop-up behind a count badge)."""
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None) or {}
        result = context.get("result")
        if result is not None and result.has_validation_errors():
            resource = self.get_import_resource_classes(request)[0]
            context["import_problems"] = import_problems(result, resource)
        return response

    def get_historical_record_context_helper(self, request, historical_record):
        return HistoryChanges(self.model, historical_record)

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


def import_problems(result, resource) -> list[dict]:
    """One entry per refused cell of a dry-run import: data row (1 = the first row under the
    header), the spreadsheet line, the column's header, the reason, and the row as read."""
    headers = {f.attribute: f.column_name for f in resource().get_user_visible_fields()}
    order = list(headers)
    problems = []
    for row in result.invalid_rows:
        content = "；".join(
            f"{h}={'' if v in (None, '---') else v}"  # '---': the library's mark of a cell not read
            for h, v in zip(result.diff_headers, row.values, strict=False)
        )
        fields = sorted(row.error_dict, key=lambda f: order.index(f) if f in order else len(order))
        for field in fields:
            for message in row.error_dict[field]:
                problems.append(
                    {
                        "row": row.number,
                        "line": row.number + 1,
                        "column": "整行" if field == NON_FIELD_ERRORS else headers.get(field, field),
                        "message": message,
                        "content": content,
                    }
                )
    return problems


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
