"""Login lockout: 5 wrong passwords lock the username for 15 minutes, the right one included; after
the cool-off (the stored attempt moved back in time, no sleeping) the right password logs in.
Runs on PostgreSQL here and on SQLite in the integrations run (tests/integrations uses the same code)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

RIGHT = "Right-pass-2026"
LOCKED = "该账号连续 5 次登录失败，已被锁定 15 分钟"


@pytest.fixture
def clinician(make_user):
    return make_user("dr-lock", role="clinician", password=RIGHT)


def _login(client, password, username="dr-lock", url="login"):
    return client.post(reverse(url), {"username": username, "password": password})


def _fail_five(client, **kw):
    for i in range(5):
        response = _login(client, f"wrong-{i}", **kw)
    return response


def test_five_failures_lock_the_username_and_the_right_password_is_refused(client, clinician):
    for i in range(4):
        response = _login(client, f"wrong-{i}")
        assert response.status_code == 200
        assert "用户名或密码不正确" in response.content.decode()
    response = _login(client, "wrong-4")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()

    response = _login(client, RIGHT)
    assert response.status_code == 429
    body = response.content.decode()
    assert LOCKED in body and "请 15 分钟后再试" in body and "信息中心管理员" in body
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home")).status_code == 302  # still anonymous


def test_after_the_cool_off_the_right_password_logs_in(client, clinician):
    _fail_five(client)
    assert _login(client, RIGHT).status_code == 429
    AccessAttempt.objects.filter(username="dr-lock").update(
        attempt_time=AccessAttempt.objects.get(username="dr-lock").attempt_time - timedelta(minutes=16)
    )
    response = _login(client, RIGHT)
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(clinician.pk)
    assert not AccessAttempt.objects.filter(username="dr-lock").exists()  # the count starts again


def test_fourteen_minutes_are_not_enough(client, clinician):
    _fail_five(client)
    AccessAttempt.objects.filter(username="dr-lock").update(
        attempt_time=AccessAttempt.objects.get(username="dr-lock").attempt_time - timedelta(minutes=14)
    )
    assert _login(client, RIGHT).status_code == 429


def test_the_lock_is_per_username_not_per_workstation(client, clinician, make_user):
    make_user("dr-other", role="clinician", password=RIGHT)
    _fail_five(client)
    assert _login(client, RIGHT, username="dr-other").status_code == 302  # same address, other user
    other = type(client)(REMOTE_ADDR="10.1.2.3")  # another workstation, locked user
    assert _login(other, RIGHT).status_code == 429


def test_a_success_before_the_limit_resets_the_count(client, clinician):
    for i in range(4):
        _login(client, f"wrong-{i}")
    assert _login(client, RIGHT).status_code == 302
    client.logout()
    for i in range(4):
        assert _login(client, f"wrong-{i}").status_code == 200
    assert _login(client, RIGHT).status_code == 302


def test_the_admin_login_is_locked_too(client, make_user):
    make_user("root-lock", password=RIGHT, is_staff=True, is_superuser=True)
    for i in range(5):
        _login(client, f"wrong-{i}", username="root-lock", url="admin:login")
    response = _login(client, RIGHT, username="root-lock", url="admin:login")
    assert response.status_code == 429
    assert "已被锁定 15 分钟" in response.content.decode()
