"""Files holding patient data are the service user's alone: every process of the project runs under
umask 027 and the SQLite demo database (with its WAL and shared-memory files) is 0600."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os
from pathlib import Path
from django.conf import settings
from django.db import connection
with connection.cursor() as cur:
    cur.execute("CREATE TABLE probe (x integer)")
    cur.execute("INSERT INTO probe VALUES (1)")
    name = Path(settings.DATABASES["default"]["NAME"])
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in name.parent.glob(name.name + "*")}
umask = os.umask(0o022)
print(json.dumps({"umask": oct(umask), "modes": modes}))
"""


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_the_sqlite_database_file_is_created_0600_and_an_existing_one_and_its_wal_are_tightened(tmp_path):
    from hospital_interop.filemodes import private_database_file

    old = os.umask(0)  # even a careless umask gives nobody else access
    try:
        db = tmp_path / "new" / "demo.sqlite3"
        private_database_file(str(db))
        assert db.exists() and db.read_bytes() == b"" and mode(db) == "0o600"

        existing = tmp_path / "demo.sqlite3"
        existing.write_bytes(b"SQLite format 3\x00 kept")
        wal = tmp_path / "demo.sqlite3-wal"
        wal.write_bytes(b"wal")
        for p in (existing, wal):
            p.chmod(0o644)
        private_database_file(str(existing))
        assert existing.read_bytes() == b"SQLite format 3\x00 kept"  # never truncated
        assert mode(existing) == mode(wal) == "0o600"
    finally:
        os.umask(old)
    private_database_file(":memory:")  # nothing to create for an in-memory or empty name
    private_database_file("")


def test_a_django_process_started_under_umask_022_creates_its_sqlite_database_and_wal_0600(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "HOSPITAL_INTEROP_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "hospital_interop.settings",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o022),
        timeout=120,
    ).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    assert probe["umask"] == "0o27"
    assert probe["modes"] == {
        "demo.sqlite3": "0o600",
        "demo.sqlite3-wal": "0o600",
        "demo.sqlite3-shm": "0o600",
    }
    assert mode(tmp_path / "var") == "0o750"  # created by the settings, under the umask


def test_the_gunicorn_master_and_the_simulators_run_under_umask_027_too():
    """They import the package (gunicorn -c python:hospital_interop.gunicorn_conf) or call its
    ``restrict_umask`` (python -m simulators...) but not necessarily the settings."""
    for module in ("hospital_interop.gunicorn_conf", "simulators.platform.store", "simulators.ca.store"):
        out = subprocess.run(
            [sys.executable, "-c", f"import os, {module}; print(oct(os.umask(0o022)))"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.umask(0o022),
            timeout=60,
        ).stdout
        assert out.strip() == "0o27", module
