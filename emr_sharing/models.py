"""Local state of the EMR intake: the HIS view puller's cursors and issues, and records held for
a code mapping. A submitted record is otherwise an outbox row (hospital_interop.uploads.OutboxRecord),
source = the calling system."""

from django.db import models
from django.db.models import Q

from hospital_interop.atrest import SealedJSONField


class PullCursor(models.Model):
    """High-water mark of one HIS view source: rows after ``position`` have not been read yet."""

    source = models.CharField("数据源", max_length=100, unique=True, help_text="拉取配置中的 name")
    view = models.CharField("视图", max_length=200, blank=True, default="")
    position = models.JSONField("已读到", null=True, blank=True, help_text="游标列的最后取值")
    rows_read = models.PositiveBigIntegerField("累计读取行数", default=0)
    records_created = models.PositiveBigIntegerField("累计新保存记录", default=0)
    rows_rejected = models.PositiveBigIntegerField("累计校验未通过行数", default=0)
    last_run_at = models.DateTimeField("最近运行", null=True, blank=True)
    last_success_at = models.DateTimeField("最近成功", null=True, blank=True)
    last_error = models.TextField("最近错误", blank=True, default="")

    class Meta:
        verbose_name = "视图拉取进度"
        verbose_name_plural = "视图拉取进度"
        ordering = ["source"]

    def __str__(self):
        return self.source


class PullIssue(models.Model):
    """A HIS view row that failed validation: skipped until the HIS changes it (its cursor moves)."""

    source = models.CharField("数据源", max_length=100, db_index=True)
    record_type = models.CharField("记录类型", max_length=64)
    position = models.JSONField("游标取值")
    business_key = models.CharField("主键", max_length=255, blank=True, default="")
    errors = models.JSONField("错误", default=list)
    created_at = models.DateTimeField("发现时间", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "视图数据问题"
        verbose_name_plural = "视图数据问题"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.source} {self.business_key or self.position}"


class HeldRecord(models.Model):
    """A record whose hospital codes are not all mapped yet (待对照): kept as submitted (sealed),
    not sent; released through the outbox once the dictionaries map every code (services.release_held).
    One held row per record key at a time: a newer submission of the key replaces it."""

    class State(models.TextChoices):
        HELD = "held", "待对照"
        RELEASED = "released", "已对照并排队发送"
        SUPERSEDED = "superseded", "已被新版本取代"
        REJECTED = "rejected", "对照后校验未通过"

    record_type = models.CharField("记录类型", max_length=64)
    interface = models.CharField("市平台服务", max_length=64)
    business_key = models.CharField("主键", max_length=255)
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.HELD)
    record = SealedJSONField("提交的记录", purpose="emr.held_record")  # SM4-GCM (atrest.py)
    content_hash = models.CharField("内容摘要", max_length=64)
    problems = models.JSONField(
        "待对照问题", default=list, help_text="[{field, rule, message, dictionary, valueSet, hospitalCode}]"
    )
    source = models.CharField("来源系统", max_length=64, blank=True, default="")
    patient_display = models.CharField("患者", max_length=64, blank=True, default="")
    patient_id_hash = models.CharField("患者标识摘要", max_length=64, blank=True, default="", db_index=True)
    received_at = models.DateTimeField("首次接收", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    released_at = models.DateTimeField("放行时间", null=True, blank=True)
    released_record = models.ForeignKey(
        "uploads.OutboxRecord",
        verbose_name="放行后的上传记录",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = "待对照记录"
        verbose_name_plural = "待对照记录"
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["state", "interface", "business_key"], name="emr_held_state_key")]
        constraints = [
            models.UniqueConstraint(
                fields=["interface", "business_key"], condition=Q(state="held"), name="emr_one_held_per_key"
            )
        ]

    def __str__(self):
        return f"{self.record_type} {self.business_key} [{self.get_state_display()}]"


class HeldCode(models.Model):
    """One hospital code a held record waits for (what the release and the unmapped report query)."""

    held = models.ForeignKey(HeldRecord, models.CASCADE, related_name="codes")
    dictionary = models.CharField("字典", max_length=20)  # department | valueSet (spec hospitalCodes)
    value_set = models.CharField("值域", max_length=40)
    code = models.CharField("院内代码", max_length=64)
    name = models.CharField("院内名称", max_length=100, blank=True, default="")
    field = models.CharField("字段", max_length=200)

    class Meta:
        verbose_name = "待对照代码"
        verbose_name_plural = "待对照代码"
        indexes = [models.Index(fields=["dictionary", "value_set", "code"], name="emr_held_code")]

    def __str__(self):
        return f"{self.value_set} {self.code}"


class BackfillCheckpoint(models.Model):
    """How far a backfill run (``manage.py emr_backfill``) got: committed in the same transaction as
    each batch it stored, so a run killed at any moment and started again with the same files
    continues after the last stored batch, and every record ends up stored exactly once.

    ``run_digest`` names the run: SHA-256 over the record type option and each file's content
    digest, in order (a changed file is a new run). ``file_index`` and ``offset``: the next byte
    to read; ``line``: lines of that file read so far. The counts are the run's so far, and
    ``error_bytes`` the length of the error report when the checkpoint was written (a resumed run
    cuts the report back to it: lines rejected after it are read and reported again)."""

    run_digest = models.CharField("回填文件摘要", max_length=64, unique=True)
    files = models.JSONField("文件", default=list)
    file_index = models.PositiveIntegerField("当前文件", default=0)
    offset = models.PositiveBigIntegerField("已读字节", default=0)
    line = models.PositiveBigIntegerField("已读行", default=0)
    lines = models.PositiveBigIntegerField("记录行数", default=0)
    created = models.PositiveBigIntegerField("新保存", default=0)
    unchanged = models.PositiveBigIntegerField("与已有版本相同", default=0)
    invalid = models.PositiveBigIntegerField("有误", default=0)
    by_type = models.JSONField("按记录类型", default=dict)
    error_file = models.CharField("错误报告", max_length=500, blank=True, default="")
    error_bytes = models.PositiveBigIntegerField("错误报告字节", default=0)
    started_at = models.DateTimeField("开始时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)

    class Meta:
        verbose_name = "回填进度"
        verbose_name_plural = "回填进度"

    def __str__(self):
        return f"{', '.join(self.files)} @ {self.file_index}:{self.line}"
