"""Approve → archive → PDF and index in the drop folder → 3.4 and 3.3 accepted by the real
simulator → files archived and logged; re-approval with changed results is version 2 of the same key."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from django.utils import timezone

from hospital_interop import atrest
from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.lab.models import LabReport, LabTransfer, LabTransferLog
from tests.lab.conftest import files_in, lis_report, post_json

ORG = "12110000400000000X"


@pytest.mark.django_db
def test_approve_archive_upload_clear_then_reapproval_is_version_2(
    client, lis, lab_dicts, folders, service, sim, inline_delivery, reviewer, artifacts_dir
):
    body = lis_report(7, name="张建华", reviewDoctor=reviewer.doctor)

    # 审核: stored as version 1, nothing sent yet; the named reviewer signs it (CA simulator, auto-sign)
    r = post_json(client, "/api/lab/v1/reports", body, lis)
    assert r.status_code == 201, r.content
    assert r.json()["version"] == 1 and r.json()["changed"] is True
    assert (
        post_json(client, "/api/lab/v1/reports", body, lis).json()["changed"] is False
    )  # same content again
    assert not OutboxRecord.objects.exists()
    cert_sn = reviewer.sign(body["reportId"], 1).cert_sn

    # 归档: PDF and index appear in the drop folder, written atomically (no temporaries left)
    r = post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis)
    assert r.status_code == 202, r.content
    stem = f"{body['reportId']}_v1"
    assert files_in(folders.drop) == [f"{stem}.json", f"{stem}.pdf"]
    pdf_bytes = (folders.drop / f"{stem}.pdf").read_bytes()
    idx = json.loads((folders.drop / f"{stem}.json").read_text("utf-8"))
    assert idx["pdf"] == {"fileName": f"{stem}.pdf", "size": len(pdf_bytes), "sm3": sm3_hex(pdf_bytes)}
    assert (
        idx["signature"]["certSerial"] == cert_sn and idx["signature"]["signatureAlgorithm"] == "SM3withSM2"
    )
    assert idx["signature"]["reportVersion"] == 1 and idx["signature"]["timestampVerified"] is True
    assert r.json()["pdfSm3"] == sm3_hex(pdf_bytes)
    assert (
        post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis).json()["written"]
        is False
    )

    # the PDF renders Chinese text: pdftotext extracts the patient's name, item names, HR and the signature
    text = subprocess.run(
        ["pdftotext", "-layout", str(folders.drop / f"{stem}.pdf"), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for expected in (
        "中国医学科学院肿瘤医院",
        "张建华",
        "白细胞计数",
        "血红蛋白",
        "丙氨酸氨基转移酶",
        "中性粒细胞百分比",
        "乙型肝炎病毒表面抗原",
        "HR",
        "电子签名",
        cert_sn,
        "吴审核",
        "含可信时间戳",
        "↓",
        "↑",
    ):
        assert expected in text, expected
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(folders.drop / f"{stem}.pdf"),
            str(artifacts_dir / "lab-report-page1"),
        ],
        check=True,
    )

    # the transfer service pairs them and enqueues 3.4 + 3.3 in one go
    stats = service.run_once()
    assert stats.enqueued == 1 and stats.quarantined == 0
    t = LabTransfer.objects.get()
    assert t.state == LabTransfer.State.ENQUEUED
    assert files_in(folders.drop) == [f"{stem}.json", f"{stem}.pdf"]  # nothing removed before acceptance
    assert service.run_once().enqueued == 0  # seen again: not enqueued again

    inline_delivery()
    stats = service.run_once()
    assert stats.accepted == 1 and stats.cleared == 1
    t.refresh_from_db()
    assert t.state == LabTransfer.State.CLEARED
    assert files_in(folders.drop) == []
    archived = files_in(folders.archive)
    assert archived == [f"{stem}.json.sm4", f"{stem}.pdf.sm4"]  # sealed: they hold patient data
    assert atrest.read_sealed_file(next(folders.archive.rglob(f"{stem}.pdf.sm4"))) == pdf_bytes

    key = f"{ORG}|{body['reportId']}"
    detail = sim.record("LAB_REPORT_DETAIL", key)
    held_pdf = sim.record("LAB_REPORT_PDF", key)
    assert detail["version"] == 1 and held_pdf["version"] == 1
    assert (
        held_pdf["payload"]["fileHash"]
        == sm3_hex(pdf_bytes)
        == sm3_hex(base64.b64decode(held_pdf["payload"]["fileContent"]))
    )
    p = detail["payload"]
    assert p["requestDoctorLicenseNo"] == "110110000234567" and p["requestDeptCode"] == "19"
    assert p["labDeptCode"] == "30" and p["recognitionMark"] == "HR" and "HR" in p["reportRemark"]
    by_code = {i["itemCode"]: i for i in p["items"]}
    assert by_code["WBC"]["recognitionItemCode"] == "JY0001" and by_code["WBC"]["recognitionMark"] == "HR"
    assert "recognitionMark" not in by_code["NEUT%"]  # not a recognition item
    assert {c["chargeItemCode"] for c in p["chargeItems"]} >= {"250101015", "250305001"}
    events = list(LabTransferLog.objects.filter(report_id=body["reportId"]).values_list("event", flat=True))
    assert {"discovered", "enqueued", "accepted", "cleared"} <= set(events)

    # 再审核 with a changed result: version 2 of the same platform key
    changed = lis_report(
        7, name="张建华", reviewDoctor=reviewer.doctor, reviewedAt="2026-11-27T11:30:00+08:00"
    )
    changed["items"][2]["result"] = "121"
    r = post_json(client, "/api/lab/v1/reports", changed, lis)
    assert r.status_code == 201 and r.json()["version"] == 2
    post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis)
    assert files_in(folders.drop) == [f"{body['reportId']}_v2.json", f"{body['reportId']}_v2.pdf"]
    service.run_once()
    inline_delivery()
    service.run_once()
    assert files_in(folders.drop) == []
    detail = sim.record("LAB_REPORT_DETAIL", key)
    assert detail["version"] == 2 and sim.record("LAB_REPORT_PDF", key)["version"] == 2
    assert {i["itemCode"]: i["resultValue"] for i in detail["payload"]["items"]}["HGB"] == "121"
    assert OutboxRecord.objects.filter(interface="LAB_REPORT_DETAIL", state=State.DONE).count() == 2
    # the public-data twins (电子病历共享 §3.1.2, §3.2.2) came from the same report, versioned with it
    public = sim.record("PUB_LAB_REPORT_DETAIL", key)
    assert public["version"] == 2 and sim.record("PUB_LAB_REPORT_PDF", key)["version"] == 2
    assert public["payload"]["items"] == [
        {k: v for k, v in i.items() if k in public["payload"]["items"][n]}
        for n, i in enumerate(detail["payload"]["items"])
    ]
    assert (
        sim.record("PUB_LAB_REPORT_PDF", key)["payload"]["fileHash"]
        == sim.record("LAB_REPORT_PDF", key)["payload"]["fileHash"]
    )
    assert LabReport.objects.get().version == 2

    status = client.get(f"/api/lab/v1/reports/{body['reportId']}", **lis).json()
    assert [v["version"] for v in status["versions"]] == [2, 1]
    assert {t["state"] for t in status["transfers"]} == {"cleared"}
    assert all(t["detailUpload"]["state"] == "done" for t in status["transfers"])


@pytest.mark.django_db
def test_recognition_decisions_of_the_visit_go_into_the_detail(
    lab_dicts, folders, service, sim, inline_delivery
):
    """Not sent by the LIS: the doctors' decisions for the visit become externalResults / nonRecognitions."""
    from mutual_recognition.lab import services
    from mutual_recognition.models import Decision, Encounter

    body = lis_report(8, name="李桂英")
    enc = Encounter.objects.create(
        visit_id=body["visit"]["visitId"], name="李桂英", id_no=body["patient"]["idNo"]
    )
    common = dict(
        encounter=enc,
        kind="lab",
        order_id=body["orderIds"][0],
        order_item_code="ZLBZW",
        order_item_name="肿瘤标志物",
        external_org_code="12110000400001234A",
        external_org_name="北京大学人民医院",
        doctor_staff_no="D1002",
        doctor_name="李秀英",
        dept_code="1101",
        dept_name="内科（肿瘤内科）",
        std_dept_code="19",
        std_dept_name="肿瘤科",
        decided_at=timezone.now(),
    )
    Decision.objects.create(
        **common,
        sub_item_code="AFP",
        sub_item_name="甲胎蛋白",
        standard_code="JY0062",
        standard_name="甲胎蛋白",
        external_report_id="EJY0001",
        decision="1",
        result={"value": "2.1", "unit": "ng/mL", "range": "0-7", "flag": "N"},
    )
    Decision.objects.create(
        **common,
        sub_item_code="CEA",
        sub_item_name="癌胚抗原",
        standard_code="JY0061",
        standard_name="癌胚抗原",
        external_report_id="EJY0002",
        decision="2",
        platform_reason_code="3",
        reason_name="对诊疗有重要意义（如手术、输血前）",
        note="术前复查",
    )
    services.approve(body, source="LIS")
    archived = services.archive(body["reportId"])
    text = subprocess.run(
        ["pdftotext", str(archived.pdf_path), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert "已采纳的外院互认结果" in text and "北京大学人民医院" in text and "不互认信息" in text
    service.run_once()
    inline_delivery()
    service.run_once()
    p = sim.record("LAB_REPORT_DETAIL", f"{ORG}|{body['reportId']}")["payload"]
    assert p["externalResults"][0]["recognitionItemCode"] == "JY0062"
    assert p["externalResults"][0]["externalOrgName"] == "北京大学人民医院"
    assert (
        p["nonRecognitions"][0]["refusalReasonCode"] == "3" and p["nonRecognitions"][0]["note"] == "术前复查"
    )


@pytest.mark.django_db
def test_the_public_data_twins_are_not_generated_when_switched_off(client, lis, lab_dicts, folders, service):
    from hospital_interop.uploads.models import InterfacePolicy

    InterfacePolicy.objects.create(interface="PUB_LAB_REPORT_DETAIL", generate=False)
    body = lis_report(9)
    assert post_json(client, "/api/lab/v1/reports", body, lis).status_code == 201
    post_json(client, f"/api/lab/v1/reports/{body['reportId']}/archive", {}, lis)
    assert service.run_once().enqueued == 1
    assert sorted(OutboxRecord.objects.values_list("interface", flat=True)) == [
        "LAB_REPORT_DETAIL",
        "LAB_REPORT_PDF",
        "PUB_LAB_REPORT_PDF",
    ]
