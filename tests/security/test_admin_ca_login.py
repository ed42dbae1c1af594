"""The CA certificate as the administrators' second factor (ADMIN_REQUIRE_CA_LOGIN), through the
real pages, the real CA simulator and a software UKey agent (tests/esign/conftest.py)."""

import json

import pytest
from django.test import Client

from tests.esign.conftest import agent_sign

WS = "c" * 32
REFUSED = "系统管理需要 CA 证书登录"


@pytest.fixture
def admin_user(signer, identities):
    return signer("root-ca", identities["alice"], is_staff=True, is_superuser=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    client.cookies["esign_ws"] = WS
    return client


def _ukey_login(client, ident, next_url="/admin/") -> dict:
    answer = client.post("/esign/ukey/challenge", content_type="application/json", data="{}").json()
    assert answer["ok"], answer
    signed = agent_sign(ident, answer["challenge"])
    body = {
        "challenge": answer["challenge"],
        "certificate": signed["certificate"],
        "signature": signed["signature"],
        "keySerial": signed["keySerial"],
    }
    return client.post(
        f"/esign/ukey/login?next={next_url}", content_type="application/json", data=json.dumps(body)
    ).json()


def test_off_by_default_the_password_login_reaches_the_admin(ca_on, admin_user, settings):
    assert settings.ADMIN_REQUIRE_CA_LOGIN is False
    assert _client(admin_user).get("/admin/").status_code == 200


def test_on_the_admin_refuses_a_session_without_a_ca_login_and_says_how(ca_on, admin_user, settings):
    settings.ADMIN_REQUIRE_CA_LOGIN = True
    client = _client(admin_user)
    for path in ("/admin/", "/admin/auth/user/", "/admin/dictionaries/hospitaldepartment/import/"):
        response = client.get(path)
        assert response.status_code == 403, path
        body = response.content.decode()
        assert REFUSED in body and "UKey 证书登录" in body and "扫码登录" in body
    assert 'href="/esign/ukey/?next=/admin/auth/user/"' in client.get("/admin/auth/user/").content.decode()
    assert client.post("/admin/auth/user/add/", {"username": "x"}).status_code == 403
    assert client.get("/").status_code == 200  # the rest of the site is not affected


def test_a_ukey_login_in_the_same_session_opens_the_admin(ca_on, admin_user, identities, settings):
    settings.ADMIN_REQUIRE_CA_LOGIN = True
    client = _client(admin_user)
    assert client.get("/admin/").status_code == 403
    answer = _ukey_login(client, identities["alice"])
    assert answer["ok"] and answer["redirect"] == "/admin/", answer
    assert client.get("/admin/").status_code == 200

    other = _client(admin_user)  # the same user's other login session completed no CA login
    assert other.get("/admin/").status_code == 403

    client.post("/esign/logout/", {"everywhere": "1"})  # 退出电子签名 (or the UKey pulled out)
    assert client.get("/admin/").status_code == 403


def test_a_qr_login_opens_the_admin_too(ca_on, admin_user, identities, settings):
    settings.ADMIN_REQUIRE_CA_LOGIN = True
    client = _client(admin_user)
    page = client.get("/esign/qr/?next=/admin/")
    assert page.status_code == 200 and page.context["qr_content"], page.context.get("error")
    ca_on.scan(page.context["qr_content"], identities["alice"].staff_no)  # the phone app confirms
    answer = client.get("/esign/qr/status?next=/admin/").json()
    assert answer["status"] == "FINISH" and answer["redirect"] == "/admin/", answer
    assert client.get("/admin/").status_code == 200


def test_a_staff_account_without_superuser_is_not_gated(ca_on, make_user, settings):
    settings.ADMIN_REQUIRE_CA_LOGIN = True
    lab = make_user("lab-dict", role="lab", is_staff=True)
    assert _client(lab).get("/admin/dictionaries/hospitaldepartment/").status_code == 200
