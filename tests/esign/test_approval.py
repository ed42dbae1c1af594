"""Signing on approval in the six review modules: what is stored verifies with the signer's
certificate, breaks when one byte of the original changes, and is refused for a revoked or
expired certificate; with CA disabled approval works unsigned and says so."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from esign import certs, services
from esign.demo import create_sample_reports
from esign.models import ReportSignature, ReviewReport, SignJob
from hospital_interop.municipal import gm

from .conftest import agent_sign, new_identity, past
from .helpers import WS1, browser_client, qr_session, ukey_session

MODULES = [code for code, _ in ReviewReport.Module.choices]
pytestmark = pytest.mark.django_db


def _assert_signature_is_sound(sig: ReportSignature, expected_cert_sn: str):
    cert = certs.load_certificate(sig.certificate)
    assert cert.serial == sig.cert_sn == expected_cert_sn
    text = sig.original_text.encode("utf-8")
    assert cert.verify(text, base64.b64decode(sig.signature))
    assert sig.original_hash == gm.sm3_hex(text)
    assert sig.timestamp_token and sig.signed_at
    assert services.verify_signature(sig).valid
    # one byte of the stored original changed: the signature no longer verifies
    tampered = bytearray(text)
    tampered[text.index(b'"result":"') + 10] ^= 0x01
    assert not cert.verify(bytes(tampered), base64.b64decode(sig.signature))
    sig.original_text = bytes(tampered).decode("utf-8", errors="replace")
    result = services.verify_signature(sig)
    assert not result.valid
    assert [c["ok"] for c in result.checks[:2]] == [False, False]


@pytest.mark.parametrize("module", MODULES)
def test_ukey_approval_signs_the_canonical_report(module, ca_on, identities, signer, client):
    alice = identities["alice"]
    user = signer("alice", alice)
    ukey_session(user, alice)
    report = create_sample_reports(1, modules=[module])[0]
    c = browser_client(client, user)
    prepared = c.post(f"/esign/reports/{report.pk}/sign-data").json()
    assert prepared["ok"] and prepared["certSn"] == alice.ukey_cert_sn
    signed = agent_sign(alice, prepared["data"], cert_sn=prepared["certSn"])
    answer = c.post(
        f"/esign/reports/{report.pk}/approve",
        {"signature": signed["signature"], "certificate": signed["certificate"]},
        content_type="application/json",
    ).json()
    assert answer["ok"], answer
    assert "UKey 电子签名" in answer["message"]
    report.refresh_from_db()
    assert report.status == "approved" and report.signed and report.reviewer == user
    sig = report.signatures.get()
    assert sig.method == "ukey" and sig.signer_staff_no == alice.staff_no
    assert sig.original_text == base64.b64decode(prepared["data"]).decode()
    content = __import__("json").loads(sig.original_text)
    assert content["schema"] == "lab-report-signed/1" and content["reportId"] == report.report_id
    assert content["reportVersion"] == 1 and (sig.report_number, sig.report_version) == (report.report_id, 1)
    assert content["items"] == report.items
    assert content["reviewer"] == {"name": alice.name, "staffNo": alice.staff_no}
    _assert_signature_is_sound(sig, alice.ukey_cert_sn)


@pytest.mark.parametrize("module", MODULES)
def test_auto_sign_approval_in_a_qr_session(module, ca_on, identities, signer, client):
    bob = identities["bob"]
    user = signer("bob", bob)
    qr_session(user, ca_on, bob.staff_no)
    ca_on.grant_auto_sign(bob.ca_user_id, bob.staff_no)
    report = create_sample_reports(1, modules=[module])[0]
    response = browser_client(client, user).post(f"/esign/reports/{report.pk}/approve", follow=True)
    assert "已审核并完成自动签名" in response.content.decode()
    report.refresh_from_db()
    assert report.status == "approved" and report.signed
    _assert_signature_is_sound(report.signatures.get(), bob.cert_sn)


def test_signature_block_for_the_lab_upload(ca_on, identities, signer, client):
    bob = identities["bob"]
    user = signer("bob", bob)
    qr_session(user, ca_on, bob.staff_no)
    ca_on.grant_auto_sign(bob.ca_user_id, bob.staff_no)
    report = create_sample_reports(1, modules=["biochem"])[0]
    facts = services.review_facts(report, unnamed_reviewer={"staffNo": bob.staff_no, "name": bob.name})
    assert services.signature_block(report.report_id, 1, facts) is None
    services.approve_report(report.pk, user, workstation_id=WS1)
    block = services.signature_block(report.report_id, 1, facts)
    assert set(block) == {
        "reportId",
        "reportVersion",
        "originalText",
        "originalHash",
        "hashAlgorithm",
        "signatureAlgorithm",
        "signatureValue",
        "certificate",
        "certSerial",
        "signerName",
        "signerStaffNo",
        "signedAt",
        "timestampToken",
        "timestampVerified",
        "method",
    }
    assert block["certSerial"] == bob.cert_sn and block["signatureAlgorithm"] == "SM3withSM2"
    assert block["reportVersion"] == 1 and block["timestampVerified"] is True
    # another version, other facts, or another reviewer named: not this signature
    assert services.signature_block(report.report_id, 2, facts) is None
    changed = {**facts, "items": [{**facts["items"][0], "result": "57"}, *facts["items"][1:]]}
    assert services.signature_block(report.report_id, 1, changed) is None
    other = {**facts, "reviewer": {"staffNo": "L2002", "name": bob.name}}
    assert services.signature_block(report.report_id, 1, other) is None
    # a row whose signer is not the reviewer the text names (tampered, or from before the check)
    ReportSignature.objects.filter(report=report).update(signer_staff_no="L2002")
    assert services.signature_block(report.report_id, 1, facts) is None
    cert = certs.load_certificate(block["certificate"])
    assert cert.verify(block["originalText"].encode(), base64.b64decode(block["signatureValue"]))
    assert ca_on.client().verify_signature(
        certificate=block["certificate"],
        data=block["originalText"].encode(),
        signature=block["signatureValue"],
    )
    assert datetime.fromisoformat(block["signedAt"]).tzinfo is not None


def test_phone_confirmation_when_auto_sign_is_off(ca_on, signer, client):
    ident = new_identity(ca_on, "周确认")
    user = signer("zhou", ident)
    qr_session(user, ca_on, ident.staff_no)
    report = create_sample_reports(1, modules=["micro"])[0]
    c = browser_client(client, user)
    response = c.post(f"/esign/reports/{report.pk}/approve", follow=True)
    assert "请在手机上确认" in response.content.decode()
    report.refresh_from_db()
    assert report.status == "signing"
    assert c.get(f"/esign/reports/{report.pk}/sign-status").json()["status"] == "TOSIGN"
    job = SignJob.objects.get(report=report)
    ca_on.confirm_sign(job.sign_data_id, ident.staff_no)
    answer = c.get(f"/esign/reports/{report.pk}/sign-status").json()
    assert answer["status"] == "signed", answer
    report.refresh_from_db()
    sig = report.signatures.get()
    assert sig.method == "phone" and sig.original_text == job.original_text
    _assert_signature_is_sound(sig, ident.cert_sn)


def test_refused_when_the_certificate_is_revoked(ca_on, signer, client):
    ident = new_identity(ca_on, "吴吊销")
    user = signer("wu", ident)
    qr_session(user, ca_on, ident.staff_no)
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    ca_on.revoke(ident.cert_sn)
    report = create_sample_reports(1, modules=["immuno"])[0]
    page = (
        browser_client(client, user).post(f"/esign/reports/{report.pk}/approve", follow=True).content.decode()
    )
    assert "证书已吊销，不能用于电子签名，审核未完成" in page
    report.refresh_from_db()
    assert report.status == "pending" and not report.signatures.exists()


def test_refused_when_the_certificate_has_expired(ca_on, signer, client):
    ident = new_identity(ca_on, "郑过期")
    user = signer("zheng", ident)
    qr_session(user, ca_on, ident.staff_no)
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    ca_on.reissue(ident.ca_user_id, past(400), past(1))
    report = create_sample_reports(1, modules=["marrow"])[0]
    page = (
        browser_client(client, user).post(f"/esign/reports/{report.pk}/approve", follow=True).content.decode()
    )
    assert "证书已过期，不能用于电子签名，审核未完成" in page
    report.refresh_from_db()
    assert report.status == "pending" and not report.signatures.exists()


def test_ukey_approval_refused_after_revocation(ca_on, signer, client, tmp_path):
    from .conftest import _stop, start_agent

    ident = new_identity(ca_on, "钱撤销")
    proc = start_agent(ca_on, ident, tmp_path)
    try:
        user = signer("qian", ident)
        ukey_session(user, ident)
        ca_on.revoke(ident.ukey_cert_sn)
        report = create_sample_reports(1, modules=["clinical"])[0]
        c = browser_client(client, user)
        prepared = c.post(f"/esign/reports/{report.pk}/sign-data").json()
        signed = agent_sign(ident, prepared["data"], cert_sn=prepared["certSn"])
        answer = c.post(
            f"/esign/reports/{report.pk}/approve",
            {"signature": signed["signature"], "certificate": signed["certificate"]},
            content_type="application/json",
        )
        assert answer.status_code == 403
        assert "证书已吊销" in answer.json()["message"]
        report.refresh_from_db()
        assert report.status == "pending" and not report.signatures.exists()
        # an expired UKey certificate is refused at login already
        expired = ca_on.reissue(
            ident.ca_user_id,
            past(400),
            past(1),
            publicKey=ident.ukey_key.public_key().hex,
            keySerial=ident.ukey_serial,
        )
        challenge = services.issue_challenge()
        sig = ident.ukey_key.sign(base64.b64decode(challenge["challenge"]))
        with pytest.raises(services.SigningRefused, match="证书已过期"):
            services.ukey_login(
                user,
                challenge=challenge,
                signed_challenge=challenge["challenge"],
                certificate=expired["certificate"],
                signature=base64.b64encode(sig).decode(),
                key_serial=ident.ukey_serial,
                workstation_id="c" * 32,
            )
    finally:
        _stop(proc)


def test_ca_disabled_approves_without_signing_and_says_so(db, make_user, client):
    services.set_parameters({"CA_ENABLED": "0"}, actor="test")
    user = make_user("lab0", role="lab")
    report = create_sample_reports(1, modules=["clinical"])[0]
    c = browser_client(client, user)
    detail = c.get(f"/esign/reports/{report.pk}/").content.decode()
    assert "CA 未启用" in detail and "审核不进行电子签名" in detail
    page = c.post(f"/esign/reports/{report.pk}/approve", follow=True).content.decode()
    assert "已审核。CA 未启用，审核未进行电子签名" in page
    report.refresh_from_db()
    assert report.status == "approved" and not report.signed and not report.signatures.exists()
    facts = services.review_facts(report, unnamed_reviewer={"staffNo": "", "name": ""})
    assert services.signature_block(report.report_id, 1, facts) is None


def test_ca_enabled_without_a_signing_session_is_refused(ca_on, identities, signer, client):
    user = signer("alice", identities["alice"])
    report = create_sample_reports(1, modules=["biochem"])[0]
    c = browser_client(client, user)
    assert "审核报告前请先完成电子签名登录" in c.get("/esign/review/biochem/").content.decode()
    page = c.post(f"/esign/reports/{report.pk}/approve", follow=True).content.decode()
    assert "请先进行电子签名登录" in page
    report.refresh_from_db()
    assert report.status == "pending"


def test_batch_approval_uses_auto_sign_within_its_window(ca_on, signer, client):
    ident = new_identity(ca_on, "孙批量")
    user = signer("sun", ident)
    qr_session(user, ca_on, ident.staff_no)
    reports = create_sample_reports(3, modules=["immuno"])
    c = browser_client(client, user)
    ids = [r.pk for r in reports]
    page = c.post("/esign/review/immuno/batch", {"report": ids}, follow=True).content.decode()
    assert "批量审核使用自动签名：请先开启自动签名授权" in page
    assert not ReviewReport.objects.filter(pk__in=ids, status="approved").exists()
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no, minutes=30)
    page = c.post("/esign/review/immuno/batch", {"report": ids}, follow=True).content.decode()
    assert "批量审核 3 份报告并完成自动签名" in page
    for sig in ReportSignature.objects.filter(report__in=ids):
        assert sig.method == "auto" and services.verify_signature(sig).valid
    # after the authorisation is closed, auto-sign stops
    more = create_sample_reports(1, modules=["immuno"])
    ca_on.client().disable_auto_sign(user_id=ident.ca_user_id)
    page = c.post("/esign/review/immuno/batch", {"report": [more[0].pk]}, follow=True).content.decode()
    assert "请先开启自动签名授权" in page


def test_auto_sign_window_comes_from_the_grant(ca_on, signer):
    ident = new_identity(ca_on, "冯窗口")
    user = signer("feng", ident)
    assert services.auto_sign_status(user).is_open is False
    task = services.enable_auto_sign(user, 45)
    assert task.status == "TOSIGN" and task.qr_content
    ca_on.scan(task.qr_content, ident.staff_no)
    state = services.auto_sign_status(user)
    start = datetime.fromisoformat(state.valid_from.replace("Z", "+00:00"))
    end = datetime.fromisoformat(state.valid_to.replace("Z", "+00:00"))
    assert state.is_open and end - start == timedelta(minutes=45) and end > datetime.now(UTC)
    services.disable_auto_sign(user)
    assert services.auto_sign_status(user).is_open is False
