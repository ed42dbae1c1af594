"""The LIS review intake (POST /api/lab/v1/reviews): a report submitted for review appears in its
module's queue; a changed report is a new version whose review replaces the old one in the queue;
every refusal is precise and stores nothing. Approval with signature archives the version at
once (PDF + index with the signature block), and a withdrawn approval voids what was not sent."""

from __future__ import annotations

import base64
import json

import pytest

from esign import services as esign
from esign.models import ReviewReport
from hospital_interop.errors import InvalidInput
from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.lab.models import LabReport, LabReportVersion, LabTransfer, LabTransferLog
from tests.esign.helpers import WS1
from tests.lab.conftest import files_in, lis_report, post_json
from tests.lab.test_signed_versions import pdf_text

URL = "/api/lab/v1/reviews"
ORG = "12110000400000000X"


def review_body(seed: int, reviewer, module="clinical", **extra) -> dict:
    body = lis_report(seed, name="张建华", reviewDoctor=reviewer.doctor)
    body.update({"module": module, **extra})
    return body


@pytest.mark.django_db
def test_a_submitted_report_is_in_its_module_queue_and_a_change_is_a_new_version(
    client, lis, lab_dicts, folders, reviewer, django_capture_on_commit_callbacks
):
    candidates = [reviewer.doctor, {"staffNo": "L2003", "name": "郑审核"}]
    body = review_body(91, reviewer, module="免疫", version=1, reviewers=candidates)
    rid = body["reportId"]
    r = post_json(client, URL, body, lis)
    assert r.status_code == 201, r.content
    answer = r.json()
    assert answer["version"] == 1 and answer["module"] == "immuno" and answer["reviewStatus"] == "pending"
    assert answer["statusUrl"] == f"/api/lab/v1/reviews/{rid}/1"
    review = ReviewReport.objects.get(report_id=rid, report_version=1)
    assert review.lab_version.version == 1 and review.module == "immuno"
    assert review.reviewer_candidates == candidates
    assert (review.reviewer_staff_no, review.reviewer_name) == (reviewer.ident.staff_no, reviewer.ident.name)
    assert answer["reviewUrl"] == f"/esign/reports/{review.pk}/"

    # the same report again: 200, nothing new
    again = post_json(client, URL, body, lis)
    assert again.status_code == 200 and again.json()["version"] == 1
    assert ReviewReport.objects.filter(report_id=rid).count() == 1

    # the module's queue lists it (the reviewer's page)
    client.force_login(reviewer.user)
    page = client.get("/esign/review/immuno/").content.decode()
    assert f'data-report="{rid}"' in page and "候选审核者" in page and "郑审核" in page
    assert f'data-report="{rid}"' not in client.get("/esign/review/clinical/").content.decode()

    # the LIS changes a result: version 2; v1 leaves the queue (superseded), v2 is waiting
    changed = review_body(91, reviewer, module="immuno", version=2, reviewers=candidates)
    changed["items"][2]["result"] = "121"
    r2 = post_json(client, URL, changed, lis)
    assert r2.status_code == 201 and r2.json()["version"] == 2
    assert ReviewReport.objects.get(report_id=rid, report_version=1).status == "superseded"
    v2 = ReviewReport.objects.get(report_id=rid, report_version=2)
    assert v2.status == "pending" and {i["code"]: i["result"] for i in v2.items}["HGB"] == "121"
    page = client.get("/esign/review/immuno/").content.decode()
    assert page.count(f'data-report="{rid}"') == 1
    with pytest.raises(esign.SigningRefused) as refused:
        esign.approve_report(
            ReviewReport.objects.get(report_id=rid, report_version=1).pk, reviewer.user, workstation_id=WS1
        )
    assert refused.value.code == "superseded" and "已被新版本取代" in refused.value.message

    # status for the LIS: pending, no signature yet
    status = client.get(f"{URL}/{rid}/2", **lis).json()
    assert status["reviewStatus"] == "pending" and status["signature"] is None
    assert status["reviewerCandidates"] == candidates

    # signed in the review module: archived at once, without a call from the LIS
    with django_capture_on_commit_callbacks(execute=True):
        approval = esign.approve_report(v2.pk, reviewer.user, workstation_id=WS1)
    assert approval.outcome == "signed"
    assert files_in(folders.drop) == [f"{rid}_v2.json", f"{rid}_v2.pdf"]
    idx = json.loads((folders.drop / f"{rid}_v2.json").read_text("utf-8"))
    assert idx["signature"]["certSerial"] == approval.signature.cert_sn
    assert idx["signature"]["originalHash"] == approval.signature.original_hash
    assert LabReportVersion.objects.get(report__report_id=rid, version=2).signed is True
    assert LabReport.objects.get(report_id=rid).status == LabReport.Status.ARCHIVED
    assert LabTransferLog.objects.filter(report_id=rid, event="reviewed").exists()
    status = client.get(f"{URL}/{rid}/2", **lis).json()
    assert status["reviewStatus"] == "approved" and status["signed"] is True
    sig = status["signature"]
    assert (
        sig["signatureValue"] == approval.signature.signature
        and sig["certSerial"] == approval.signature.cert_sn
    )
    assert sig["timestampToken"] and sig["timestampVerified"] is True and sig["certificate"]


@pytest.mark.django_db
def test_refusals_are_precise_and_store_nothing(client, lis, lab_dicts, folders, reviewer):
    body = review_body(92, reviewer)
    rid = body["reportId"]

    bad = {**body, "module": "病理"}
    r = post_json(client, URL, bad, lis)
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["field"] == "module" and err["rule"] == "choice" and "clinical（临检）" in err["message"]

    missing = {k: v for k, v in body.items() if k not in ("module", "specimen")}
    fields = {e["field"] for e in post_json(client, URL, missing, lis).json()["errors"]}
    assert {"module", "specimen"} <= fields  # the review fields and the report's, in one answer

    r = post_json(client, URL, {**body, "reviewers": [{"staffNo": "L9999", "name": "别人"}]}, lis)
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {
            "field": "reviewDoctor.staffNo",
            "rule": "candidate",
            "message": f"报告审核者（工号 {reviewer.ident.staff_no}）不在候选审核者 reviewers 中："
            "只有报告所列审核者本人能签名。",
        }
    ]
    r = post_json(client, URL, {**body, "version": 0}, lis)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "version"
    r = post_json(client, URL, {**body, "version": 2}, lis)
    assert r.status_code == 409
    assert r.json()["errors"][0]["message"] == (
        f"报告 {rid} 的内容与已收到的版本不同，将生成第 1 版，与提交的 version 2 不一致；未保存。"
    )
    assert not LabReport.objects.filter(report_id=rid).exists() and not ReviewReport.objects.exists()

    assert post_json(client, URL, body, lis).status_code == 201
    r = post_json(client, URL, {**body, "version": 2}, lis)
    assert r.status_code == 409 and "内容未变时 version 应为 1" in r.json()["errors"][0]["message"]
    r = post_json(client, URL, {**body, "module": "micro"}, lis)
    assert r.status_code == 409
    assert r.json()["errors"][0]["message"] == f"报告 {rid} 第 1 版已在临检审核模块中，不能再提交到其他模块。"
    assert LabReportVersion.objects.filter(report__report_id=rid).count() == 1

    r = client.get(f"{URL}/{rid}/7", **lis)
    assert r.status_code == 404 and r.json()["message"] == f"报告 {rid} 第 7 版未提交审核"
    assert post_json(client, URL, body, {}).status_code == 401


@pytest.mark.django_db
def test_the_review_api_is_in_the_lab_openapi_document(client, lis):
    import yaml

    r = client.get("/api/lab/v1/schema", **lis)
    assert r.status_code == 200
    schema = yaml.safe_load(r.content)
    post = schema["paths"]["/api/lab/v1/reviews"]["post"]
    assert post["operationId"] == "lab_review_submitted"
    assert {"200", "201", "400", "401", "403", "409", "413", "415"} <= set(post["responses"])
    assert post["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiError"
    }
    status = schema["paths"]["/api/lab/v1/reviews/{report_id}/{version}"]["get"]
    assert status["operationId"] == "lab_review_status" and "404" in status["responses"]
    link = schema["paths"]["/api/lab/v1/reviews/{report_id}/{version}/signing-link"]["post"]
    assert link["operationId"] == "lab_review_signing_link" and "201" in link["responses"]


@pytest.mark.django_db
def test_a_withdrawn_approval_voids_what_was_not_sent_and_a_new_approval_sends_it_again(
    client,
    lis,
    lab_dicts,
    folders,
    service,
    sim,
    inline_delivery,
    reviewer,
    django_capture_on_commit_callbacks,
    tmp_path,
):
    body = review_body(93, reviewer)
    rid = body["reportId"]
    assert post_json(client, URL, body, lis).status_code == 201
    review = ReviewReport.objects.get(report_id=rid)
    with django_capture_on_commit_callbacks(execute=True):
        esign.approve_report(review.pk, reviewer.user, workstation_id=WS1)
    assert service.run_once().enqueued == 1
    rows = OutboxRecord.objects.filter(business_key=f"{ORG}|{rid}")
    assert set(rows.values_list("interface", flat=True)) == {
        "LAB_REPORT_PDF",
        "LAB_REPORT_DETAIL",
        "PUB_LAB_REPORT_PDF",
        "PUB_LAB_REPORT_DETAIL",
    }

    # withdrawn before delivery: the four uploads are voided, the pair leaves the drop folder
    with pytest.raises(InvalidInput) as short:
        esign.withdraw_approval(review.pk, reviewer.user, reason="")
    assert short.value.errors[0]["message"] == "请填写撤销审核的原因（2–100 个字）。"
    client.force_login(reviewer.user)  # 撤销审核 on the report page
    assert 'id="withdraw"' in client.get(f"/esign/reports/{review.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/esign/reports/{review.pk}/withdraw", {"reason": "HGB 需复查"}, follow=True)
    assert f"已撤销报告 {rid} 第 1 版的审核" in page.content.decode()
    review.refresh_from_db()
    assert review.status == "pending" and not review.signed and review.review_note == "已撤销审核：HGB 需复查"
    assert set(rows.values_list("state", flat=True)) == {State.VOIDED}
    assert files_in(folders.drop) == []
    assert LabTransfer.objects.get(report_id=rid).state == LabTransfer.State.CLEARED
    log = LabTransferLog.objects.filter(report_id=rid, event="withdrawn").get().message
    assert "未发送的 4 条上传已作废" in log and "HGB 需复查" in log
    inline_delivery()
    assert sim.record("LAB_REPORT_DETAIL", f"{ORG}|{rid}") is None

    # approved and signed again: archived again, uploaded, the platform holds that signature
    with django_capture_on_commit_callbacks(execute=True):
        again = esign.approve_report(review.pk, reviewer.user, workstation_id=WS1)
    assert service.run_once().enqueued == 1
    inline_delivery()
    held = sim.record("LAB_REPORT_PDF", f"{ORG}|{rid}")
    assert held is not None and sim.record("LAB_REPORT_DETAIL", f"{ORG}|{rid}") is not None
    version = LabReportVersion.objects.get(report__report_id=rid)
    assert version.signed is True and held["payload"]["fileHash"] == version.pdf_sm3
    pdf = base64.b64decode(held["payload"]["fileContent"])
    text = pdf_text(pdf, tmp_path)
    assert again.signature.cert_sn in text and again.signature.original_hash in text
