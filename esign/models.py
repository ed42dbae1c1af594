"""E-signature data: the unified code table's CA parameters, the signers, their signing sessions,
the lab reports under review and the signatures stored on approval."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class SystemParameter(models.Model):
    """统一代码表 (system parameters). Secret values are stored SM4-encrypted (see esign.secrets)."""

    key = models.CharField("参数代码", max_length=64, unique=True)
    value = models.TextField("参数值", blank=True, default="")
    description = models.CharField("说明", max_length=200, blank=True, default="")
    is_secret = models.BooleanField("加密存储", default=False)
    updated_at = models.DateTimeField("修改时间", auto_now=True)
    updated_by = models.CharField("修改人", max_length=150, blank=True, default="")

    class Meta:
        verbose_name = verbose_name_plural = "统一代码表参数"
        ordering = ["key"]
        permissions = [("manage_ca", "维护 CA 参数与人员 CA 设置")]

    def __str__(self) -> str:
        return self.key


class SignerProfile(models.Model):
    """人员 CA 设置: a lab staff member's CA identity, UKey serial and whether CA is enabled for them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signer", verbose_name="用户"
    )
    staff_no = models.CharField("工号", max_length=20, unique=True, null=True, blank=True)
    name = models.CharField("姓名", max_length=30, blank=True, default="")
    id_number_enc = models.TextField("身份证号（加密）", blank=True, default="")
    id_number_masked = models.CharField("身份证号", max_length=18, blank=True, default="")
    mobile = models.CharField("手机号", max_length=11, blank=True, default="")
    ca_user_id = models.CharField("CA 用户标识", max_length=64, blank=True, default="", db_index=True)
    cert_sn = models.CharField("协同签名证书序列号", max_length=64, blank=True, default="")
    ukey_serial = models.CharField("UKey 唯一标识", max_length=64, unique=True, null=True, blank=True)
    ca_enabled = models.BooleanField("启用 CA 验证", default=True)
    registered_at = models.DateTimeField("注册时间", null=True, blank=True)
    updated_at = models.DateTimeField("修改时间", auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "人员 CA 设置"
        ordering = ["staff_no"]

    def __str__(self) -> str:
        return f"{self.name or self.user.get_username()}（{self.staff_no or '未注册'}）"

    @property
    def registered(self) -> bool:
        return bool(self.ca_user_id)


class SigningSession(models.Model):
    """An e-signature login: UKey (one workstation per user) or QR (any number of workstations)."""

    class Kind(models.TextChoices):
        UKEY = "ukey", "UKey"
        QR = "qr", "二维码"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signing_sessions"
    )
    kind = models.CharField("方式", max_length=8, choices=Kind.choices)
    workstation_id = models.CharField("管理机标识", max_length=64)
    client_ip = models.GenericIPAddressField("客户端 IP", null=True, blank=True)
    django_session_key = models.CharField(max_length=64, blank=True, default="")
    cert_sn = models.CharField("证书序列号", max_length=64)
    certificate = models.TextField("证书（Base64）")
    key_serial = models.CharField("UKey 唯一标识", max_length=64, blank=True, default="")
    ca_token = models.CharField(max_length=128, blank=True, default="")
    started_at = models.DateTimeField("登录时间", default=timezone.now)
    last_seen_at = models.DateTimeField("最近使用", default=timezone.now)
    expires_at = models.DateTimeField("失效时间")
    ended_at = models.DateTimeField("退出时间", null=True, blank=True)
    end_reason = models.CharField("退出原因", max_length=100, blank=True, default="")

    class Meta:
        verbose_name = verbose_name_plural = "电子签名会话"
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "kind", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.user} @ {self.workstation_id[:8]}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None and self.expires_at > timezone.now()


class ReviewReport(models.Model):
    """One version of a lab report waiting for review in one of the six review modules (审核模块).

    A report bound to a lab version (``lab_version``, created by ``esign.services.open_review``)
    holds a copy of exactly the facts the signature covers (``esign.content``); a new version of
    the report is a new row and needs its own review and signature.
    """

    class Module(models.TextChoices):
        CLINICAL = "clinical", "临检"
        IMMUNO = "immuno", "免疫"
        BIOCHEM = "biochem", "生化组"
        MOLECULAR = "molecular", "分子生物"
        MICRO = "micro", "微生物"
        MARROW = "marrow", "临检骨髓组"

    class Status(models.TextChoices):
        PENDING = "pending", "待审核"
        SIGNING = "signing", "待手机确认签名"
        APPROVED = "approved", "已审核"
        SUPERSEDED = "superseded", "已被新版本取代"

    module = models.CharField("审核模块", max_length=16, choices=Module.choices, db_index=True)
    report_id = models.CharField("报告单号", max_length=64)
    report_version = models.PositiveIntegerField("报告版本", default=1)
    lab_version = models.ForeignKey(
        "lab.LabReportVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reviews",
        verbose_name="检验报告版本",
    )
    patient_name = models.CharField("患者姓名", max_length=50)
    patient_id = models.CharField("病案号", max_length=32, blank=True, default="")
    sex = models.CharField("性别", max_length=4, blank=True, default="")
    age = models.CharField("年龄", max_length=16, blank=True, default="")
    specimen = models.CharField("标本", max_length=50, blank=True, default="")
    specimen_no = models.CharField("标本号", max_length=32, blank=True, default="")
    title = models.CharField("检验项目", max_length=100)
    items = models.JSONField("结果", default=list)  # [{code, name, result, unit, range, flag}]
    reported_by = models.CharField("检验者", max_length=50, blank=True, default="")
    # the reviewer the report names (LIS reviewDoctor); only that person may sign it. Blank on a
    # report that names nobody (the demo reports): whoever approves it is the reviewer.
    reviewer_staff_no = models.CharField("报告审核者工号", max_length=20, blank=True, default="")
    reviewer_name = models.CharField("报告审核者", max_length=50, blank=True, default="")
    # the LIS's reviewer candidates ([{staffNo, name}], POST /api/lab/v1/reviews): shown in the queue
    reviewer_candidates = models.JSONField("候选审核者", default=list, blank=True)
    collected_at = models.DateTimeField("采样时间", null=True, blank=True)
    tested_at = models.DateTimeField("检验时间", null=True, blank=True)
    status = models.CharField(
        "状态", max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="审核者",
    )
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    signed = models.BooleanField("已电子签名", default=False)
    review_note = models.CharField("审核说明", max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "待审核检验报告"
        ordering = ["module", "-tested_at", "report_id", "-report_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["report_id", "report_version"], name="review_report_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_module_display()} {self.report_id} v{self.report_version}"


class ReportSignature(models.Model):
    """The signature stored on approval. It binds the report number and version, the SM3 of the
    exact signed text (``original_hash``), the signer and their staff number, the certificate
    serial and the timestamp token, with the outcome of the token's check at signing time."""

    class Method(models.TextChoices):
        UKEY = "ukey", "UKey 签名"
        AUTO = "auto", "自动签名"
        PHONE = "phone", "手机确认签名"

    report = models.ForeignKey(ReviewReport, on_delete=models.PROTECT, related_name="signatures")
    report_number = models.CharField(
        "报告单号", max_length=64, default=""
    )  # ReviewReport.report_id (report_id is the FK)
    report_version = models.PositiveIntegerField("报告版本", default=1)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField("签名人", max_length=50)
    signer_staff_no = models.CharField("签名人工号", max_length=20)
    method = models.CharField("签名方式", max_length=8, choices=Method.choices)
    original_text = models.TextField("签名原文")
    original_hash = models.CharField("原文 SM3", max_length=64)
    signature = models.TextField("签名值（Base64）")
    algorithm = models.CharField("签名算法", max_length=20, default="SM3withSM2")
    certificate = models.TextField("签名证书（Base64）")
    cert_sn = models.CharField("证书序列号", max_length=64, db_index=True)
    signed_at = models.DateTimeField("签名时间")
    timestamp_token = models.TextField("时间戳", blank=True, default="")
    timestamp_verified = models.BooleanField(
        "时间戳已验证", default=False, help_text="签名时已验证：时间戳覆盖本签名值、由 CA 签发、时间合理"
    )
    timestamp_time = models.DateTimeField("时间戳时间", null=True, blank=True)
    timestamp_serial = models.CharField("时间戳序列号", max_length=64, blank=True, default="")
    sign_data_id = models.CharField("签名任务号", max_length=64, blank=True, default="")
    session = models.ForeignKey(
        SigningSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "报告电子签名"
        ordering = ["-signed_at"]
        indexes = [models.Index(fields=["report_number", "report_version"], name="report_signature_version")]

    def __str__(self) -> str:
        return f"{self.report_number} v{self.report_version} · {self.signer_name} · {self.cert_sn}"


class SignJob(models.Model):
    """A push sign job waiting for the phone (QR session without auto-sign)."""

    report = models.ForeignKey(ReviewReport, on_delete=models.CASCADE, related_name="sign_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(SigningSession, null=True, on_delete=models.SET_NULL, related_name="+")
    sign_data_id = models.CharField(max_length=64, unique=True)
    original_text = models.TextField()
    status = models.CharField(max_length=16, default="TOSIGN")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "待确认签名任务"

    def __str__(self) -> str:
        return f"{self.sign_data_id} ({self.status})"
