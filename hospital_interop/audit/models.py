"""The audit trail's rows: one ``AuditRecord`` per read or write of patient data, and the one
``ChainHead`` row that names the chain's last entry and its anchor (see ``chain.py``).

No foreign keys: an entry's content must never change after it is written (a deleted user would
otherwise rewrite ``user_id`` and break its MAC), so the user is kept as id and login name."""

from django.db import models

GENESIS = "0" * 64  # the "previous MAC" of the first entry of a chain never purged


class Action(models.TextChoices):
    VIEW = "view", "查看"
    SEARCH = "search", "查询"
    EXPORT = "export", "导出"
    DECIDE = "decide", "互认决定"
    SIGN = "sign", "审核签名"
    UPDATE = "update", "修改"
    REDRIVE = "redrive", "重推"
    VOID = "void", "作废"
    PURGE = "purge", "清理过期审计"


class ActorType(models.TextChoices):
    USER = "user", "登录用户"
    SYSTEM = "system", "接入系统"
    LINK = "link", "签名链接（医生站）"
    PROCESS = "process", "后台进程"
    ANONYMOUS = "anonymous", "未登录"


class AuditRecord(models.Model):
    seq = models.BigIntegerField("序号", unique=True)
    at = models.DateTimeField("时间", db_index=True)
    actor_type = models.CharField("主体类型", max_length=16, choices=ActorType.choices)
    user_id = models.BigIntegerField("用户ID", null=True, blank=True)
    username = models.CharField("主体", max_length=150, blank=True, default="", db_index=True)
    roles = models.CharField("角色", max_length=200, blank=True, default="")
    ip = models.CharField("来源地址", max_length=45, blank=True, default="")
    route = models.CharField("入口", max_length=100, blank=True, default="")
    action = models.CharField("操作", max_length=16, choices=Action.choices, db_index=True)
    object_type = models.CharField("对象类型", max_length=64, db_index=True)
    object_id = models.CharField("对象", max_length=128, blank=True, default="", db_index=True)
    patient = models.CharField("患者摘要", max_length=64, blank=True, default="", db_index=True)
    changes = models.JSONField("变更（前/后，已脱敏）", default=dict, blank=True)
    detail = models.JSONField("说明", default=dict, blank=True)
    prev_mac = models.CharField("前一条 MAC", max_length=64)
    mac = models.CharField("MAC（HMAC-SM3）", max_length=64)

    class Meta:
        verbose_name = verbose_name_plural = "安全审计日志"
        ordering = ["-seq"]
        default_permissions = ("view",)  # entries are never added, changed or deleted by hand

    def __str__(self):
        return f"#{self.seq} {self.get_action_display()} {self.object_type}"


class ChainHead(models.Model):
    """The single row (pk 1, created by the migration) every append locks: the last entry's
    sequence number and MAC, and the anchor (the last purged entry's), under a MAC of their own."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField("最后序号", default=0)
    mac = models.CharField("最后 MAC", max_length=64, default=GENESIS)
    anchor_seq = models.BigIntegerField("锚点序号", default=0)
    anchor_mac = models.CharField("锚点 MAC", max_length=64, default=GENESIS)
    head_mac = models.CharField("链头 MAC", max_length=64, blank=True, default="")

    class Meta:
        verbose_name = verbose_name_plural = "审计链头"
        default_permissions = ()

    def __str__(self):
        return f"审计链头 #{self.seq}"
