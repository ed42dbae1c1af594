"""Calling systems (HIS, EMR, LIS, RIS/PACS ...) and what they may submit. See the package docstring."""

from django.core.validators import RegexValidator
from django.db import models

# Scopes of machine APIs that are not one municipal interface (those are named by service code)
LOCAL_SCOPES = {
    "recognition.prompt": "互认提示、就诊事件与互认决定回读（HIS 医生站）",
    "recognition.results": "已互认结果查询（检查、检验系统）",
}

CODE_VALIDATOR = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$", "2–64 位字母、数字、下划线、点或连字符")


class CallingSystem(models.Model):
    code = models.CharField(
        "系统代码",
        max_length=64,
        unique=True,
        validators=[CODE_VALIDATOR],
        help_text="如 HIS、EMR；作为该系统提交记录的“来源系统”记入上传记录",
    )
    name = models.CharField("系统名称", max_length=100)
    active = models.BooleanField("启用", default=True, help_text="停用后该系统的令牌立即失效")
    allow_all = models.BooleanField("允许全部记录类型", default=False)
    allowed_interfaces = models.JSONField(
        "允许的接口",
        default=list,
        blank=True,
        help_text="市平台服务编码列表，如 OP_REGISTRATION；勾选“允许全部”时忽略",
    )
    token_hash = models.CharField(
        "令牌摘要", max_length=64, unique=True, null=True, blank=True, editable=False
    )
    token_hint = models.CharField(
        "令牌前缀",
        max_length=16,
        blank=True,
        default="",
        editable=False,
        help_text="令牌的前几位，仅用于辨认",
    )
    token_created_at = models.DateTimeField("令牌生成时间", null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField("最近调用", null=True, blank=True, editable=False)
    contact = models.CharField("联系人", max_length=100, blank=True, default="")
    note = models.TextField("备注", blank=True, default="")
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "接入系统"
        verbose_name_plural = "接入系统"
        ordering = ["code"]

    def __str__(self):
        return f"{self.code}（{self.name}）"

    def allows(self, interface: str) -> bool:
        """May this system submit records of the given municipal service code?"""
        return self.allow_all or interface in (self.allowed_interfaces or [])

    @property
    def has_token(self) -> bool:
        return bool(self.token_hash)
