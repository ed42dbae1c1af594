"""Helpers of the audit-trail tests: the trail's entries as plain data, and ``manage.py`` run as a
process of its own against the test database (its exit status is what an operator's script sees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.conftest import lab_dicts  # noqa: F401  (fixture: the demo dictionaries)
from tests.recognition.conftest import patient, recognition  # noqa: F401  (fixtures: platform patient)

ROOT = Path(__file__).resolve().parent.parent.parent


def db_env(**extra) -> dict:
    """The environment of a process using this test's database (committed rows only)."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{db['NAME']}"
    )
    env["AUDIT_KEY_FILE"] = settings.AUDIT["KEY_FILE"]
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=db_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def entry_text(entry) -> str:
    """Everything an entry holds, as one string (to look for identity values in it)."""
    from django.forms.models import model_to_dict

    return json.dumps(model_to_dict(entry), ensure_ascii=False, default=str)


@pytest.fixture
def trail():
    """The entries written since the fixture was set up: ``trail.new()`` returns them, oldest first."""
    from hospital_interop.audit.models import AuditRecord

    class Trail:
        def __init__(self):
            self.mark = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

        def new(self):
            entries = list(AuditRecord.objects.filter(seq__gt=self.mark).order_by("seq"))
            if entries:
                self.mark = entries[-1].seq
            return entries

    return Trail()
