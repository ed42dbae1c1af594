"""A signature covers one version of a lab report exactly as its PDF prints it and its index
carries it: signed by the reviewer the report names, over the canonical text of that version's
content. A changed report (version 2) is unsigned until it is signed itself; an archived PDF is
served as archived; "含可信时间戳" only after the token was verified; the verification page says so
when the content changed after signing."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from dictionaries.models import LabSubItem
from esign import services as esign
from esign.models import ReportSignature
from hospital_interop.municipal.gm import sm3_hex
from mutual_recognition.lab import services
from mutual_recognition.lab.models import LabReportVersion
from tests.esign.helpers import WS1, qr_session
from tests.lab.conftest import lis_report, new_identity, post_json


def pdf_text(path_or_bytes, tmp_path=None) -> str:
    if isinstance(path_or_bytes, bytes):
        target = tmp_path / "x.pdf"
        target.write_bytes(path_or_bytes)
        path_or_bytes = target
    return subprocess.run(
        ["pdftotext", str(path_or_bytes), "-"], capture_output=True, check=True, text=True
    ).stdout


def verify_result(page: str) -> str:
    """The verdict line of the verification page, as text."""
    found = re.search(r'id="verify-result"[^>]*>(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


def version(report_id: str, number: int) -> LabReportVersion:
    return LabReportVersion.objects.get(report__report_id=report_id, version=number)


@pytest.fixture
def lab_viewer(client, make_user):
    make_user("lab-viewer", role="lab")
    client.login(username="lab-viewer", password="pw-for-tests-0")
    return client


@pytest.mark.django_db
def test_a_changed_report_is_unsigned_until_version_2_is_signed_and_v1_pdf_stays_as_archived(
    client, lis, lab_dicts, folders, reviewer, make_user, tmp_path
):
    body = lis_report(81, name="张建华", reviewDoctor=reviewer.doctor)
    rid = body["reportId"]
    assert post_json(client, "/api/lab/v1/reports", body, lis).json()["version"] == 1

    # version 1: signed by its reviewer, archived with that signature
    sig1 = reviewer.sign(rid, 1)
    a1 = services.archive(rid)
    idx1 = json.loads(a1.index_path.read_bytes())
    assert idx1["signature"]["originalHash"] == sig1.original_hash and idx1["signature"]["reportVersion"] == 1
    signed = json.loads(idx1["signature"]["originalText"])  # the text signed is the lab content as printed
    assert (
        signed["reportId"] == rid and signed["reportVersion"] == 1 and signed["reviewer"] == reviewer.doctor
    )
    assert {i["code"]: i["result"] for i in signed["items"]}["HGB"] == "118"
    assert {i["code"]: i["name"] for i in signed["items"]}[
        "HGB"
    ] == "血红蛋白"  # the dictionary name the PDF prints
    v1_pdf = a1.pdf_path.read_bytes()
    assert sm3_hex(v1_pdf) == version(rid, 1).pdf_sm3
    text1 = pdf_text(a1.pdf_path)
    assert (
        "签名人" in text1 and sig1.original_hash in text1 and "第 1 版" in text1 and "含可信时间戳" in text1
    )

    # the LIS re-approves with HGB changed: version 2, archived unsigned (nothing of v1's signature)
    changed = lis_report(81, name="张建华", reviewDoctor=reviewer.doctor)
    changed["items"][2]["result"] = "121"
    assert post_json(client, "/api/lab/v1/reports", changed, lis).json()["version"] == 2
    a2 = services.archive(rid)
    assert a2.written and a2.version.version == 2 and a2.version.signed is False
    idx2 = json.loads(a2.index_path.read_bytes())
    assert idx2["signature"] is None
    assert sig1.original_hash not in a2.index_path.read_text("utf-8")
    text2 = pdf_text(a2.pdf_path)
    assert "签名人" not in text2 and sig1.original_hash not in text2 and "本报告未进行电子签名" in text2

    # version 2 signed (a review of its own: v1's approval does not cover it), archived again
    sig2 = reviewer.sign(rid, 2)
    assert (sig2.report_number, sig2.report_version) == (rid, 2) and sig2.report_id != sig1.report_id
    assert '"result":"121"' in sig2.original_text and sig2.original_hash != sig1.original_hash
    a3 = services.archive(rid)
    assert a3.written and a3.version.signed is True
    idx3 = json.loads(a3.index_path.read_bytes())
    assert idx3["signature"]["originalHash"] == sig2.original_hash and idx3["signature"]["reportVersion"] == 2
    text3 = pdf_text(a3.pdf_path)
    assert text3.count("签名人") == 1 and sig2.original_hash in text3 and sig1.original_hash not in text3
    assert services.archive(rid).written is False  # nothing changed since

    # /lab/reports/<id>/v1.pdf is the archived v1, byte for byte; v2 the last archive of v2
    make_user("lab-viewer", role="lab")
    client.login(username="lab-viewer", password="pw-for-tests-0")
    got = client.get(f"/lab/reports/{rid}/v1.pdf")
    assert got.status_code == 200 and got["Content-Type"] == "application/pdf"
    assert got.content == v1_pdf and sm3_hex(got.content) == version(rid, 1).pdf_sm3
    got2 = client.get(f"/lab/reports/{rid}/v2.pdf")
    assert got2.content == a3.pdf_path.read_bytes() and sm3_hex(got2.content) == version(rid, 2).pdf_sm3


@pytest.mark.django_db
def test_only_the_reviewer_the_report_names_may_sign_it(
    client, lis, lab_dicts, folders, reviewer, ca_on, signer
):
    body = lis_report(82, name="李桂英", reviewDoctor=reviewer.doctor)
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    review = esign.open_review(version(body["reportId"], 1), "biochem")
    assert (review.reviewer_staff_no, review.reviewer_name) == (reviewer.ident.staff_no, reviewer.ident.name)
    colleague = new_identity(ca_on, "郑同事")
    user = signer("zheng", colleague)
    qr_session(user, ca_on, colleague.staff_no)
    ca_on.grant_auto_sign(colleague.ca_user_id, colleague.staff_no)
    with pytest.raises(esign.SigningRefused) as refused:
        esign.approve_report(review.pk, user, workstation_id=WS1)
    assert refused.value.code == "not_reviewer"
    assert refused.value.message == (
        f"报告 {body['reportId']} 第 1 版的审核者为 {reviewer.ident.name}（工号 {reviewer.ident.staff_no}），"
        f"当前签名人为 郑同事（工号 {colleague.staff_no}）。只能由报告所列审核者本人签名，审核未完成。"
    )
    review.refresh_from_db()
    assert review.status == "pending" and not review.signatures.exists()
    assert services.archive(body["reportId"]).version.signed is False
    # the reviewer named may
    assert reviewer.sign(body["reportId"], 1).signer_staff_no == reviewer.ident.staff_no


@pytest.mark.django_db
def test_a_review_that_no_longer_matches_its_lab_version_is_not_signed(
    client, lis, lab_dicts, folders, reviewer
):
    body = lis_report(83, name="王淑珍", reviewDoctor=reviewer.doctor)
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    v1 = version(body["reportId"], 1)
    review = esign.open_review(v1, "clinical")
    assert esign.open_review(v1, "clinical") == review  # one review per version
    content = v1.content
    content["items"][2]["result"] = "99"  # the stored lab content changed after the review was opened
    LabReportVersion.objects.filter(pk=v1.pk).update(content=content)
    with pytest.raises(esign.SigningRefused) as refused:
        esign.approve_report(review.pk, reviewer.user, workstation_id=WS1)
    assert refused.value.code == "content_changed" and "报告内容已变更" in refused.value.message
    assert not ReportSignature.objects.exists()


@pytest.mark.django_db
def test_a_timestamp_never_verified_is_not_called_trusted(client, lis, lab_dicts, folders, reviewer):
    body = lis_report(84, name="赵丽", reviewDoctor=reviewer.doctor)
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    sig = reviewer.sign(body["reportId"], 1)
    ReportSignature.objects.filter(pk=sig.pk).update(
        timestamp_verified=False
    )  # as rows signed before the check
    archived = services.archive(body["reportId"])
    text = pdf_text(archived.pdf_path)
    assert "签名人" in text and "含可信时间戳" not in text
    assert json.loads(archived.index_path.read_bytes())["signature"]["timestampVerified"] is False


@pytest.mark.django_db
def test_an_archived_pdf_is_never_rendered_again(
    client, lis, lab_dicts, folders, reviewer, lab_viewer, tmp_path
):
    body = lis_report(85, name="孙玉兰", reviewDoctor=reviewer.doctor)
    rid = body["reportId"]
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    reviewer.sign(rid, 1)
    # not archived yet: a preview, marked so, without the signature
    preview = lab_viewer.get(f"/lab/reports/{rid}/v1.pdf")
    assert preview.status_code == 200 and "_preview.pdf" in preview["Content-Disposition"]
    text = pdf_text(preview.content, tmp_path)
    assert "预览 · 未归档" in text and "签名人" not in text and "预览不含电子签名" in text
    archived = services.archive(rid)
    kept = archived.pdf_path.read_bytes()
    # the dictionary renames an item afterwards: the archived bytes are still what is served
    LabSubItem.objects.filter(code="HGB").update(name="血红蛋白浓度")
    got = lab_viewer.get(f"/lab/reports/{rid}/v1.pdf")
    assert got.content == kept and sm3_hex(got.content) == version(rid, 1).pdf_sm3
    # archived bytes that do not match the archive's SM3 are not served, nor replaced by a rendering
    from mutual_recognition.lab.models import LabArchivedPdf

    LabArchivedPdf.objects.filter(version__report__report_id=rid).update(data=b"%PDF-1.4 something else")
    gone = lab_viewer.get(f"/lab/reports/{rid}/v1.pdf")
    assert gone.status_code == 410 and "不能重新生成" in gone.content.decode()
    assert lab_viewer.get(f"/lab/reports/{rid}/v9.pdf").status_code == 404


@pytest.mark.django_db
def test_the_verification_page_says_when_the_content_changed_after_signing(
    client, lis, lab_dicts, folders, reviewer
):
    body = lis_report(86, name="周桂芳", reviewDoctor=reviewer.doctor)
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    sig = reviewer.sign(body["reportId"], 1)
    client.force_login(reviewer.user)
    verdict = verify_result(client.get(f"/esign/signatures/{sig.pk}/verify").content.decode())
    assert verdict.startswith("签名有效") and "第 1 版的当前内容" in verdict
    v1 = version(body["reportId"], 1)
    content = v1.content
    content["items"][2]["result"] = "121"  # a result changed on the approved report
    LabReportVersion.objects.filter(pk=v1.pk).update(content=content)
    result = esign.verify_signature(sig)
    assert not result.valid and result.content_changed
    assert {c["name"]: c["ok"] for c in result.checks}[
        "签名值（SM3withSM2）"
    ] is True  # the signature itself holds
    page = client.get(f"/esign/signatures/{sig.pk}/verify").content.decode()
    verdict = verify_result(page)
    assert verdict.startswith("报告内容已在签名后变更") and "不能证明当前报告内容经审核者签名" in verdict
    assert result.current_hash in verdict and sig.original_hash in verdict
    assert "报告内容已在签名后变更：当前内容的 SM3 为" in page  # and the check row says why


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_verification_page_in_a_browser(live_server, page, lab_dicts, folders, reviewer, artifacts_dir):
    body = lis_report(87, name="冯秀梅", reviewDoctor=reviewer.doctor)
    services.approve(body, source="LIS")
    sig = reviewer.sign(body["reportId"], 1)
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", reviewer.user.username)
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(f"{live_server.url}/esign/reports/{sig.report_id}/")
    assert "第 1 版" in page.inner_text("h1") and reviewer.ident.staff_no in page.inner_text(
        "#named-reviewer"
    )
    page.click("#verify-link")
    assert page.inner_text("#verify-result").startswith("签名有效")
    v1 = version(body["reportId"], 1)
    content = v1.content
    content["items"][2]["result"] = "121"
    LabReportVersion.objects.filter(pk=v1.pk).update(content=content)
    page.reload()
    verdict = page.inner_text("#verify-result")
    assert verdict.startswith("报告内容已在签名后变更") and sig.original_hash in verdict
    assert "不通过" in page.inner_text("#checks tr:has-text('报告当前内容')")
    page.screenshot(path=str(artifacts_dir / "esign-verify-content-changed.png"), full_page=True)
