"""Registration, phone number, staff management, the unified code table, and the rules of UKey
and QR signing sessions (service level; the pages are driven in test_pages)."""

import pytest

from esign import sealing, selectors, services
from esign.models import SignerProfile, SigningSession, SystemParameter
from esign.validators import id_number_error
from hospital_interop.errors import InvalidInput

from .conftest import APP_ID, PIN, agent_call, agent_sign, fresh_staff_no, new_identity, valid_id_number
from .helpers import WS1, WS2, browser_client, qr_session, ukey_session

pytestmark = pytest.mark.django_db


def test_id_number_rules():
    assert id_number_error("11010519491231002X") is None
    assert id_number_error("110105194912310021")[0] == "checksum"
    assert id_number_error("11010519491331002X")[0] == "birth_date"
    assert id_number_error("1101051949123100")[0] == "format"
    assert id_number_error("")[0] == "required"


def test_secret_parameter_is_encrypted_at_rest_and_masked(ca_on, client, django_user_model):
    row = SystemParameter.objects.get(key="CA_SECRET")
    assert row.value.startswith("SM4:") and ca_on.secret.decode() not in row.value
    assert selectors.parameter("CA_SECRET") == ca_on.secret.decode()
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-0")
    client.force_login(admin)
    for url in (
        "/esign/parameters/",
        "/admin/esign/systemparameter/",
        f"/admin/esign/systemparameter/{row.pk}/change/",
    ):
        page = client.get(url).content.decode()
        assert ca_on.secret.decode() not in page, url
    assert sealing.mask(ca_on.secret.decode()) in client.get("/esign/parameters/").content.decode()
    # saving the form with the secret left blank keeps it
    response = client.post(
        "/esign/parameters/",
        {
            "CA_ENABLED": "1",
            "CA_QR_URL": "",
            "CA_APP_ID": APP_ID,
            "CA_SECRET": "",
            "CA_SIGN_ALG": "HMAC-SM3",
            "UKEY_AGENT_URL": "http://127.0.0.1:8710",
        },
    )
    assert response.status_code == 302
    assert selectors.parameter("CA_SECRET") == ca_on.secret.decode()


def test_bad_parameters_are_refused_whole(db, client, django_user_model):
    services.set_parameters({"CA_ENABLED": "0", "CA_APP_ID": "GOOD-APP"})
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-0")
    client.force_login(admin)
    page = client.post(
        "/esign/parameters/",
        {
            "CA_ENABLED": "1",
            "CA_QR_URL": "ftp://x",
            "CA_APP_ID": "坏的",
            "CA_SECRET": "short",
            "CA_SIGN_ALG": "HMAC-SM3",
            "UKEY_AGENT_URL": "",
        },
    ).content.decode()
    assert "应为以 http:// 或 https:// 开头的完整地址" in page
    assert "应用 ID 应为 2–64 位" in page and "验证密钥至少 8 位" in page
    assert selectors.parameter("CA_ENABLED") == "0" and selectors.parameter("CA_APP_ID") == "GOOD-APP"


def test_registration_and_phone_change(ca_on, make_user):
    user = make_user("reg1", role="lab")
    with pytest.raises(InvalidInput) as bad:
        services.register_signer(user, staff_no="", name="张", id_number="110105194912310021")
    fields = {e["field"]: e["rule"] for e in bad.value.errors}
    assert fields == {"staff_no": "required", "name": "format", "id_number": "checksum"}
    assert not SignerProfile.objects.filter(user=user).exists()
    staff_no, id_number = fresh_staff_no(), valid_id_number()
    profile = services.register_signer(user, staff_no=staff_no, name="张注册", id_number=id_number)
    assert profile.registered and profile.id_number_masked.endswith(id_number[-4:])
    assert id_number not in profile.id_number_enc and sealing.unseal(profile.id_number_enc) == id_number
    assert ca_on.client().query_user(staff_no=staff_no).user_id == profile.ca_user_id
    with pytest.raises(InvalidInput) as bad_mobile:
        services.change_mobile(user, "1380000")
    assert bad_mobile.value.errors[0]["field"] == "mobile"
    services.change_mobile(user, "13811112222")
    assert ca_on.client().query_user(user_id=profile.ca_user_id).mobile == "13811112222"
    other = make_user("reg2", role="lab")
    with pytest.raises(InvalidInput) as taken:
        services.register_signer(other, staff_no=staff_no, name="李重复", id_number=valid_id_number())
    assert taken.value.errors == [
        {"field": "staff_no", "rule": "unique", "message": "该工号已被其他账号注册。"}
    ]


def test_staff_management_binds_one_ukey_per_person(db, make_user, client, django_user_model):
    a, b = make_user("sa", role="lab"), make_user("sb", role="lab")
    services.set_staff_ca(a, ukey_serial="uk0001", ca_enabled=True)
    assert SignerProfile.objects.get(user=a).ukey_serial == "UK0001"
    with pytest.raises(InvalidInput) as taken:
        services.set_staff_ca(b, ukey_serial="UK0001", ca_enabled=True)
    assert taken.value.errors[0]["rule"] == "unique"
    admin = django_user_model.objects.create_superuser("root", password="pw-for-tests-0")
    client.force_login(admin)
    page = client.post(
        "/esign/staff/", {"user": b.pk, "ukey_serial": "UK0001", "ca_enabled": "on"}
    ).content.decode()
    assert "该 UKey 已登记给" in page
    assert client.post("/esign/staff/", {"user": b.pk, "ukey_serial": "UK0002"}).status_code == 302
    profile = SignerProfile.objects.get(user=b)
    assert profile.ukey_serial == "UK0002" and profile.ca_enabled is False
    assert "esign.manage_ca" not in a.get_all_permissions()
    client.force_login(a)
    assert client.get("/esign/staff/").status_code == 403


def test_ukey_session_rules(ca_on, identities, signer):
    alice, bob = identities["alice"], identities["bob"]
    user = signer("alice", alice)
    other = signer("bob", bob)
    session = ukey_session(user, alice, ws=WS1)
    assert session.kind == "ukey" and session.key_serial == alice.ukey_serial
    assert selectors.active_session(user, WS1) == session
    # a second workstation is refused while the first holds the UKey session
    with pytest.raises(services.SigningRefused) as second:
        ukey_session(user, alice, ws=WS2)
    assert second.value.code == "other_workstation" and "只能在一台管理机" in second.value.message
    assert "自动结束，届时即可在本机登录" in second.value.message  # and the way out when that machine is gone
    # the same workstation may log in again (the old session is replaced)
    again = ukey_session(user, alice, ws=WS1)
    session.refresh_from_db()
    assert session.ended_at is not None and again.is_active
    # another person's UKey
    with pytest.raises(services.SigningRefused) as foreign:
        ukey_session(other, alice, ws=WS2)
    assert foreign.value.code == "ukey_other_user" and alice.name in foreign.value.message
    # logout frees the UKey for another workstation
    assert services.end_sessions(user, workstation_id=WS1) == 1
    assert ukey_session(user, alice, ws=WS2).workstation_id == WS2


def test_ukey_login_checks_challenge_and_signature(ca_on, identities, signer):
    alice = identities["alice"]
    user = signer("alice", alice)
    challenge = services.issue_challenge()
    signed = agent_sign(alice, challenge["challenge"])
    other = services.issue_challenge()
    with pytest.raises(services.SigningRefused) as wrong_challenge:
        services.ukey_login(
            user,
            challenge=other,
            signed_challenge=challenge["challenge"],
            certificate=signed["certificate"],
            signature=signed["signature"],
            key_serial=signed["keySerial"],
            workstation_id=WS1,
        )
    assert wrong_challenge.value.code == "bad_challenge"
    forged = agent_sign(alice, other["challenge"])
    with pytest.raises(services.SigningRefused) as bad_sig:
        services.ukey_login(
            user,
            challenge=challenge,
            signed_challenge=challenge["challenge"],
            certificate=signed["certificate"],
            signature=forged["signature"],
            key_serial=signed["keySerial"],
            workstation_id=WS1,
        )
    assert bad_sig.value.code == "bad_signature"
    assert not SigningSession.objects.exists()


def test_wrong_pin_is_refused_by_the_ukey_and_counted(identities):
    alice = identities["alice"]
    answer = agent_call(alice, "/api/v1/login", {"certSn": alice.ukey_cert_sn, "pin": "000000"})
    assert answer["code"] == "PIN_INCORRECT" and "还可尝试 5 次" in answer["message"]
    assert agent_call(alice, "/api/v1/login", {"certSn": alice.ukey_cert_sn, "pin": PIN})["ok"]
    assert agent_call(alice, "/api/v1/status")["retriesLeft"] == 6


def test_qr_sessions_may_run_on_several_workstations(ca_on, identities, signer):
    bob = identities["bob"]
    user = signer("bob", bob)
    one = qr_session(user, ca_on, bob.staff_no, ws=WS1)
    two = qr_session(user, ca_on, bob.staff_no, ws=WS2)
    assert one.is_active and two.is_active and one.kind == two.kind == "qr"


def test_qr_login_by_someone_else_is_refused(ca_on, identities, signer):
    user = signer("bob", identities["bob"])
    stranger = new_identity(ca_on, "陌生人")
    txn = services.start_qr_login(user)
    ca_on.scan(txn.qr_content, stranger.staff_no)
    with pytest.raises(services.SigningRefused) as refused:
        services.poll_qr_login(user, txn.transaction_id, workstation_id=WS1)
    assert refused.value.code == "qr_other_user"
    assert not SigningSession.objects.exists()


def test_logging_out_of_the_system_ends_signing_sessions(ca_on, identities, signer, client):
    bob = identities["bob"]
    user = signer("bob", bob)
    session = qr_session(user, ca_on, bob.staff_no, ws=WS1)
    c = browser_client(client, user, ws=WS1)
    c.post("/accounts/logout/")
    session.refresh_from_db()
    assert session.ended_at is not None and session.end_reason == "退出系统登录"
