"""Demo users: one per role, with passwords generated at set-up and kept in var/ (mode 600)."""

import json
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import ROLE_BY_CODE

DEMO_USERS = (
    # username, full name (family, given), role
    ("doctor", ("王", "医生"), "clinician"),
    ("lab", ("李", "检验"), "lab"),
    ("ops", ("赵", "运维"), "ops"),
    ("auditor", ("钱", "审计"), "security"),
    ("admin", ("系统", "管理员"), "admin"),
)


@transaction.atomic
def ensure_demo_users(logins_file: Path) -> dict[str, str]:
    """Create the demo users if missing; return {username: password} (read back from var/)."""
    saved = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    User = get_user_model()
    for username, (last, first), role_code in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"last_name": last, "first_name": first}
        )
        if created or username not in saved:
            saved[username] = secrets.token_urlsafe(9)
            user.set_password(saved[username])
        if role_code == "admin":
            user.is_staff = user.is_superuser = True
        else:
            # lab and ops maintain dictionaries in the admin; the security officer reads the audit trail there
            user.is_staff = ROLE_BY_CODE[role_code].staff
            user.groups.add(Group.objects.get(name=ROLE_BY_CODE[role_code].name))
        user.save()
    logins_file.write_text(json.dumps(saved, ensure_ascii=False, indent=2))
    logins_file.chmod(0o600)
    return saved
