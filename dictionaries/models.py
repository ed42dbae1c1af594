"""Standard dictionaries (the city's lists) and the hospital's mappings onto them.

Standard side (北京市互认项目、诊疗科目): departments, body parts, exam items, lab items.
Hospital side: departments, doctors, charge items, exam order items and body parts, lab orders
(panels) with their sub-items. Mappings: hospital department → standard department (on the
department), exam order item + body part → standard exam item + body part (ExamItemMapping),
lab sub-item → standard lab item (on the sub-item), charge item → standard lab item
(LabChargeMapping). Every table keeps its change history (django-simple-history).

Codes on the standard side are checked against the interface spec's value set (pattern, and
name where the spec lists the code), so a mapping can never point at a code the platform would
reject. Reads go through ``dictionaries.selectors``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from hospital_interop.municipal.specs import load_catalogue


def _value_set(set_id: str):
    return load_catalogue().value_set(set_id)


def check_standard_code(set_id: str, code: str, name: str | None = None) -> list[str]:
    """Problems of a standard code against the spec value set `set_id` (empty list: fine)."""
    vs = _value_set(set_id)
    if not vs.accepts(code):
        return [f"代码 {code} 不符合{vs.title}的格式" + (f"（{vs.pattern.pattern}）" if vs.pattern else "")]
    if name is not None and code in vs and name not in vs.names(code):
        return [f"代码 {code} 在{vs.title}中的名称是「{vs.name_of(code)}」，不是「{name}」"]
    return []


class Coded(models.Model):
    code = models.CharField("代码", max_length=20, unique=True)
    name = models.CharField("名称", max_length=100)
    active = models.BooleanField("启用", default=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        abstract = True
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"


class StandardCoded(Coded):
    """A code of a city list: validated against the spec's value set ``VALUE_SET``."""

    VALUE_SET = ""

    class Meta:
        abstract = True
        ordering = ["code"]

    def clean(self):
        super().clean()
        if self.code and self.name:
            problems = check_standard_code(self.VALUE_SET, self.code, self.name)
            if problems:
                raise ValidationError({"code": problems})


# --------------------------------------------------------------------------- standard side


class StandardDepartment(StandardCoded):
    VALUE_SET = "DEPT_STD"
    history = HistoricalRecords()

    class Meta:
        verbose_name = "标准科室"
        verbose_name_plural = "标准科室"
        ordering = ["code"]


class StandardBodyPart(StandardCoded):
    VALUE_SET = "BODY_PART"
    code = models.CharField("代码", max_length=10, unique=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "标准检查部位"
        verbose_name_plural = "标准检查部位"
        ordering = ["code"]


class StandardExamItem(StandardCoded):
    VALUE_SET = "EXAM_ITEM"
    modality_code = models.CharField(
        "检查类别", max_length=4, help_text="CT、MR、DR、US 等（检查类别代码值域）"
    )
    body_part = models.ForeignKey(
        StandardBodyPart, models.PROTECT, verbose_name="标准部位", null=True, blank=True
    )
    valid_days = models.PositiveSmallIntegerField(
        "互认有效期（天）", help_text="检查日期起多少天内的结果可互认"
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "标准检查项目"
        verbose_name_plural = "标准检查项目"
        ordering = ["code"]

    @property
    def modality_name(self) -> str:
        return _value_set("EXAM_CATEGORY").name_of(self.modality_code) or self.modality_code

    def clean(self):
        super().clean()
        if self.modality_code and self.modality_code not in _value_set("EXAM_CATEGORY"):
            raise ValidationError({"modality_code": f"检查类别 {self.modality_code} 不在检查类别值域中"})
        if self.valid_days is not None and self.valid_days < 1:
            raise ValidationError({"valid_days": "互认有效期至少 1 天"})


class StandardLabItem(StandardCoded):
    VALUE_SET = "LAB_ITEM"
    specimen_type_code = models.CharField("标本类别", max_length=2, help_text="01 全血、02 血清、03 血浆 …")
    unit = models.CharField("常用单位", max_length=20, blank=True, default="")
    valid_days = models.PositiveSmallIntegerField(
        "互认有效期（天）", help_text="采样日期起多少天内的结果可互认"
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "标准检验项目"
        verbose_name_plural = "标准检验项目"
        ordering = ["code"]

    @property
    def specimen_type_name(self) -> str:
        return _value_set("SPECIMEN_TYPE").name_of(self.specimen_type_code) or self.specimen_type_code

    def clean(self):
        super().clean()
        if self.specimen_type_code and self.specimen_type_code not in _value_set("SPECIMEN_TYPE"):
            raise ValidationError(
                {"specimen_type_code": f"标本类别 {self.specimen_type_code} 不在标本类别值域中"}
            )
        if self.valid_days is not None and self.valid_days < 1:
            raise ValidationError({"valid_days": "互认有效期至少 1 天"})


# --------------------------------------------------------------------------- hospital side


class HospitalDepartment(Coded):
    standard = models.ForeignKey(
        StandardDepartment,
        models.PROTECT,
        verbose_name="标准科室",
        null=True,
        blank=True,
        related_name="hospital_departments",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "院内科室（含标准科室对照）"
        verbose_name_plural = "院内科室（含标准科室对照）"
        ordering = ["code"]


class Doctor(models.Model):
    staff_no = models.CharField("工号", max_length=20, unique=True)
    name = models.CharField("姓名", max_length=50)
    license_no = models.CharField(
        "执业资格证书号",
        max_length=30,
        blank=True,
        default="",
        help_text="医师执业证书编码，检验报告上报（3.3）必填",
    )
    department = models.ForeignKey(
        HospitalDepartment,
        models.PROTECT,
        verbose_name="所在科室",
        null=True,
        blank=True,
        related_name="doctors",
    )
    title = models.CharField("职称", max_length=30, blank=True, default="")
    active = models.BooleanField("在职", default=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "医师"
        verbose_name_plural = "医师"
        ordering = ["staff_no"]

    def __str__(self):
        return f"{self.staff_no} {self.name}"


class ChargeItem(Coded):
    price = models.DecimalField("单价（元）", max_digits=10, decimal_places=2)
    unit = models.CharField("计价单位", max_length=10, blank=True, default="次")
    history = HistoricalRecords()

    class Meta:
        verbose_name = "收费项目"
        verbose_name_plural = "收费项目"
        ordering = ["code"]


class HospitalBodyPart(Coded):
    standard = models.ForeignKey(
        StandardBodyPart,
        models.PROTECT,
        verbose_name="标准部位",
        null=True,
        blank=True,
        related_name="hospital_body_parts",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "院内检查部位（含标准部位对照）"
        verbose_name_plural = "院内检查部位（含标准部位对照）"
        ordering = ["code"]


class ExamOrderItem(Coded):
    modality_code = models.CharField("检查类别", max_length=4, blank=True, default="")
    charge_item = models.ForeignKey(
        ChargeItem,
        models.PROTECT,
        verbose_name="收费项目",
        null=True,
        blank=True,
        related_name="exam_order_items",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "院内检查医嘱项目"
        verbose_name_plural = "院内检查医嘱项目"
        ordering = ["code"]


class ExamItemMapping(models.Model):
    """Exam order item (+ body part; empty = any) → standard exam item (+ standard body part)."""

    order_item = models.ForeignKey(
        ExamOrderItem, models.CASCADE, verbose_name="院内检查医嘱项目", related_name="mappings"
    )
    body_part = models.ForeignKey(
        HospitalBodyPart,
        models.PROTECT,
        verbose_name="院内部位",
        null=True,
        blank=True,
        help_text="留空表示该医嘱项目的任何部位",
    )
    standard_item = models.ForeignKey(
        StandardExamItem, models.PROTECT, verbose_name="标准检查项目", related_name="mappings"
    )
    standard_body_part = models.ForeignKey(
        StandardBodyPart,
        models.PROTECT,
        verbose_name="标准部位",
        null=True,
        blank=True,
        help_text="留空时取院内部位的标准对照或标准项目的部位",
    )
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "检查项目对照"
        verbose_name_plural = "检查项目对照"
        ordering = ["order_item__code"]
        constraints = [
            models.UniqueConstraint(fields=["order_item", "body_part"], name="exam_mapping_item_part"),
            models.UniqueConstraint(
                fields=["order_item"], condition=Q(body_part__isnull=True), name="exam_mapping_item_any_part"
            ),
        ]

    def __str__(self):
        part = f"（{self.body_part.name}）" if self.body_part_id else ""
        return f"{self.order_item.name}{part} → {self.standard_item}"


class LabSubItem(Coded):
    """One result line the lab reports (e.g. WBC), mapped to the city's lab item."""

    unit = models.CharField("单位", max_length=20, blank=True, default="")
    standard = models.ForeignKey(
        StandardLabItem,
        models.PROTECT,
        verbose_name="标准检验项目（互认项目）",
        null=True,
        blank=True,
        related_name="sub_items",
    )
    charge_item = models.ForeignKey(
        ChargeItem,
        models.PROTECT,
        verbose_name="收费项目",
        null=True,
        blank=True,
        related_name="lab_sub_items",
        help_text="计费该子项的收费项目；多个子项可共用一个收费项目（如血细胞分析）",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "检验子项（含标准项目对照）"
        verbose_name_plural = "检验子项（含标准项目对照）"
        ordering = ["code"]


class LabOrder(Coded):
    """A lab order item (医嘱, often a panel such as 血常规) and its sub-items."""

    specimen_type_code = models.CharField("标本类别", max_length=2, blank=True, default="")
    sub_items = models.ManyToManyField(
        LabSubItem, through="LabOrderItem", verbose_name="检验子项", related_name="orders"
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "检验医嘱"
        verbose_name_plural = "检验医嘱"
        ordering = ["code"]


class LabOrderItem(models.Model):
    order = models.ForeignKey(LabOrder, models.CASCADE, verbose_name="检验医嘱", related_name="order_items")
    sub_item = models.ForeignKey(
        LabSubItem, models.PROTECT, verbose_name="检验子项", related_name="order_items"
    )
    position = models.PositiveSmallIntegerField("顺序", default=0)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "检验医嘱组成"
        verbose_name_plural = "检验医嘱组成"
        ordering = ["order__code", "position", "sub_item__code"]
        constraints = [models.UniqueConstraint(fields=["order", "sub_item"], name="lab_order_sub_item")]

    def __str__(self):
        return f"{self.order.name} · {self.sub_item.name}"


class LabChargeMapping(models.Model):
    """Charge item → standard lab item (a panel's charge item maps to several)."""

    charge_item = models.ForeignKey(
        ChargeItem, models.CASCADE, verbose_name="收费项目", related_name="lab_mappings"
    )
    standard_item = models.ForeignKey(
        StandardLabItem, models.PROTECT, verbose_name="标准检验项目", related_name="charge_mappings"
    )
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "收费项目对照（检验）"
        verbose_name_plural = "收费项目对照（检验）"
        ordering = ["charge_item__code", "standard_item__code"]
        constraints = [
            models.UniqueConstraint(fields=["charge_item", "standard_item"], name="lab_charge_mapping")
        ]

    def __str__(self):
        return f"{self.charge_item} → {self.standard_item}"


class RefusalReason(models.Model):
    """A reason a doctor may pick for 不互认; each maps to the platform's reason code."""

    code = models.CharField("代码", max_length=10, unique=True)
    name = models.CharField("显示名称", max_length=100)
    platform_code = models.CharField(
        "平台不互认原因代码", max_length=2, help_text="上报市平台时使用的代码（不互认原因值域）"
    )
    needs_note = models.BooleanField("须填写说明", default=False)
    position = models.PositiveSmallIntegerField("顺序", default=0)
    active = models.BooleanField("启用", default=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "不互认原因"
        verbose_name_plural = "不互认原因"
        ordering = ["position", "code"]

    def __str__(self):
        return self.name

    @property
    def platform_name(self) -> str:
        return _value_set("REFUSAL_REASON").name_of(self.platform_code) or ""

    def clean(self):
        super().clean()
        if self.platform_code not in _value_set("REFUSAL_REASON"):
            raise ValidationError({"platform_code": f"平台不互认原因代码 {self.platform_code} 不在值域中"})
        if self.platform_code == "9" and not self.needs_note:
            raise ValidationError({"needs_note": "平台原因「其他」必须填写说明"})


class HospitalCode(models.Model):
    """院内代码对照: a hospital code of one spec value set (ICD-10 diagnosis, ICD-9-CM-3 operation,
    sex, marital status, payment kind, charge category …) → the standard code of that set.

    Departments are not here: they are ``HospitalDepartment`` (院内科室 → 标准科室), shared with
    the exam and lab sides. A row without ``standard_code`` is a known hospital code not mapped
    yet (listed on the unmapped report)."""

    value_set = models.CharField(
        "值域",
        max_length=40,
        help_text="接口规范中的值域代码，如 ICD10、ICD9CM3、SEX、MARITAL_STATUS、FEE_CATEGORY",
    )
    code = models.CharField("院内代码", max_length=40)
    name = models.CharField("院内名称", max_length=100, blank=True, default="")
    standard_code = models.CharField("标准代码", max_length=40, blank=True, default="")
    standard_name = models.CharField(
        "标准名称", max_length=100, blank=True, default="", help_text="留空时取值域中该代码的名称"
    )
    active = models.BooleanField("启用", default=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "院内代码对照（值域）"
        verbose_name_plural = "院内代码对照（值域）"
        ordering = ["value_set", "code"]
        constraints = [models.UniqueConstraint(fields=["value_set", "code"], name="hospital_code_set_code")]

    def __str__(self):
        return f"{self.value_set} {self.code} {self.name}".rstrip()

    def save(self, *args, **kwargs):
        if self.standard_code and not self.standard_name:
            try:
                self.standard_name = _value_set(self.value_set).name_of(self.standard_code) or ""
            except KeyError:
                pass
        super().save(*args, **kwargs)

    @property
    def value_set_title(self) -> str:
        try:
            return _value_set(self.value_set).title
        except KeyError:
            return self.value_set

    def clean(self):
        super().clean()
        if not self.value_set:
            return
        if self.value_set == StandardDepartment.VALUE_SET:
            raise ValidationError({"value_set": "科室代码请在「院内科室（含标准科室对照）」中对照，不在此表"})
        try:
            vs = _value_set(self.value_set)
        except KeyError:
            raise ValidationError({"value_set": f"值域 {self.value_set} 不存在于接口规范中"}) from None
        if not self.standard_code:
            return
        problems = check_standard_code(self.value_set, self.standard_code, self.standard_name or None)
        if problems:
            raise ValidationError({"standard_code": problems})
        if not self.standard_name:
            if self.standard_code not in vs:
                raise ValidationError(
                    {"standard_name": f"{vs.title}未列出代码 {self.standard_code}，请填写标准名称"}
                )
            self.standard_name = vs.name_of(self.standard_code)
