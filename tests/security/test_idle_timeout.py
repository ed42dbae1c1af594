"""Idle timeout: 30 minutes (SESSION_IDLE_TIMEOUT_MINUTES) without a request log the user out; the
stored time of the last request is moved back instead of sleeping."""

import time

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from hospital_interop.security.idle import IDLE_KEY, LOGIN_AT_KEY

MESSAGE = "您已超过 30 分钟未操作，为保护患者信息，系统已自动退出登录。请重新登录。"


@pytest.fixture
def ops_client(client, make_user):
    client.force_login(make_user("ops-idle", role="ops"))
    assert client.get(reverse("home")).status_code == 200
    return client


def _idle_for(client, minutes: float) -> None:
    session = client.session
    session[IDLE_KEY] = int(time.time() - minutes * 60)
    session.save()


def test_thirty_one_idle_minutes_log_out_with_a_chinese_message(ops_client):
    _idle_for(ops_client, 31)
    response = ops_client.get(reverse("uploads:dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=" + reverse("uploads:dashboard").replace(
        "/", "%2F"
    )
    assert "_auth_user_id" not in ops_client.session
    page = ops_client.get(response["Location"])
    assert MESSAGE in page.content.decode()
    assert ops_client.get(reverse("home")).status_code == 302  # still logged out


def test_twenty_nine_idle_minutes_keep_the_session_and_restart_the_clock(ops_client):
    _idle_for(ops_client, 29)
    assert ops_client.get(reverse("uploads:dashboard")).status_code == 200
    assert time.time() - ops_client.session[IDLE_KEY] < 60
    _idle_for(ops_client, 29)
    assert ops_client.get(reverse("home")).status_code == 200


def test_the_limit_is_a_setting(ops_client):
    _idle_for(ops_client, 6)
    with override_settings(SESSION_IDLE_TIMEOUT_MINUTES=5):
        response = ops_client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_auto_refresh_is_no_activity(ops_client):
    _idle_for(ops_client, 20)
    before = ops_client.session[IDLE_KEY]
    assert ops_client.get(reverse("uploads:dashboard") + "?autorefresh=1").status_code == 200
    assert ops_client.session[IDLE_KEY] == before
    _idle_for(ops_client, 31)
    assert ops_client.get(reverse("uploads:dashboard") + "?autorefresh=1").status_code == 302


def test_json_callers_get_401_with_the_message(ops_client):
    _idle_for(ops_client, 45)
    response = ops_client.get(reverse("home"), HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json() == {"ok": False, "code": "session_idle", "message": MESSAGE}


def test_the_session_cookie_lasts_a_working_day_and_dies_with_the_browser(client, make_user):
    assert settings.SESSION_IDLE_TIMEOUT_MINUTES == 30
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    make_user("dr-cookie", role="clinician", password="Right-pass-2026")
    response = client.post(reverse("login"), {"username": "dr-cookie", "password": "Right-pass-2026"})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert 11.9 * 3600 < client.session.get_expiry_age() <= 12 * 3600


def test_a_login_ends_a_working_day_after_it_began_however_busy(ops_client):
    """Django's own session expiry slides with each save; the 12 hours count from the login."""
    session = ops_client.session
    session[LOGIN_AT_KEY] = int(time.time() - 12 * 3600 - 60)
    session.save()
    response = ops_client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    page = ops_client.get(response["Location"])
    assert "本次登录已超过 12 小时，为保护患者信息，系统已自动退出登录。请重新登录。" in page.content.decode()


def test_logging_in_again_restarts_both_clocks(client, make_user):
    make_user("dr-again", role="clinician", password="Right-pass-2026")
    client.post(reverse("login"), {"username": "dr-again", "password": "Right-pass-2026"})
    session = client.session
    assert session[LOGIN_AT_KEY] == session[IDLE_KEY]  # both set by the login itself
    earlier = int(time.time() - 11 * 3600)
    session[LOGIN_AT_KEY] = earlier  # (the last request stays recent: not idle)
    session.save()
    client.post(reverse("login"), {"username": "dr-again", "password": "Right-pass-2026"})
    assert client.session[LOGIN_AT_KEY] > earlier + 10 * 3600
