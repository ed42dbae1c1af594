"""Local state of the HIS view puller. The intake itself keeps no table of its own: a submitted
record is an outbox row (hospital_interop.uploads.OutboxRecord), source = the calling system."""

from django.db import models


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
