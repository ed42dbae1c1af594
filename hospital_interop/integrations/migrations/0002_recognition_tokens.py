"""The recognition API's bearer tokens used to come from RECOGNITION_API_TOKENS (or its _FILE, or
a token generated under var/keys/) and were shared by every caller. Each becomes a calling
system of its own, scoped to the recognition API, with the same token (stored as its digest):
callers keep working, ops can now see, rotate and revoke them one by one."""

import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.db import migrations
from django.utils import timezone

SCOPES = ["recognition.prompt", "recognition.results"]


def _old_tokens() -> list[str]:
    value = getattr(settings, "RECOGNITION_API_TOKENS", None) or os.environ.get("RECOGNITION_API_TOKENS", "")
    if not value:
        name = getattr(settings, "RECOGNITION_API_TOKENS_FILE", None) or os.environ.get("RECOGNITION_API_TOKENS_FILE")
        path = Path(name) if name else Path(settings.VAR_DIR) / "keys" / "recognition_api_token"
        value = path.read_text() if path.exists() else ""
    tokens = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
    return [t.strip() for t in tokens if t.strip()]


def carry_over(apps, schema_editor):
    CallingSystem = apps.get_model("integrations", "CallingSystem")
    for n, token in enumerate(_old_tokens(), 1):
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        if CallingSystem.objects.filter(token_hash=digest).exists():
            continue
        code = "HIS-RECOGNITION" if n == 1 else f"HIS-RECOGNITION-{n}"
        CallingSystem.objects.create(
            code=code, name="医生站（互认接口，原环境变量令牌）", active=True, allow_all=False,
            allowed_interfaces=SCOPES, token_hash=digest, token_hint=token[:4] + "…", token_created_at=timezone.now(),
            note="由 RECOGNITION_API_TOKENS 迁移而来；建议在本页为其生成新令牌后停用旧令牌。")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0001_initial")]

    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
