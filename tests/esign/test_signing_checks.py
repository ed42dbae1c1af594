"""Each check of the signing path (esign.services._store_signature and the UKey branch of
approve_report) has a test here that fails when the check is removed: the signature verifies over
the exact text; the text is the canonical text of the report's current content; the certificate
is the signer's; a UKey signs with its login certificate; the timestamp token covers this
signature, is the CA's and carries a sane time. (The reviewer check and the lab-version check are
in tests/lab/test_signed_versions.py, with lab reports.)"""

import base64
import json

import pytest

from esign import services
from esign.demo import create_sample_reports
from esign.models import ReportSignature, SignJob

from .conftest import _stop, new_identity, past, start_agent
from .helpers import WS1, qr_session, ukey_session

pytestmark = pytest.mark.django_db


def _prepare(report, user):
    return services.prepare_ukey_signing(report.pk, user, workstation_id=WS1)


def _approve_with(report, user, prepared, signature: bytes, certificate: str):
    return services.approve_report(
        report.pk,
        user,
        workstation_id=WS1,
        prepared=prepared,
        ukey_signature=base64.b64encode(signature).decode(),
        ukey_certificate=certificate,
    )


@pytest.fixture
def ukey_signer(ca_on, signer, tmp_path):
    """A signer with a UKey of their own (a software UKey agent) and an open UKey session."""
    ident = new_identity(ca_on, "赵校验")
    proc = start_agent(ca_on, ident, tmp_path)
    user = signer("zhao", ident)
    session = ukey_session(user, ident)
    yield ident, user, session
    _stop(proc)


def test_a_signature_over_other_text_than_the_report_is_refused(ukey_signer):
    ident, user, session = ukey_signer
    report = create_sample_reports(1, modules=["clinical"])[0]
    prepared = _prepare(report, user)
    other = prepared["text"].replace('"result":"102"', '"result":"120"')
    assert other != prepared["text"]
    with pytest.raises(services.SigningRefused) as refused:
        _approve_with(report, user, prepared, ident.ukey_key.sign(other.encode()), session.certificate)
    assert refused.value.code == "bad_signature" and "签名与报告内容不一致" in refused.value.message
    report.refresh_from_db()
    assert report.status == "pending" and not report.signatures.exists()


def test_a_report_changed_after_its_text_was_prepared_is_not_signed(ukey_signer):
    """The text signed must be the canonical text of the report's content at the moment of signing,
    recomputed on the server, not what was handed to the UKey earlier."""
    ident, user, session = ukey_signer
    report = create_sample_reports(1, modules=["clinical"])[0]
    prepared = _prepare(report, user)
    report.items[1]["result"] = "130"  # HGB corrected while the page waited for the UKey
    report.save(update_fields=["items"])
    with pytest.raises(services.SigningRefused) as refused:
        _approve_with(
            report, user, prepared, ident.ukey_key.sign(prepared["text"].encode()), session.certificate
        )
    assert refused.value.code == "content_changed" and "报告内容在签名过程中已变更" in refused.value.message
    assert not ReportSignature.objects.exists()
    # prepared again, the new content is signed
    prepared = _prepare(report, user)
    assert '"result":"130"' in prepared["text"]
    approval = _approve_with(
        report, user, prepared, ident.ukey_key.sign(prepared["text"].encode()), session.certificate
    )
    assert approval.outcome == "signed" and approval.signature.original_text == prepared["text"]


def test_a_ukey_signature_must_use_the_ukey_login_certificate(ukey_signer, ca_on):
    """A second certificate for the same UKey key (re-issued by the CA, valid, the signer's own)
    is still not the certificate of this UKey session."""
    ident, user, session = ukey_signer
    reissued = ca_on.reissue(
        ident.ca_user_id,
        past(1),
        past(-30),
        publicKey=ident.ukey_key.public_key().hex,
        keySerial=ident.ukey_serial,
    )
    assert reissued["certSn"] != session.cert_sn and reissued["status"] == "VALID"
    report = create_sample_reports(1, modules=["biochem"])[0]
    prepared = _prepare(report, user)
    with pytest.raises(services.SigningRefused) as refused:
        _approve_with(
            report, user, prepared, ident.ukey_key.sign(prepared["text"].encode()), reissued["certificate"]
        )
    assert refused.value.code == "cert_mismatch" and "与 UKey 登录证书不一致" in refused.value.message
    assert not ReportSignature.objects.exists()


def test_a_signature_with_another_persons_certificate_is_refused(ca_on, signer):
    """The phone job's answer carries someone else's certificate and signature over the same text
    (e.g. the CA mixed up two jobs): the certificate must belong to the signer."""
    mine, theirs = new_identity(ca_on, "钱本人"), new_identity(ca_on, "孙他人")
    user = signer("qian", mine)
    qr_session(user, ca_on, mine.staff_no)
    report = create_sample_reports(1, modules=["micro"])[0]
    approval = services.approve_report(report.pk, user, workstation_id=WS1)
    assert approval.outcome == "pending_phone"
    job = SignJob.objects.get(report=report)
    other = ca_on.client().push_sign(user_id=theirs.ca_user_id, data=job.original_text.encode(), title="审核")
    ca_on.confirm_sign(other.sign_data_id, theirs.staff_no)
    SignJob.objects.filter(pk=job.pk).update(sign_data_id=other.sign_data_id)
    with pytest.raises(services.SigningRefused) as refused:
        services.finish_sign_job(report.pk, user)
    assert refused.value.code == "cert_other_user" and "签名证书不属于当前审核人" in refused.value.message
    report.refresh_from_db()
    assert report.status == "pending" and not report.signatures.exists()  # to be reviewed again
    assert SignJob.objects.get(pk=job.pk).status == "INVALID"


@pytest.mark.parametrize(
    "fault,why",
    [
        ("digest", "时间戳所盖的摘要不是本签名值的 SM3 摘要"),
        ("key", "时间戳不是 CA"),
        ("time", "早于签名开始时间"),
    ],
)
def test_a_bad_timestamp_token_is_refused(fault, why, ca_on, signer):
    ident = new_identity(ca_on, "周时间")
    user = signer("zhou", ident)
    qr_session(user, ca_on, ident.staff_no)
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    report = create_sample_reports(1, modules=["immuno"])[0]
    ca_on._post("/sim/v1/timestamp-fault", {"fault": fault})
    try:
        with pytest.raises(services.SigningRefused) as refused:
            services.approve_report(report.pk, user, workstation_id=WS1)
    finally:
        ca_on._post("/sim/v1/timestamp-fault", {"fault": ""})
    assert refused.value.code == "bad_timestamp" and why in refused.value.message
    report.refresh_from_db()
    assert report.status == "pending" and not report.signatures.exists()
    # the timestamp service repaired: signed, and the token's check is recorded
    sig = services.approve_report(report.pk, user, workstation_id=WS1).signature
    claims = json.loads(base64.b64decode(sig.timestamp_token.split(".")[0]))
    assert sig.timestamp_verified and sig.timestamp_serial == claims["serial"]
    assert abs((sig.timestamp_time - sig.signed_at).total_seconds()) < 60
