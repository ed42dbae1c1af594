"""Encounters whose external results are pre-loaded, the doctors' decisions, and the audit log.

External results themselves live in the cache (with a TTL tied to their recognition window);
what a doctor decides is stored here with a snapshot of the external result it refers to, so
recognised results can be shown and handed to the exam and lab systems after the cache expired.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from hospital_interop.logmask import mask_name
from hospital_interop.patients.models import id_key

__all__ = ["AuditEntry", "Decision", "Encounter", "Kind", "id_key", "mask_id"]


def mask_id(id_no: str) -> str:
    if len(id_no) <= 10:
        return id_no[:2] + "*" * max(len(id_no) - 4, 0) + id_no[-2:]
    return id_no[:6] + "*" * (len(id_no) - 10) + id_no[-4:]


class Kind(models.TextChoices):
    EXAM = "exam", "检查"
    LAB = "lab", "检验"


class Encounter(models.Model):
    """One visit (门诊/急诊 registration or 住院 admission) of a patient, as the HIS announced it."""

    visit_id = models.CharField("就诊流水号", max_length=32, unique=True)
    patient_id = models.CharField("患者ID", max_length=32, blank=True, default="")
    name = models.CharField("姓名", max_length=50)
    id_type_code = models.CharField("证件类别", max_length=2, default="01")
    id_no = models.CharField("证件号码", max_length=32)
    id_key = models.CharField("证件摘要", max_length=40, db_index=True)
    sex_code = models.CharField("性别代码", max_length=1, blank=True, default="")
    birth_date = models.CharField("出生日期", max_length=8, blank=True, default="", help_text="yyyyMMdd")
    phone = models.CharField("联系电话", max_length=20, blank=True, default="")
    patient_type_code = models.CharField(
        "患者类型", max_length=1, default="1", help_text="1 门诊 2 急诊 3 住院"
    )
    outpatient_no = models.CharField("门（急）诊号", max_length=18, blank=True, default="")
    inpatient_no = models.CharField("住院号", max_length=18, blank=True, default="")
    dept_code = models.CharField("就诊科室", max_length=20, blank=True, default="")
    doctor_staff_no = models.CharField("接诊医师", max_length=20, blank=True, default="")
    event = models.CharField("来源事件", max_length=16, default="prompt")
    created_at = models.DateTimeField("登记时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    preloaded_at = models.DateTimeField("预加载时间", null=True, blank=True)
    preload_error = models.CharField("预加载错误", max_length=300, blank=True, default="")

    class Meta:
        verbose_name = "就诊"
        verbose_name_plural = "就诊"

    def __str__(self):
        return f"{self.visit_id} {mask_name(self.name)}"

    def save(self, *args, **kwargs):
        self.id_key = id_key(self.id_type_code, self.id_no)
        super().save(*args, **kwargs)


class Decision(models.Model):
    """A doctor's decision on one external result for one order (exam) or order line (lab)."""

    class Value(models.TextChoices):
        RECOGNIZED = "1", "互认"
        REFUSED = "2", "不互认"

    encounter = models.ForeignKey(Encounter, models.PROTECT, related_name="decisions", verbose_name="就诊")
    kind = models.CharField("类别", max_length=4, choices=Kind.choices)
    order_id = models.CharField("医嘱号", max_length=32)
    order_item_code = models.CharField("医嘱项目代码", max_length=20)
    order_item_name = models.CharField("医嘱项目名称", max_length=100)
    sub_item_code = models.CharField("检验子项代码", max_length=20, blank=True, default="")
    sub_item_name = models.CharField("检验子项名称", max_length=100, blank=True, default="")
    standard_code = models.CharField("互认项目代码", max_length=20, db_index=True)
    standard_name = models.CharField("互认项目名称", max_length=100)
    external_org_code = models.CharField("外院机构代码", max_length=22)
    external_org_name = models.CharField("外院机构名称", max_length=70)
    external_report_id = models.CharField("外院报告单号", max_length=20)
    external_at = models.DateTimeField("外院检查/采样时间", null=True, blank=True)
    valid_until = models.DateField("可互认至", null=True, blank=True)
    result = models.JSONField("外院结果", default=dict)
    decision = models.CharField("决定", max_length=1, choices=Value.choices)
    reason_code = models.CharField("不互认原因（院内）", max_length=10, blank=True, default="")
    platform_reason_code = models.CharField("不互认原因代码（平台）", max_length=2, blank=True, default="")
    reason_name = models.CharField("不互认原因", max_length=100, blank=True, default="")
    note = models.CharField("说明", max_length=500, blank=True, default="")
    doctor_staff_no = models.CharField("医师工号", max_length=20)
    doctor_name = models.CharField("医师姓名", max_length=50)
    dept_code = models.CharField("科室代码", max_length=20)
    dept_name = models.CharField("科室名称", max_length=100)
    std_dept_code = models.CharField("标准科室代码", max_length=20)
    std_dept_name = models.CharField("标准科室名称", max_length=50)
    charge_avoided = models.DecimalField("避免收费（元，估算）", max_digits=10, decimal_places=2, default=0)
    bulk = models.BooleanField("批量操作", default=False)
    decided_at = models.DateTimeField("决定时间", db_index=True)
    current = models.BooleanField("当前有效", default=True)
    replaced_by = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="replaces", verbose_name="被替代为"
    )
    outbox_record_id = models.BigIntegerField("上传记录", null=True, blank=True)

    class Meta:
        verbose_name = "互认决定"
        verbose_name_plural = "互认决定"
        ordering = ["-decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["encounter", "kind", "order_id", "external_report_id", "standard_code"],
                condition=Q(current=True),
                name="one_current_decision",
            ),
        ]
        indexes = [
            models.Index(fields=["current", "decided_at"]),
            models.Index(fields=["encounter", "current"]),
        ]

    def __str__(self):
        return f"{self.order_item_name} {self.standard_name} {self.get_decision_display()}"

    @property
    def recognized(self) -> bool:
        return self.decision == self.Value.RECOGNIZED


class AuditEntry(models.Model):
    """Who did what with which patient's external report, and when (调阅, 互认, 不互认, 撤销 …)."""

    class Action(models.TextChoices):
        VIEW_REPORT = "view_report", "调阅报告"
        VIEW_IMAGES = "view_images", "调阅影像"
        RECOGNIZED = "recognized", "互认"
        REFUSED = "refused", "不互认"
        REVOKE_RECOGNIZED = "revoke_recognized", "撤销互认"
        REVOKE_REFUSED = "revoke_refused", "撤销不互认"
        BULK_RECOGNIZED = "bulk_recognized", "批量互认"

    at = models.DateTimeField("时间", auto_now_add=True, db_index=True)
    action = models.CharField("操作", max_length=20, choices=Action.choices)
    doctor_staff_no = models.CharField("医师工号", max_length=20, blank=True, default="", db_index=True)
    doctor_name = models.CharField("医师姓名", max_length=50, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, verbose_name="登录用户"
    )
    patient_name = models.CharField("患者姓名", max_length=50, blank=True, default="")
    patient_id_masked = models.CharField("证件号（脱敏）", max_length=32, blank=True, default="")
    patient_key = models.CharField("证件摘要", max_length=40, blank=True, default="", db_index=True)
    visit_id = models.CharField("就诊流水号", max_length=32, blank=True, default="")
    kind = models.CharField("类别", max_length=4, choices=Kind.choices, blank=True, default="")
    external_org_code = models.CharField("报告机构代码", max_length=22, blank=True, default="")
    external_org_name = models.CharField("报告机构", max_length=70, blank=True, default="")
    report_id = models.CharField("报告单号", max_length=20, blank=True, default="", db_index=True)
    item = models.CharField("项目", max_length=100, blank=True, default="")
    order_id = models.CharField("医嘱号", max_length=32, blank=True, default="")
    client_ip = models.GenericIPAddressField("来源地址", null=True, blank=True)
    detail = models.JSONField("详情", default=dict, blank=True)

    class Meta:
        verbose_name = "调阅与互认审计"
        verbose_name_plural = "调阅与互认审计"
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.report_id} {self.doctor_name}"

    @property
    def patient_display(self) -> str:
        return mask_name(self.patient_name)
