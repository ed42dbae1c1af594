"""The embedded signing page's requests (esign/embed.py) without a browser: the QR way (auto-sign
inside the grant, or confirmation on the phone), who may sign, and the link's refusals. The UKey
way in Chromium: tests/lab/test_review_to_upload.py."""

from __future__ import annotations

import json

import pytest

from esign import embed
from esign import services as esign
from esign.models import ReportSignature, ReviewReport
from tests.esign.conftest import agent_sign, identities  # noqa: F401  (UKey agents)
from tests.lab.conftest import files_in, lis_report, new_identity, post_json

ORIGIN = "https://lis.hospital.local"


def submit(client, lis, seed: int, ident, module="micro") -> str:
    body = lis_report(seed, name="王淑珍", reviewDoctor={"staffNo": ident.staff_no, "name": ident.name})
    body["module"] = module
    assert post_json(client, "/api/lab/v1/reviews", body, lis).status_code == 201
    return body["reportId"]


def link(client, lis, rid: str) -> str:
    r = post_json(client, f"/api/lab/v1/reviews/{rid}/1/signing-link", {"origin": ORIGIN}, lis)
    assert r.status_code == 201, r.content
    return r.json()["url"]


def post(client, url, body=None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def origins(ca_on):
    esign.set_parameters({"LIS_SIGN_ORIGINS": ORIGIN})


@pytest.mark.django_db
def test_qr_signing_with_auto_sign_and_with_phone_confirmation(
    client, lis, lab_dicts, folders, ca_on, origins, signer, django_capture_on_commit_callbacks
):
    ident = new_identity(ca_on, "钱审核")
    signer("qian", ident)
    rid = submit(client, lis, 97, ident)  # the embedded page's requests below carry no login
    url = link(client, lis, rid)
    html = client.get(url).content.decode()
    assert "钱审核" in html and "扫码签名" in html and "UKey 签名" in html

    # without an auto-sign grant: the scan names the signer, the phone confirms the signature
    qr = post(client, url + "qr").json()
    assert qr["ok"] and "<svg" in qr["qrSvg"]
    assert (
        post(client, url + "qr-status", {"transactionId": qr["transactionId"]}).json()["status"] == "TOSIGN"
    )
    ca_on.scan(qr["qrContent"], ident.staff_no)
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(client, url + "qr-status", {"transactionId": qr["transactionId"]}).json()
    assert answer["ok"] and answer["status"] == "SIGNING" and answer["signature"] is None
    assert client.get(url + "status").json()["status"] == "SIGNING"
    job = ReviewReport.objects.get(report_id=rid).sign_jobs.get()
    ca_on.confirm_sign(job.sign_data_id, ident.staff_no)
    with django_capture_on_commit_callbacks(execute=True):
        done = client.get(url + "status").json()
    sig = ReportSignature.objects.get(report__report_id=rid)
    assert done["status"] == "approved" and done["signature"]["signatureValue"] == sig.signature
    assert (
        sig.method == "phone" and sig.signer_staff_no == ident.staff_no and esign.verify_signature(sig).valid
    )
    assert files_in(folders.drop) == [f"{rid}_v1.json", f"{rid}_v1.pdf"]  # archived on approval

    # with the grant open: signed at once after the scan
    ca_on.grant_auto_sign(ident.ca_user_id, ident.staff_no)
    rid2 = submit(client, lis, 98, ident, module="marrow")
    url2 = link(client, lis, rid2)
    qr = post(client, url2 + "qr").json()
    ca_on.scan(qr["qrContent"], ident.staff_no)
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(client, url2 + "qr-status", {"transactionId": qr["transactionId"]}).json()
    assert answer["status"] == "approved" and answer["signature"]["method"] == "auto"
    assert answer["signature"]["timestampToken"] and answer["signature"]["certSerial"] == ident.cert_sn
    assert f"{rid2}_v1.pdf" in files_in(folders.drop)


@pytest.mark.django_db
def test_only_the_named_reviewer_signs_and_bad_links_open_nothing(
    client,
    lis,
    lab_dicts,
    folders,
    ca_on,
    origins,
    signer,
    identities,  # noqa: F811
):
    alice, bob = identities["alice"], identities["bob"]
    signer("alice-embed2", alice)
    signer("bob-embed2", bob)
    rid = submit(client, lis, 99, alice)
    url = link(client, lis, rid)

    # Bob's UKey on Alice's report: refused before anything is signed
    cert = agent_sign(bob, "eA==")["certificate"]
    refused = post(client, url + "sign-data", {"certificate": cert, "keySerial": bob.ukey_serial})
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        f"报告 {rid} 第 1 版的审核者为 {alice.name}（工号 {alice.staff_no}），当前签名人为 {bob.name}"
        f"（工号 {bob.staff_no}）。只能由报告所列审核者本人签名，审核未完成。"
    )
    # Alice's certificate with another UKey serial
    alice_cert = agent_sign(alice, "eA==")["certificate"]
    r = post(client, url + "sign-data", {"certificate": alice_cert, "keySerial": bob.ukey_serial})
    assert r.status_code == 403 and f"不是为 {alice.name} 登记的 UKey" in r.json()["message"]
    # Alice's UKey: the text, then the signature over it
    prepared = post(
        client, url + "sign-data", {"certificate": alice_cert, "keySerial": alice.ukey_serial}
    ).json()
    signed = agent_sign(alice, prepared["data"], cert_sn=prepared["certSn"])
    forged = post(
        client,
        url + "sign",
        {
            "certificate": alice_cert,
            "signature": agent_sign(alice, "eA==")["signature"],
            "keySerial": alice.ukey_serial,
        },
    )
    assert forged.status_code == 403 and "签名值验证失败" in forged.json()["message"]
    ok = post(
        client,
        url + "sign",
        {
            "certificate": signed["certificate"],
            "signature": signed["signature"],
            "keySerial": alice.ukey_serial,
        },
    ).json()
    assert ok["ok"] and ok["signature"]["certSerial"] == alice.ukey_cert_sn
    again = post(client, url + "sign-data", {"certificate": alice_cert, "keySerial": alice.ukey_serial})
    assert again.status_code == 403 and "不是待审核状态" in again.json()["message"]

    # links: tampered, expired, another origin, origin removed from the table afterwards
    token = url.split("/")[3]
    assert "无效" in client.get(f"/esign/embed/{token[:-2]}zz/").content.decode()
    with pytest.MonkeyPatch.context() as mp:  # the link's lifetime over: as 30 minutes later
        mp.setattr(embed, "LINK_MINUTES", -1)
        assert "已过期" in client.get(url).content.decode()
    r = post_json(client, f"/api/lab/v1/reviews/{rid}/1/signing-link", {"origin": "http://other"}, lis)
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith(
        "源 http://other 不在统一代码表"
    )
    assert post_json(client, f"/api/lab/v1/reviews/{rid}/1/signing-link", {}, lis).status_code == 400
    assert (
        post_json(client, "/api/lab/v1/reviews/NOPE/1/signing-link", {"origin": ORIGIN}, lis).status_code
        == 404
    )
    esign.set_parameters({"LIS_SIGN_ORIGINS": "https://new-lis.hospital.local"})
    gone = client.get(url)
    assert gone.status_code == 403 and "不在允许列表中" in gone.content.decode()
    assert post(client, url + "status").status_code == 405
    assert client.get(url + "status").status_code == 403
