"""Exam reports from RIS/PACS, the daily-summary runs, and DICOM study-sync jobs.

``ExamReport``       one report by its report number (检查报告单编号); the latest approved content as
                     received (hospital codes), its PDF, and links to the outbox rows of its uploads
``DailySummaryRun``  one computation of 检查日报 for a date (scheduled or re-run by ops)
``StudySync``        a persistent job (like Orthanc's job engine): one study to push to the
                     front-end processor, with retry timing computed by the delivery engine's policy
``StudyInstance``    one SOP instance of a job, keyed by the SOP Instance UID of its data set; *stored*
                     only after a success status from the peer; a failure is the instance's own
                     (retried behind the others, or held for ops with its reason), never the study's

The ``exam`` app (``apps.ExamConfig``); its tables keep the names they got inside
``mutual_recognition`` (``Meta.db_table``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from hospital_interop.atrest import SealedBytesField


class ExamReport(models.Model):
    class State(models.TextChoices):
        HELD = "held", "待对照"  # a hospital code has no standard mapping: nothing uploaded yet
        ACTIVE = "active", "已审核上传"
        WITHDRAWN = "withdrawn", "已撤回作废"

    report_id = models.CharField("检查报告单编号", max_length=20, unique=True)
    accession_no = models.CharField("检查号", max_length=32, blank=True, default="", db_index=True)
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.HELD)
    version = models.PositiveIntegerField("审核版本", default=0, help_text="每次审核（含重新审核）加一")
    content = models.JSONField("报告内容", default=dict, help_text="RIS 提交的内容（院内代码），不含 PDF")
    content_hash = models.CharField("内容摘要", max_length=64, blank=True, default="")
    problems = models.JSONField("对照问题", default=list, blank=True)
    pdf_name = models.CharField("PDF 文件名", max_length=100, blank=True, default="")
    pdf_size = models.PositiveIntegerField("PDF 大小", default=0)
    pdf_content = SealedBytesField("PDF", purpose="exam.report_pdf", default=b"")  # SM4-GCM (atrest.py)

    patient_display = models.CharField("患者", max_length=64, blank=True, default="")
    patient_id_hash = models.CharField("患者标识摘要", max_length=64, blank=True, default="")
    exam_item = models.CharField("检查项目", max_length=130, blank=True, default="")
    dept_std_code = models.CharField("执行科室标准代码", max_length=20, blank=True, default="")
    dept_std_name = models.CharField("执行科室标准名称", max_length=50, blank=True, default="")
    study_instance_uid = models.CharField("Study Instance UID", max_length=64, blank=True, default="")

    void_reason = models.CharField("作废原因", max_length=200, blank=True, default="")
    source = models.CharField("来源系统", max_length=64, blank=True, default="")
    received_at = models.DateTimeField("首次接收", auto_now_add=True)
    approved_at = models.DateTimeField("最近审核", null=True, blank=True)
    withdrawn_at = models.DateTimeField("撤回时间", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    result_record = models.ForeignKey(
        "uploads.OutboxRecord",
        verbose_name="结果上传",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    pdf_record = models.ForeignKey(
        "uploads.OutboxRecord",
        verbose_name="PDF 上传",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    void_record = models.ForeignKey(
        "uploads.OutboxRecord",
        verbose_name="作废上传",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        db_table = "mutual_recognition_examreport"  # created when this app was part of mutual_recognition
        verbose_name = "检查报告"
        verbose_name_plural = "检查报告"
        indexes = [models.Index(fields=["state", "updated_at"], name="exam_report_state")]

    def __str__(self):
        return f"{self.report_id} [{self.get_state_display()}]"


class DailySummaryRun(models.Model):
    stat_date = models.DateField("统计日期")
    trigger = models.CharField("触发方式", max_length=16, choices=[("schedule", "定时"), ("ops", "手工重报")])
    requested_by = models.CharField("操作人", max_length=150, blank=True, default="")
    rows = models.JSONField(
        "各科室数量", default=list, help_text="[{deptCode, deptName, reportCount, studyCount}]"
    )
    record_ids = models.JSONField("上传记录", default=list)
    created_at = models.DateTimeField("生成时间", auto_now_add=True)

    class Meta:
        db_table = (
            "mutual_recognition_dailysummaryrun"  # created when this app was part of mutual_recognition
        )
        verbose_name = "检查日报"
        verbose_name_plural = "检查日报"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["stat_date", "trigger"], name="exam_daily_date")]

    def __str__(self):
        return f"{self.stat_date} ({self.get_trigger_display()})"

    @property
    def report_total(self) -> int:
        return sum(r.get("reportCount", 0) for r in self.rows)


class StudySync(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "待同步"
        RUNNING = "running", "同步中"
        RETRY = "retry", "等待重试"
        ATTENTION = "attention", "需人工处理"
        DONE = "done", "已完成"

    class Source(models.TextChoices):
        FOLDER = "folder", "检查目录"
        PACS = "pacs", "PACS 调取"

    study_instance_uid = models.CharField("Study Instance UID", max_length=64, unique=True)
    accession_no = models.CharField("检查号", max_length=32, blank=True, default="")
    report_id = models.CharField("检查报告单编号", max_length=20, blank=True, default="")
    patient_display = models.CharField("患者", max_length=64, blank=True, default="")
    source = models.CharField("影像来源", max_length=8, choices=Source.choices)
    folder = models.CharField("影像目录", max_length=500, blank=True, default="")
    rescan = models.BooleanField("下次运行重新扫描", default=True)

    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField("尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", null=True, blank=True)
    lease_until = models.DateTimeField("占用至", null=True, blank=True)
    claimed_by = models.CharField("处理进程", max_length=64, blank=True, default="")

    total = models.PositiveIntegerField("实例总数", default=0)
    stored = models.PositiveIntegerField("已送达", default=0)
    rejected = models.PositiveIntegerField(
        "无法送达", default=0, help_text="等待人工处理的实例：被前置机拒收、文件无法发送或多次发送失败"
    )
    skipped_files = models.JSONField("跳过的文件", default=list, blank=True)
    destination = models.CharField("前置机", max_length=120, blank=True, default="")
    last_error = models.TextField("最后错误", blank=True, default="")

    event_at = models.DateTimeField("事件时间")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    started_at = models.DateTimeField("最近开始", null=True, blank=True)
    finished_at = models.DateTimeField("完成时间", null=True, blank=True)
    source_system = models.CharField("来源系统", max_length=64, blank=True, default="")

    class Meta:
        db_table = "mutual_recognition_studysync"  # created when this app was part of mutual_recognition
        verbose_name = "影像同步任务"
        verbose_name_plural = "影像同步任务"
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="study_sync_due", condition=Q(state__in=["pending", "retry"])
            ),
            models.Index(fields=["lease_until"], name="study_sync_leased", condition=Q(state="running")),
            models.Index(fields=["state", "updated_at"], name="study_sync_state"),
        ]

    def __str__(self):
        return f"{self.study_instance_uid} {self.stored}/{self.total} [{self.get_state_display()}]"

    @property
    def percent(self) -> int:
        return int(100 * self.stored / self.total) if self.total else 0


class StudyInstance(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "待发送"
        RETRY = "retry", "等待重试"  # lost or refused for lack of resources: sent again behind the others
        STORED = "stored", "已送达"
        REJECTED = "rejected", "被拒收"  # by the peer, for good (refused context or final status)
        INVALID = "invalid", "文件无法发送"  # the file failed the checks made before sending
        ATTENTION = "attention", "需人工处理"  # failed INSTANCE_MAX_FAILURES times

    HELD_STATES = (State.REJECTED, State.INVALID, State.ATTENTION)  # not sent again until ops re-queue them
    HISTORY_LENGTH = 20

    job = models.ForeignKey(StudySync, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField("SOP Instance UID", max_length=64, help_text="数据集中的 UID")
    sop_class_uid = models.CharField("SOP Class UID", max_length=64)
    meta_sop_instance_uid = models.CharField(
        "文件元信息中的 SOP Instance UID",
        max_length=64,
        blank=True,
        default="",
        help_text="与数据集不同时记录",
    )
    transfer_syntax_uid = models.CharField("传输语法", max_length=64)
    series_instance_uid = models.CharField("Series Instance UID", max_length=64, blank=True, default="")
    path = models.CharField("文件", max_length=1000)
    size = models.PositiveBigIntegerField("大小", default=0)
    data_offset = models.PositiveIntegerField("数据集起点", default=0)
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.PENDING)
    status = models.PositiveIntegerField("前置机状态码", null=True, blank=True)
    sent_count = models.PositiveIntegerField("发送次数", default=0)
    failures = models.PositiveIntegerField("失败次数", default=0, help_text="发送中断或前置机暂时拒收的次数")
    next_attempt_at = models.DateTimeField("下次尝试", null=True, blank=True)
    stored_at = models.DateTimeField("送达时间", null=True, blank=True)
    last_error = models.CharField("最后错误", max_length=500, blank=True, default="")
    history = models.JSONField(
        "历史", default=list, blank=True, help_text="[{at, event, message}]，最近的在后"
    )

    class Meta:
        db_table = "mutual_recognition_studyinstance"  # created when this app was part of mutual_recognition
        verbose_name = "影像实例"
        verbose_name_plural = "影像实例"
        constraints = [
            models.UniqueConstraint(fields=["job", "sop_instance_uid"], name="study_instance_unique")
        ]
        indexes = [models.Index(fields=["job", "state"], name="study_instance_state")]

    def __str__(self):
        return self.sop_instance_uid
