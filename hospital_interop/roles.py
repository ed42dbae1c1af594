"""Roles as Django groups. The permissions of each role are data here; ``sync_roles`` runs after
every migrate, so a permission added by a later app reaches its roles without a data migration."""

import logging
from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Role:
    code: str
    name: str  # the group's name, shown in the UI
    description: str
    permissions: tuple[str, ...]  # "app_label.codename"; missing ones are skipped until their app exists
    staff: bool = False  # may open the Django admin (dictionaries, the read-only audit trail, users)


ROLES = (
    Role(
        "clinician",
        "临床医生",
        "开立检查检验时查看外院可互认结果并做出互认决定",
        ("hospital_interop.use_recognition", "hospital_interop.view_recognition_stats"),
    ),
    Role(
        "lab",
        "检验科",
        "维护检验字典与对照，审核并签名检验报告，查询平台报告列表",
        (
            "hospital_interop.maintain_dictionaries",
            "hospital_interop.review_lab_reports",
            "hospital_interop.view_interfaces",
            "hospital_interop.view_recognition_stats",
            "quality.handle_lab_findings",
        ),
        staff=True,
    ),
    Role(
        "ops",
        "运维",
        "监控每一条上传，查看失败原因，修正后重推",
        (
            "hospital_interop.view_uploads",
            "hospital_interop.operate_uploads",
            "hospital_interop.view_decrypted_payload",
            "hospital_interop.view_interfaces",
            "hospital_interop.view_audit_log",
            "hospital_interop.maintain_dictionaries",
            "hospital_interop.view_recognition_stats",
            "patients.view_bindingconflict",
            "uploads.view_interfacepolicy",  # 接口推送策略 in the admin: push mode, interval, rate, deadline
            "uploads.add_interfacepolicy",
            "uploads.change_interfacepolicy",
        ),
        staff=True,
    ),
    Role(
        "security",
        "安全审计员",
        "查阅与导出安全审计日志：谁在何时从何处读写了哪位患者的数据",
        ("audit.view_auditrecord",),
        staff=True,
    ),
    Role(
        "admin", "管理员", "管理用户、角色与系统参数", (), staff=True
    ),  # administrators are staff superusers
)
# Duties kept apart from the administrators (三员分立, GB/T 22239-2019 8.1.4.2): a superuser holds
# every Django permission, but not these; only the role that lists them does.
SEPARATE_FROM_ADMIN = frozenset({"audit.view_auditrecord"})
ROLE_BY_CODE = {r.code: r for r in ROLES}
ROLE_APPS = {"hospital_interop", *(p.split(".", 1)[0] for r in ROLES for p in r.permissions)}


def _permission(label: str) -> Permission | None:
    app_label, codename = label.split(".", 1)
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()


def sync_roles(sender=None, **kwargs) -> None:
    """Create the role groups and set their permissions to exactly what ROLES says."""
    if (
        sender is not None and sender.label not in ROLE_APPS
    ):  # again after each app whose permissions roles use
        return
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role.name)
        perms = [p for p in map(_permission, role.permissions) if p is not None]
        missing = len(role.permissions) - len(perms)
        if missing:
            log.info("role %s: %d permission(s) not installed yet", role.code, missing)
        group.permissions.set(perms)


def holds(user, permission: str) -> bool:
    """``user.has_perm``, except that a superuser does not hold the separated duties by being one."""
    if permission in SEPARATE_FROM_ADMIN and user.is_superuser:
        return False
    return user.has_perm(permission)


def role_names(user) -> list[str]:
    if user.is_superuser:
        return [ROLE_BY_CODE["admin"].name]
    return list(user.groups.values_list("name", flat=True))
