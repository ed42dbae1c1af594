"""Lab reports as the LIS hands them over, their versions, and the drop-folder transfer state.

``LabReport``          one row per report number (报告单号): current version and status.
``LabReportVersion``   every approval whose content differs from the previous one (审核 / 再审核);
                       the content is the LIS schema of ``intake.py`` after normalisation, frozen.
``LabArchivedPdf``     the PDF bytes of a version as last archived (served as such, never re-rendered).
``LabTransfer``        one PDF + index pair found in the drop folder, with its state:
                       discovered → enqueued → accepted → cleared (or quarantined / superseded).
``LabTransferLog``     what the transfer service did, when, to which file (the transfer log).

The ``lab`` app (``apps.LabConfig``); its tables keep the names they got inside
``mutual_recognition`` (``Meta.db_table``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from hospital_interop.atrest import SealedBytesField
from hospital_interop.logmask import mask_name


class LabReport(models.Model):
    class Status(models.TextChoices):
        APPROVED = "approved", "已审核"
        ARCHIVED = "archived", "已归档"

    report_id = models.CharField("报告单号", max_length=20, unique=True)
    version = models.PositiveIntegerField("当前版本", default=1)
    status = models.CharField("状态", max_length=16, choices=Status.choices, default=Status.APPROVED)
    title = models.CharField("报告名称", max_length=100)
    patient_name = models.CharField("患者姓名", max_length=50)
    patient_key = models.CharField("证件摘要", max_length=40, db_index=True)
    id_masked = models.CharField("证件号（脱敏）", max_length=32, blank=True, default="")
    visit_id = models.CharField("就诊流水号", max_length=32, blank=True, default="", db_index=True)
    request_dept = models.CharField("申请科室", max_length=20, blank=True, default="")
    reported_at = models.DateTimeField("报告时间", db_index=True)
    approved_at = models.DateTimeField("审核时间")
    archived_at = models.DateTimeField("归档时间", null=True, blank=True)
    source = models.CharField("来源系统", max_length=64, blank=True, default="")
    created_at = models.DateTimeField("接收时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        db_table = "mutual_recognition_labreport"  # created when this app was part of mutual_recognition
        verbose_name = verbose_name_plural = "检验报告"
        ordering = ["-reported_at", "-id"]

    def __str__(self):
        return f"{self.report_id} v{self.version} {mask_name(self.patient_name)}"

    @property
    def patient_display(self) -> str:
        return mask_name(self.patient_name)


class LabReportVersion(models.Model):
    report = models.ForeignKey(LabReport, models.CASCADE, related_name="versions", verbose_name="报告")
    version = models.PositiveIntegerField("版本")
    content = models.JSONField("报告内容（LIS 格式）")
    content_hash = models.CharField("内容摘要（SM3）", max_length=64)
    approved_at = models.DateTimeField("审核时间")
    archived_at = models.DateTimeField("归档时间", null=True, blank=True)
    pdf_file = models.CharField("PDF 文件名", max_length=120, blank=True, default="")
    index_file = models.CharField("索引文件名", max_length=120, blank=True, default="")
    pdf_sm3 = models.CharField("PDF SM3", max_length=64, blank=True, default="")
    signed = models.BooleanField("含电子签名", default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = (
            "mutual_recognition_labreportversion"  # created when this app was part of mutual_recognition
        )
        verbose_name = verbose_name_plural = "检验报告版本"
        ordering = ["report", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["report", "version"], name="lab_report_version_unique")
        ]

    def __str__(self):
        return f"{self.report.report_id} v{self.version}"


class LabArchivedPdf(models.Model):
    """The exact PDF bytes of a version's last archive (归档), kept so that the version's PDF is
    always served as archived and never rendered again (its SM3 is ``LabReportVersion.pdf_sm3``).
    A table of its own so that reading versions never loads PDFs."""

    version = models.OneToOneField(
        LabReportVersion, models.CASCADE, related_name="archived_pdf", verbose_name="报告版本"
    )
    data = SealedBytesField("PDF 原件", purpose="lab.archived_pdf")  # SM4-GCM sealed (atrest.py)
    sm3 = models.CharField("PDF SM3", max_length=64)
    archived_at = models.DateTimeField("归档时间")

    class Meta:
        db_table = "mutual_recognition_labarchivedpdf"  # created when this app was part of mutual_recognition
        verbose_name = verbose_name_plural = "检验报告归档 PDF"

    def __str__(self):
        return f"{self.version} ({self.sm3[:12]}…)"


class LabTransfer(models.Model):
    class State(models.TextChoices):
        DISCOVERED = "discovered", "已发现"
        ENQUEUED = "enqueued", "已入队待上传"
        ACCEPTED = "accepted", "平台已接收"
        CLEARED = "cleared", "已清理"
        QUARANTINED = "quarantined", "已隔离"
        SUPERSEDED = "superseded", "已被新版本取代"

    report_id = models.CharField("报告单号", max_length=20, blank=True, default="", db_index=True)
    report_version = models.PositiveIntegerField("报告版本", default=0)
    stem = models.CharField("文件名（不含扩展名）", max_length=120)
    pdf_name = models.CharField("PDF 文件", max_length=120, blank=True, default="")
    index_name = models.CharField("索引文件", max_length=120, blank=True, default="")
    pdf_sm3 = models.CharField("PDF SM3", max_length=64, blank=True, default="")
    index_sm3 = models.CharField("索引 SM3", max_length=64, blank=True, default="")
    pdf_size = models.PositiveIntegerField("PDF 大小", default=0)
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.DISCOVERED)
    reason = models.TextField("原因", blank=True, default="")
    errors = models.JSONField("错误明细", default=list, blank=True)
    pdf_record = models.ForeignKey(
        "uploads.OutboxRecord",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="PDF 上传记录",
    )
    detail_record = models.ForeignKey(
        "uploads.OutboxRecord",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="明细上传记录",
    )
    patient_name = models.CharField("患者姓名", max_length=50, blank=True, default="")
    disposition = models.CharField(
        "处置", max_length=300, blank=True, default="", help_text="归档目录中的位置，或“已删除”，或隔离目录"
    )
    discovered_at = models.DateTimeField("发现时间", auto_now_add=True)
    enqueued_at = models.DateTimeField("入队时间", null=True, blank=True)
    accepted_at = models.DateTimeField("平台接收时间", null=True, blank=True)
    cleared_at = models.DateTimeField("清理时间", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        db_table = "mutual_recognition_labtransfer"  # created when this app was part of mutual_recognition
        verbose_name = verbose_name_plural = "检验报告文件传输"
        ordering = ["-discovered_at", "-id"]
        constraints = [
            # idempotency: the same report files are enqueued once, however often they are seen
            models.UniqueConstraint(
                fields=["report_id", "pdf_sm3", "index_sm3"],
                name="lab_transfer_once",
                condition=~Q(state="quarantined"),
            ),
        ]
        indexes = [models.Index(fields=["state", "discovered_at"], name="lab_transfer_state")]

    def __str__(self):
        return f"{self.stem} [{self.get_state_display()}]"

    @property
    def patient_display(self) -> str:
        return mask_name(self.patient_name)


class LabTransferLog(models.Model):
    class Event(models.TextChoices):
        STARTED = "started", "服务启动"
        DISCOVERED = "discovered", "发现文件"
        ENQUEUED = "enqueued", "已入队"
        ACCEPTED = "accepted", "平台已接收"
        CLEARED = "cleared", "已清理"
        QUARANTINED = "quarantined", "已隔离"
        DUPLICATE = "duplicate", "重复文件"
        SUPERSEDED = "superseded", "被新版本取代"
        WAITING = "waiting", "等待配对"
        ERROR = "error", "错误"
        REVIEWED = "reviewed", "审核通过，自动归档"
        WITHDRAWN = "withdrawn", "撤销审核"

    at = models.DateTimeField("时间", auto_now_add=True, db_index=True)
    transfer = models.ForeignKey(
        LabTransfer, models.SET_NULL, null=True, blank=True, related_name="log", verbose_name="传输"
    )
    event = models.CharField("事件", max_length=16, choices=Event.choices)
    file_name = models.CharField("文件", max_length=200, blank=True, default="")
    report_id = models.CharField("报告单号", max_length=20, blank=True, default="", db_index=True)
    message = models.TextField("说明", blank=True, default="")

    class Meta:
        db_table = "mutual_recognition_labtransferlog"  # created when this app was part of mutual_recognition
        verbose_name = verbose_name_plural = "检验报告传输日志"
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_event_display()} {self.file_name}"
