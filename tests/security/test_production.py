"""The production switch: ``HOSPITAL_INTEROP_PRODUCTION=1`` makes ``manage.py check --deploy``
clean (Secure cookies, HSTS, the HTTPS redirect behind the proxy) and refuses DEBUG."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_"))}
    env.update(
        HOSPITAL_INTEROP_PRODUCTION="1",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="interop.hospital.example,web",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://interop.hospital.example",
        HOSPITAL_INTEROP_VAR_DIR=str(tmp_path / "var"),
    )
    env.update(extra)
    return env


def _manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_check_deploy_is_clean_under_the_production_setting(tmp_path):
    done = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr and "WARNINGS" not in done.stdout, done.stdout + done.stderr
    assert "System check identified no issues (1 silenced)" in done.stdout, done.stdout
    # the one silenced check: axes asks for an address lock besides the username lock (settings.py says why)
    from django.conf import settings

    assert settings.SILENCED_SYSTEM_CHECKS == ["axes.W006"]


def test_check_deploy_warns_without_it(tmp_path):
    """The same check fails on the demo settings: the test above is not vacuous."""
    env = _production_env(tmp_path, HOSPITAL_INTEROP_PRODUCTION="0")
    done = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in done.stderr, code


def test_production_refuses_debug(tmp_path):
    done = _manage(_production_env(tmp_path, DJANGO_DEBUG="1"), "check")
    assert done.returncode != 0
    assert "HOSPITAL_INTEROP_PRODUCTION=1 refuses DJANGO_DEBUG" in done.stderr


def test_production_headers_and_the_plain_http_exemptions(tmp_path):
    """Served by a real process: HTTPS redirect for pages, HSTS on HTTPS (as the proxy says), and
    /healthz answered over plain HTTP for the compose healthcheck."""
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "r = c.get('/accounts/login/', HTTP_HOST='interop.hospital.example')\n"
        "print('login', r.status_code, r.get('Location'))\n"
        "r = c.get('/healthz', HTTP_HOST='web')\n"
        "print('healthz', r.status_code)\n"
        "r = c.get('/accounts/login/', HTTP_HOST='interop.hospital.example', HTTP_X_FORWARDED_PROTO='https')\n"
        "print('https', r.status_code, r.get('Strict-Transport-Security'))\n"
        "print('cookie', r.cookies['csrftoken']['secure'])\n"
    )
    env = _production_env(tmp_path, DJANGO_SETTINGS_MODULE="hospital_interop.settings")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert out["login"] == "301 https://interop.hospital.example/accounts/login/"
    assert out["healthz"] in {"200", "503"}  # answered, not redirected (503: no Redis/DB in this env)
    assert out["https"] == "200 max-age=31536000; includeSubDomains; preload"
    assert out["cookie"] is not None and out["cookie"] != ""
