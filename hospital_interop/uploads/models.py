"""The outbox: one row per version of a record that must reach the municipal platform.

A business system's record is written here in the same transaction as the business data, so
nothing is sent before it is stored and nothing stored is forgotten: workers deliver rows, a
periodic sweep picks up whatever a lost broker message or a dead worker left behind.

The payload holds patient data and is stored SM4-GCM sealed (``atrest.SealedJSONField``): it is
opened when code reads ``record.payload``, and SQL cannot look into it. What a query filters on is
a column of its own: the interface, the business key, the patient digest.
"""

from django.db import models
from django.db.models import Q

from hospital_interop.atrest import SealedJSONField


class State(models.TextChoices):
    PENDING = "pending", "待发送"
    SENDING = "sending", "发送中"
    RETRY = "retry", "等待重试"
    ATTENTION = "attention", "需人工处理"
    DONE = "done", "已接收"
    SUPERSEDED = "superseded", "已被新版本取代"
    VOIDED = "voided", "已作废"


DUE_STATES = (State.PENDING, State.RETRY)
OPEN_STATES = (State.PENDING, State.SENDING, State.RETRY, State.ATTENTION)


class OutboxRecord(models.Model):
    interface = models.CharField("接口", max_length=64)
    document = models.CharField("接口文档", max_length=32)
    spec_version = models.CharField("文档版本", max_length=16)
    business_key = models.CharField("主键", max_length=255, help_text="主键字段值，以 | 连接")
    version = models.PositiveIntegerField("版本", default=1)
    payload = SealedJSONField("上传内容", purpose="outbox.payload")
    # the payload's size as JSON (sealed, SQL cannot see it): claims take a large row alone, with a
    # lease long enough for its transfer
    payload_size = models.PositiveIntegerField("上传内容大小(字节)", default=0)
    # Ordering (interfaces.md): the parents this record waits for, as "INTERFACE#key" strings.
    waits_for = models.JSONField("依赖", default=list, blank=True)
    # Patient, for search and for per-patient views: the digest (patients.models.id_key, HMAC-SM3)
    # and the name masked.
    patient_id_hash = models.CharField("患者标识摘要", max_length=64, blank=True, default="")
    patient_display = models.CharField("患者", max_length=64, blank=True, default="")
    source = models.CharField("来源系统", max_length=64, blank=True, default="")

    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField("尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", null=True, blank=True)
    lease_until = models.DateTimeField("占用至", null=True, blank=True)
    claimed_by = models.CharField("处理进程", max_length=64, blank=True, default="")

    last_code = models.CharField("平台返回码", max_length=16, blank=True, default="")
    last_message = models.TextField("最后信息", blank=True, default="")
    last_errors = models.JSONField("字段错误", default=list, blank=True)
    receipt = models.CharField("平台回执", max_length=128, blank=True, default="")

    event_at = models.DateTimeField("业务发生时间")
    enqueued_at = models.DateTimeField("入队时间", auto_now_add=True)
    redriven_at = models.DateTimeField("运维重推时间", null=True, blank=True)  # restarts the max-age clock
    first_attempt_at = models.DateTimeField("首次发送", null=True, blank=True)
    accepted_at = models.DateTimeField("平台接收时间", null=True, blank=True)
    deadline_at = models.DateTimeField("时效截止", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "上传记录"
        verbose_name_plural = "上传记录"
        indexes = [
            # the sweep and the workers: due rows in order
            models.Index(
                fields=["next_attempt_at"], name="outbox_due", condition=Q(state__in=["pending", "retry"])
            ),
            models.Index(fields=["lease_until"], name="outbox_leased", condition=Q(state="sending")),
            # the record browser's filters
            models.Index(fields=["business_key"], name="outbox_business_key"),
            models.Index(fields=["interface", "state", "enqueued_at"], name="outbox_iface_state"),
            models.Index(fields=["state", "enqueued_at"], name="outbox_state"),
            models.Index(fields=["patient_id_hash", "enqueued_at"], name="outbox_patient"),
            models.Index(fields=["enqueued_at"], name="outbox_enqueued"),
            # "past deadline": open rows newest first, the deadline read from the index itself
            models.Index(
                fields=["enqueued_at", "deadline_at"],
                name="outbox_open_enqueued",
                condition=Q(state__in=OPEN_STATES),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["interface", "business_key", "version"], name="outbox_unique_version"
            ),
        ]

    archived = False  # an ``ArchivedRecord`` says True
    payload_dropped = False

    def __str__(self):
        return f"{self.interface} {self.business_key} v{self.version} [{self.get_state_display()}]"

    @property
    def ref(self) -> str:
        return f"{self.interface}#{self.business_key}"


class AttemptFields(models.Model):
    """The columns of one send attempt, of a hot row (``Attempt``) or an archived one
    (``ArchivedAttempt``): the archive copies them by name."""

    started_at = models.DateTimeField("开始时间")
    elapsed_ms = models.FloatField("耗时(ms)", default=0)
    worker = models.CharField("处理进程", max_length=64, blank=True, default="")
    http_status = models.PositiveSmallIntegerField("HTTP 状态", null=True, blank=True)
    code = models.CharField("平台返回码", max_length=16, blank=True, default="")
    outcome = models.CharField("结果", max_length=16)
    message = models.TextField("信息", blank=True, default="")
    errors = models.JSONField("字段错误", default=list, blank=True)

    class Meta:
        abstract = True
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.code or self.outcome}"


class Attempt(AttemptFields):
    record = models.ForeignKey(OutboxRecord, on_delete=models.CASCADE, related_name="attempt_log")

    class Meta(AttemptFields.Meta):
        verbose_name = "发送尝试"
        verbose_name_plural = "发送尝试"


class Dependency(models.Model):
    """A record waits until the platform has accepted its parent (interfaces.md, ordering rules)."""

    record = models.ForeignKey(OutboxRecord, on_delete=models.CASCADE, related_name="dependencies")
    parent_interface = models.CharField(max_length=64)
    parent_key = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["parent_interface", "parent_key"], name="dependency_parent")]

    def __str__(self):
        return self.parent_ref

    @property
    def parent_ref(self) -> str:
        return f"{self.parent_interface}#{self.parent_key}"


class InterfacePolicy(models.Model):
    """Per-interface delivery settings, editable by ops in the admin. An interface without a row
    is pushed immediately, without concurrency or rate limits, with the default deadline."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "实时推送"
        SCHEDULED = "scheduled", "按频率增量推送"

    interface = models.CharField("接口", max_length=64, unique=True)
    enabled = models.BooleanField("启用", default=True, help_text="停用后记录照常入队，但暂不发送")
    generate = models.BooleanField(
        "由本系统生成",
        default=True,
        help_text="对可由已有数据生成的接口（如从检验报告生成公共数据检验接口 PUB_LAB_*）：关闭后不再生成",
    )
    mode = models.CharField("推送方式", max_length=16, choices=Mode.choices, default=Mode.IMMEDIATE)
    interval_seconds = models.PositiveIntegerField(
        "推送间隔(秒)", default=300, help_text="按频率推送时两次推送的间隔"
    )
    max_in_flight = models.PositiveIntegerField("最大并发", default=8)
    rate_per_second = models.PositiveIntegerField("每秒上限", default=0, help_text="0 表示不限")
    deadline_minutes = models.PositiveIntegerField(
        "时效要求(分钟)", default=24 * 60, help_text="从业务发生到平台接收的最长时间"
    )
    max_age_hours = models.PositiveIntegerField(
        "最长重试(小时)", default=72, help_text="超过后转人工处理并告警"
    )
    # retention (docs/retention.md): accepted rows leave the hot table for the archive
    archive_after_days = models.PositiveIntegerField(
        "归档天数",
        null=True,
        blank=True,
        help_text="平台接收后超过该天数的记录移入归档表；留空使用系统设置（RETENTION_ARCHIVE_AFTER_DAYS）",
    )
    archive_payload = models.BooleanField(
        "归档保留上传内容",
        default=True,
        help_text="关闭后归档时删除上传内容（仅保留主键、患者摘要、状态、回执与发送记录）",
    )

    class Meta:
        verbose_name = "接口推送策略"
        verbose_name_plural = "接口推送策略"

    def __str__(self):
        return self.interface


class ArchivedRecord(models.Model):
    """An outbox row the platform accepted long ago, moved out of the hot table by the retention
    job (``retention.py``, docs/retention.md). Same columns and the same id as it had in the
    outbox, so links (audit trail, record pages) keep working; ``payload`` is NULL when the
    interface's policy drops payloads on archiving. Never changed once written; deleted after the
    legal retention period."""

    id = models.BigIntegerField(primary_key=True)  # the outbox row's id, kept
    interface = models.CharField("接口", max_length=64)
    document = models.CharField("接口文档", max_length=32)
    spec_version = models.CharField("文档版本", max_length=16)
    business_key = models.CharField("主键", max_length=255)
    version = models.PositiveIntegerField("版本", default=1)
    payload = SealedJSONField("上传内容", purpose="outbox.payload", null=True, blank=True)
    payload_size = models.PositiveIntegerField("上传内容大小(字节)", default=0)
    waits_for = models.JSONField("依赖", default=list, blank=True)
    patient_id_hash = models.CharField("患者标识摘要", max_length=64, blank=True, default="")
    patient_display = models.CharField("患者", max_length=64, blank=True, default="")
    source = models.CharField("来源系统", max_length=64, blank=True, default="")
    state = models.CharField("状态", max_length=16, choices=State.choices, default=State.DONE)
    attempts = models.PositiveIntegerField("尝试次数", default=0)
    next_attempt_at = models.DateTimeField("下次尝试", null=True, blank=True)
    lease_until = models.DateTimeField("占用至", null=True, blank=True)
    claimed_by = models.CharField("处理进程", max_length=64, blank=True, default="")
    last_code = models.CharField("平台返回码", max_length=16, blank=True, default="")
    last_message = models.TextField("最后信息", blank=True, default="")
    last_errors = models.JSONField("字段错误", default=list, blank=True)
    receipt = models.CharField("平台回执", max_length=128, blank=True, default="")
    event_at = models.DateTimeField("业务发生时间")
    enqueued_at = models.DateTimeField("入队时间")
    redriven_at = models.DateTimeField("运维重推时间", null=True, blank=True)
    first_attempt_at = models.DateTimeField("首次发送", null=True, blank=True)
    accepted_at = models.DateTimeField("平台接收时间", null=True, blank=True)
    deadline_at = models.DateTimeField("时效截止", null=True, blank=True)
    updated_at = models.DateTimeField("更新时间")
    archived_at = models.DateTimeField("归档时间")

    archived = True  # templates and services tell an archived row from a hot one by this

    class Meta:
        verbose_name = "已归档上传记录"
        verbose_name_plural = "已归档上传记录"
        indexes = [
            # the record browser's filters (an archived row is always accepted: no state index)
            models.Index(fields=["business_key"], name="archive_business_key"),
            models.Index(fields=["interface", "enqueued_at"], name="archive_iface"),
            models.Index(fields=["patient_id_hash", "enqueued_at"], name="archive_patient"),
            models.Index(fields=["enqueued_at"], name="archive_enqueued"),
            # the legal retention purge, oldest first
            models.Index(fields=["accepted_at"], name="archive_accepted"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["interface", "business_key", "version"], name="archive_unique_version"
            ),
        ]

    def __str__(self):
        return f"{self.interface} {self.business_key} v{self.version} [已归档]"

    @property
    def payload_dropped(self) -> bool:
        """Was the payload dropped on archiving (the interface's policy)? Asked without opening it."""
        if "payload" in self.__dict__:
            return self.__dict__["payload"] is None
        return ArchivedRecord.objects.filter(pk=self.pk, payload__isnull=True).exists()

    @property
    def ref(self) -> str:
        return f"{self.interface}#{self.business_key}"


class ArchivedAttempt(AttemptFields):
    """An attempt of an archived row (same columns and id as in ``Attempt``)."""

    id = models.BigIntegerField(primary_key=True)
    record = models.ForeignKey(ArchivedRecord, on_delete=models.CASCADE, related_name="attempt_log")

    class Meta(AttemptFields.Meta):
        verbose_name = "已归档发送尝试"
        verbose_name_plural = "已归档发送尝试"
