"""The skeleton: real database and broker, roles, health, login and home pages, log masking."""

import json
import logging
import os

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from hospital_interop.celery import app as celery_app
from hospital_interop.logmask import MaskPersonalData, mask_text
from hospital_interop.roles import ROLES


@pytest.mark.django_db
def test_database_is_the_configured_one():
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected


def test_suite_runs_on_postgresql_and_redis_under_make_test():
    """`make test` and CI point the suite at real services; this guards against a silent fallback."""
    if os.environ.get("CI") or os.environ.get("DATABASE_URL"):
        assert os.environ["DATABASE_URL"].startswith("postgres")
        assert os.environ["REDIS_URL"].startswith("redis://")
    from django.conf import settings

    assert settings.CELERY_BROKER_URL == (os.environ.get("REDIS_URL") or "filesystem://")


def test_redis_cache_and_broker_round_trip():
    cache.set("foundation-probe", {"值": 1}, 30)
    assert cache.get("foundation-probe") == {"值": 1}
    cache.delete("foundation-probe")
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        if os.environ.get("REDIS_URL"):
            assert conn.transport.driver_type == "redis"
            assert conn.default_channel.client.ping() is True


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    from hospital_interop.uploads.services import note_sweep

    note_sweep()  # the delivery sweep ran just now (its heartbeat is a check of its own)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["vendor"] == connection.vendor
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["sweep"]["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "sweep", "platform"}
    assert body["status"] in {"ok", "degraded"}


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_unreachable(client, settings):
    # only the setting changes: no second Celery app (it would become the current app that
    # shared tasks publish through) and no change to the real app's connection pool
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
    assert response.json()["status"] == "error"


@pytest.mark.django_db
def test_roles_exist_with_their_permissions():
    for role in ROLES:
        group = Group.objects.get(name=role.name)
        have = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert have == set(role.permissions)


@pytest.mark.django_db
def test_login_page_is_chinese(client):
    response = client.get("/accounts/login/")
    text = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in text
    for words in ("用户登录", "用户名", "密码", "登录"):
        assert words in text


@pytest.mark.django_db
def test_wrong_password_says_so_in_chinese(client, make_user):
    make_user("lab1", role="lab")
    response = client.post("/accounts/login/", {"username": "lab1", "password": "wrong"})
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.content.decode()


@pytest.mark.django_db
def test_home_leads_each_role_to_its_work(client, make_user):
    assert client.get("/").status_code == 302  # anonymous → login
    make_user("ops1", role="ops")
    make_user("doc1", role="clinician")
    client.login(username="ops1", password="pw-for-tests-0")
    ops_page = client.get("/").content.decode()
    assert "运维" in ops_page and "接口目录" in ops_page
    client.logout()
    client.login(username="doc1", password="pw-for-tests-0")
    doc_page = client.get("/").content.decode()
    assert "临床医生" in doc_page and "接口目录" not in doc_page


def test_names_are_written_family_name_first_without_a_space(client, make_user):
    make_user("doc2", role="clinician", last_name="王", first_name="医生")
    client.login(username="doc2", password="pw-for-tests-0")
    page = client.get("/").content.decode()
    assert "王医生" in page and "医生 王" not in page


@pytest.mark.django_db
def test_demo_setup_creates_one_user_per_role(tmp_path, settings, capsys):
    settings.KEY_DIR = tmp_path / "keys"
    settings.VAR_DIR = tmp_path
    call_command("setup_keys", dir=str(tmp_path / "keys"))
    call_command("demo_setup")
    logins = json.loads((tmp_path / "demo_logins.json").read_text())
    assert set(logins) == {"doctor", "lab", "ops", "auditor", "admin"}
    out = capsys.readouterr().out
    assert "演示账号" in out and logins["ops"] in out
    files = [p for p in (tmp_path / "keys").rglob("*") if p.is_file()]
    data_key = next(p.name for p in files if p.parent.name == "data" and p.name != "current")
    assert sorted(str(p.relative_to(tmp_path / "keys")) for p in files) == sorted(
        [
            "app_secret",
            "hospital_sm2.pem",
            "hospital_sm2_pub.pem",
            "platform_sm2.pem",
            "platform_sm2_pub.pem",
            "sm4.key",
            "lab_index.key",
            "audit.key",
            "patient_digest.key",
            "data/current",
            f"data/{data_key}",
        ]
    )
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}
    assert oct((tmp_path / "keys" / "data").stat().st_mode & 0o777) == "0o700"
    assert len(bytes.fromhex((tmp_path / "keys" / "lab_index.key").read_text())) == 32


def test_identity_numbers_phones_and_names_are_masked_in_logs(caplog):
    assert mask_text("id=110105199001011234 tel 13812345678") == "id=110105********1234 tel 138****5678"
    assert mask_text('{"patientName": "张三丰"}') == '{"patientName": "张**"}'
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "patient %s name=%s", ("11010519900101123X", "李四"), None
    )
    MaskPersonalData().filter(record)
    assert record.getMessage() == "patient 110105********123X name=李*"


@pytest.mark.browser
def test_login_in_a_real_browser(live_server, page, make_user, artifacts_dir):
    make_user("doc2", role="clinician", first_name="医生", last_name="张")
    page.goto(live_server.url + "/")
    assert page.locator("h1").inner_text() == "用户登录"
    page.fill("#id_username", "doc2")
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.locator("[role=alert]").inner_text()
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.locator("h1").inner_text() == "工作台"
    assert "临床医生" in page.content()
    page.screenshot(path=str(artifacts_dir / "home.png"), full_page=True)


def test_ops_reach_the_interface_push_policy_the_readme_sends_them_to(client, make_user):
    make_user("ops-policy", role="ops", is_staff=True)
    client.login(username="ops-policy", password="pw-for-tests-0")
    assert client.get("/admin/uploads/interfacepolicy/").status_code == 200
    assert client.get("/admin/uploads/interfacepolicy/add/").status_code == 200
