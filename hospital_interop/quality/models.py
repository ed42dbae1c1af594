"""Data-quality findings of the commission (卫健委) and the QC centre (质控中心), pulled with
QC_FEEDBACK_QUERY (interfaces.md §G) and answered with QC_FEEDBACK_REPLY through the outbox.

A finding names a record by interface and business key; it is attached to the outbox row that
holds that record's latest version (none for a ``missing`` record the hospital never stored).
"""

from django.db import models

from hospital_interop.uploads.models import OutboxRecord


class Issuer(models.TextChoices):
    WJW = "WJW", "卫健委"
    ZKZX = "ZKZX", "质控中心"


class Kind(models.TextChoices):
    CONTENT = "content", "内容问题"
    MISSING = "missing", "应传未传"
    LATE = "late", "超时上传"


class Level(models.TextChoices):
    ERROR = "error", "错误"
    WARNING = "warning", "警告"


class Assignee(models.TextChoices):
    LAB = "lab", "检验科"
    OPS = "ops", "运维"
    EMR = "emr", "电子病历"


class FindingState(models.TextChoices):
    OPEN = "open", "待处理"
    ANSWERED = "answered", "已回复"


class ReplyResult(models.TextChoices):
    # the values are the wire codes of QC_FEEDBACK_REPLY.result
    FIXED = "1", "已修正并重传"
    NO_CHANGE = "2", "无需修改"
    CANNOT_FIX = "3", "无法修改"


class QcFinding(models.Model):
    feedback_id = models.CharField("反馈编号", max_length=40, unique=True)
    issuer = models.CharField("发布机构", max_length=8, choices=Issuer.choices)
    kind = models.CharField("问题类别", max_length=16, choices=Kind.choices)
    level = models.CharField("级别", max_length=16, choices=Level.choices, default=Level.ERROR)
    interface = models.CharField("接口", max_length=64)
    business_key = models.CharField("主键", max_length=255)
    field = models.CharField("问题字段", max_length=200, blank=True, default="")
    rule = models.CharField("质控规则", max_length=64, blank=True, default="")
    message = models.TextField("问题说明")
    issued_at = models.DateTimeField("发布时间")
    reply_by = models.DateTimeField("回复截止")
    received_at = models.DateTimeField("拉取时间")
    times_issued = models.PositiveIntegerField("发布次数", default=1, help_text="平台对回复不满意会再次发布")

    record = models.ForeignKey(
        OutboxRecord,
        verbose_name="上传记录",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="qc_findings",
    )
    record_version = models.PositiveIntegerField("记录版本", null=True, blank=True)
    patient_id_hash = models.CharField("患者标识摘要", max_length=64, blank=True, default="")

    assignee = models.CharField("负责角色", max_length=8, choices=Assignee.choices, default=Assignee.OPS)
    state = models.CharField("状态", max_length=16, choices=FindingState.choices, default=FindingState.OPEN)
    reply_result = models.CharField(
        "处理结果", max_length=1, choices=ReplyResult.choices, blank=True, default=""
    )
    reply_note = models.TextField("处理说明", blank=True, default="")
    resent_at = models.DateTimeField("重传时间", null=True, blank=True)
    replied_at = models.DateTimeField("回复时间", null=True, blank=True)
    replied_by = models.CharField("回复人", max_length=150, blank=True, default="")
    reply_record = models.ForeignKey(
        OutboxRecord,
        verbose_name="回复上传记录",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "数据质量反馈"
        verbose_name_plural = "数据质量反馈"
        ordering = ["reply_by", "pk"]
        permissions = [("handle_lab_findings", "查看并回复分派给检验科的数据质量反馈")]
        indexes = [
            models.Index(fields=["state", "reply_by"], name="qc_state_due"),
            models.Index(fields=["interface", "business_key"], name="qc_record_key"),
        ]

    def __str__(self):
        return f"{self.feedback_id} {self.get_kind_display()} {self.interface}"


class PullCursor(models.Model):
    """Where the pull of one feed stands: the platform's opaque cursor, kept between runs."""

    feed = models.CharField("反馈来源", max_length=64, unique=True)
    cursor = models.CharField("游标", max_length=128, blank=True, default="")
    pulled_at = models.DateTimeField("最近拉取", null=True, blank=True)
    last_error = models.TextField("最近错误", blank=True, default="")

    class Meta:
        verbose_name = "反馈拉取游标"
        verbose_name_plural = "反馈拉取游标"

    def __str__(self):
        return f"{self.feed}: {self.cursor or '（从头）'}"
