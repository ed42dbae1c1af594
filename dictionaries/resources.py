"""Excel/CSV import and export of every dictionary (django-import-export), with Chinese column
headers. References to other dictionaries are by code; an unknown code is a row error naming
the row and the code, and a file with any bad row imports nothing (see ``services.import_file``
and the admin import page)."""

from __future__ import annotations

from import_export import fields, resources, widgets

from hospital_interop import spreadsheets
from hospital_interop.errors import BAD_CHARACTER

from . import models as m


class CodeWidget(widgets.ForeignKeyWidget):
    """A foreign key given by the other row's code; unknown codes are row errors in Chinese."""

    def __init__(self, model, label: str, field: str = "code"):
        super().__init__(model, field=field)
        self.label = label

    def clean(self, value, row=None, **kwargs):
        value = "" if value is None else _text(value)
        if not value:
            return None
        try:
            return self.model.objects.get(**{self.field: value})
        except self.model.DoesNotExist:
            raise ValueError(f"{self.label} {value} 不存在") from None

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else spreadsheets.cell(getattr(value, self.field))


class YesNoWidget(widgets.BooleanWidget):
    def __init__(self, default: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.default = default

    TRUE = {"1", "true", "是", "启用", "在职", "y", "yes"}
    FALSE = {"0", "false", "否", "停用", "离职", "n", "no"}

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip().lower()
        if text == "":
            return self.default
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(f"「{value}」应为 是 或 否")

    def render(self, value, obj=None, **kwargs):
        return "是" if value else "否"


def _text(value) -> str:
    """A cell's text as stored: trimmed, a formula's apostrophe read off; a NUL or a lone surrogate
    (a CSV can carry both, PostgreSQL stores neither) is a row error."""
    text = spreadsheets.uncell(str(value).strip())
    if BAD_CHARACTER.search(text):
        raise ValueError("含有不允许的字符（空字符或孤立代理项）")
    return text


class TextWidget(widgets.CharWidget):
    """Codes stay text: Excel turns 030 into 30 and 4.0 into 4; a code column never loses zeros
    here because the sheet must already carry text, and numbers read back as ints without '.0'.
    Text a spreadsheet would run as a formula is exported with a leading apostrophe and read back
    without it (``spreadsheets.cell`` / ``uncell``)."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return "" if value is None else _text(value)

    def render(self, value, obj=None, **kwargs):
        return spreadsheets.cell(super().render(value, obj, **kwargs))


def text(attr: str, header: str) -> fields.Field:
    return fields.Field(attribute=attr, column_name=header, widget=TextWidget())


def ref(attr: str, header: str, model, label: str, field: str = "code") -> fields.Field:
    return fields.Field(attribute=attr, column_name=header, widget=CodeWidget(model, label, field))


def yes_no(attr: str, header: str, default: bool = True) -> fields.Field:
    return fields.Field(attribute=attr, column_name=header, widget=YesNoWidget(default))


class Base(resources.ModelResource):
    class Meta:
        clean_model_instances = True  # model.clean(): value-set checks of standard codes
        skip_unchanged = True
        report_skipped = True


def _coded(model, *, code="代码", name="名称"):
    """Field set of a Coded model."""
    return {"code": text("code", code), "name": text("name", name), "active": yes_no("active", "启用")}


class StandardDepartmentResource(Base):
    code, name, active = _coded(m.StandardDepartment).values()

    class Meta(Base.Meta):
        model = m.StandardDepartment
        import_id_fields = ("code",)
        fields = ("code", "name", "active")


class StandardBodyPartResource(Base):
    code, name, active = _coded(m.StandardBodyPart).values()

    class Meta(Base.Meta):
        model = m.StandardBodyPart
        import_id_fields = ("code",)
        fields = ("code", "name", "active")


class StandardExamItemResource(Base):
    code, name, active = _coded(m.StandardExamItem).values()
    modality_code = text("modality_code", "检查类别")
    body_part = ref("body_part", "标准部位代码", m.StandardBodyPart, "标准部位代码")
    valid_days = fields.Field(
        attribute="valid_days", column_name="互认有效期（天）", widget=widgets.IntegerWidget()
    )

    class Meta(Base.Meta):
        model = m.StandardExamItem
        import_id_fields = ("code",)
        fields = ("code", "name", "modality_code", "body_part", "valid_days", "active")


class StandardLabItemResource(Base):
    code, name, active = _coded(m.StandardLabItem).values()
    specimen_type_code = text("specimen_type_code", "标本类别")
    unit = text("unit", "单位")
    valid_days = fields.Field(
        attribute="valid_days", column_name="互认有效期（天）", widget=widgets.IntegerWidget()
    )

    class Meta(Base.Meta):
        model = m.StandardLabItem
        import_id_fields = ("code",)
        fields = ("code", "name", "specimen_type_code", "unit", "valid_days", "active")


class HospitalDepartmentResource(Base):
    code, name, active = _coded(m.HospitalDepartment, code="院内科室代码", name="院内科室名称").values()
    standard = ref("standard", "标准科室代码", m.StandardDepartment, "标准科室代码")

    class Meta(Base.Meta):
        model = m.HospitalDepartment
        import_id_fields = ("code",)
        fields = ("code", "name", "standard", "active")


class DoctorResource(Base):
    staff_no = text("staff_no", "工号")
    name = text("name", "姓名")
    license_no = text("license_no", "执业资格证书号")
    department = ref("department", "科室代码", m.HospitalDepartment, "院内科室代码")
    title = text("title", "职称")
    active = yes_no("active", "在职")

    class Meta(Base.Meta):
        model = m.Doctor
        import_id_fields = ("staff_no",)
        fields = ("staff_no", "name", "license_no", "department", "title", "active")


class ChargeItemResource(Base):
    code, name, active = _coded(m.ChargeItem).values()
    price = fields.Field(attribute="price", column_name="单价（元）", widget=widgets.DecimalWidget())
    unit = text("unit", "计价单位")

    class Meta(Base.Meta):
        model = m.ChargeItem
        import_id_fields = ("code",)
        fields = ("code", "name", "price", "unit", "active")


class HospitalBodyPartResource(Base):
    code, name, active = _coded(m.HospitalBodyPart, code="院内部位代码", name="院内部位名称").values()
    standard = ref("standard", "标准部位代码", m.StandardBodyPart, "标准部位代码")

    class Meta(Base.Meta):
        model = m.HospitalBodyPart
        import_id_fields = ("code",)
        fields = ("code", "name", "standard", "active")


class ExamOrderItemResource(Base):
    code, name, active = _coded(m.ExamOrderItem, code="医嘱项目代码", name="医嘱项目名称").values()
    modality_code = text("modality_code", "检查类别")
    charge_item = ref("charge_item", "收费项目代码", m.ChargeItem, "收费项目代码")

    class Meta(Base.Meta):
        model = m.ExamOrderItem
        import_id_fields = ("code",)
        fields = ("code", "name", "modality_code", "charge_item", "active")


class ExamItemMappingResource(Base):
    order_item = ref("order_item", "院内医嘱项目代码", m.ExamOrderItem, "院内检查医嘱项目代码")
    body_part = ref("body_part", "院内部位代码", m.HospitalBodyPart, "院内部位代码")
    standard_item = ref("standard_item", "标准检查项目代码", m.StandardExamItem, "标准检查项目代码")
    standard_body_part = ref("standard_body_part", "标准部位代码", m.StandardBodyPart, "标准部位代码")

    class Meta(Base.Meta):
        model = m.ExamItemMapping
        import_id_fields = ("order_item", "body_part")
        fields = ("order_item", "body_part", "standard_item", "standard_body_part")


class LabSubItemResource(Base):
    code, name, active = _coded(m.LabSubItem, code="检验子项代码", name="检验子项名称").values()
    unit = text("unit", "单位")
    standard = ref("standard", "标准检验项目代码", m.StandardLabItem, "标准检验项目代码")
    charge_item = ref("charge_item", "收费项目代码", m.ChargeItem, "收费项目代码")

    class Meta(Base.Meta):
        model = m.LabSubItem
        import_id_fields = ("code",)
        fields = ("code", "name", "unit", "standard", "charge_item", "active")


class LabOrderResource(Base):
    code, name, active = _coded(m.LabOrder, code="检验医嘱代码", name="检验医嘱名称").values()
    specimen_type_code = text("specimen_type_code", "标本类别")

    class Meta(Base.Meta):
        model = m.LabOrder
        import_id_fields = ("code",)
        fields = ("code", "name", "specimen_type_code", "active")


class LabOrderItemResource(Base):
    order = ref("order", "检验医嘱代码", m.LabOrder, "检验医嘱代码")
    sub_item = ref("sub_item", "检验子项代码", m.LabSubItem, "检验子项代码")
    position = fields.Field(attribute="position", column_name="顺序", widget=widgets.IntegerWidget())

    class Meta(Base.Meta):
        model = m.LabOrderItem
        import_id_fields = ("order", "sub_item")
        fields = ("order", "sub_item", "position")


class LabChargeMappingResource(Base):
    charge_item = ref("charge_item", "收费项目代码", m.ChargeItem, "收费项目代码")
    standard_item = ref("standard_item", "标准检验项目代码", m.StandardLabItem, "标准检验项目代码")

    class Meta(Base.Meta):
        model = m.LabChargeMapping
        import_id_fields = ("charge_item", "standard_item")
        fields = ("charge_item", "standard_item")


class RefusalReasonResource(Base):
    code = text("code", "代码")
    name = text("name", "显示名称")
    platform_code = text("platform_code", "平台原因代码")
    needs_note = yes_no("needs_note", "须填写说明", default=False)
    position = fields.Field(attribute="position", column_name="顺序", widget=widgets.IntegerWidget())
    active = yes_no("active", "启用")

    class Meta(Base.Meta):
        model = m.RefusalReason
        import_id_fields = ("code",)
        fields = ("code", "name", "platform_code", "needs_note", "position", "active")


class HospitalCodeResource(Base):
    value_set = text("value_set", "值域")
    code = text("code", "院内代码")
    name = text("name", "院内名称")
    standard_code = text("standard_code", "标准代码")
    standard_name = text("standard_name", "标准名称")
    active = yes_no("active", "启用")

    class Meta(Base.Meta):
        model = m.HospitalCode
        import_id_fields = ("value_set", "code")
        fields = ("value_set", "code", "name", "standard_code", "standard_name", "active")


RESOURCES = {
    r._meta.model: r
    for r in (
        StandardDepartmentResource,
        StandardBodyPartResource,
        StandardExamItemResource,
        StandardLabItemResource,
        HospitalDepartmentResource,
        DoctorResource,
        ChargeItemResource,
        HospitalBodyPartResource,
        ExamOrderItemResource,
        ExamItemMappingResource,
        LabSubItemResource,
        LabOrderResource,
        LabOrderItemResource,
        LabChargeMappingResource,
        RefusalReasonResource,
        HospitalCodeResource,
    )
}
