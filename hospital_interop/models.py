from django.db import models


class Access(models.Model):
    """Holds the project's role permissions that belong to no single model (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("use_recognition", "使用互认提示与决策"),
            ("view_recognition_stats", "查看互认统计"),
            ("maintain_dictionaries", "维护标准字典与对照"),
            ("review_lab_reports", "审核检验报告与电子签名"),
            ("view_uploads", "查看上传看板"),
            ("operate_uploads", "重推、作废与导出上传记录"),
            ("view_decrypted_payload", "查看解密后的上传内容"),
            ("view_interfaces", "查看接口目录"),
            ("view_audit_log", "查询调阅审计日志"),
        ]

    def __str__(self):
        return "角色权限"
