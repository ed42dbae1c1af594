"""Exam uploads through the intake API, the delivery engine and the real platform simulator:
PDF, result (incremental, update by re-submission), void, daily summary; unmapped codes held."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from dictionaries.models import HospitalDepartment, StandardDepartment
from hospital_interop.municipal.specs import sm3_hex
from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.exam import services
from mutual_recognition.exam.models import DailySummaryRun, ExamReport
from tests.exam.conftest import DEPT, PDF, report_body

ORG = "12110000400000000X"


def key(report_id: str) -> str:
    return f"{ORG}|{report_id}"


@pytest.mark.django_db
def test_approval_uploads_pdf_now_and_the_result_on_its_schedule_and_reapproval_updates_the_same_key(
    ris, delivery, sim
):
    body = report_body(1, body_part="B03")
    r = ris.submit(body)
    assert r.status_code == 201, r.json()
    assert r.json()["state"] == "active" and r.json()["version"] == 1

    delivery.immediate()  # the PDF goes at once; the result waits for its incremental push
    pdf = sim.record("EXAM_REPORT_PDF", key(body["reportId"]))
    assert pdf["payload"]["fileHash"] == sm3_hex(PDF + b"1") and pdf["payload"]["patient"] == body["patient"]
    assert sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"])) is None
    delivery.scheduled_push()
    result = sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))
    sent = result["payload"]
    assert result["version"] == 1
    assert (sent["execDeptCode"], sent["execDeptName"]) == DEPT["1302"]  # hospital 1302 → standard
    assert (sent["requestDeptCode"], sent["requestDeptName"]) == DEPT["1001"]
    assert (sent["recognitionItemCode"], sent["bodyPartCode"], sent["bodyPartName"]) == (
        "JC0012",
        "030",
        "胸部",
    )
    assert (
        sent["recognitionMark"] == "HR" and sent["voidFlag"] == "0" and sent["findings"] == body["findings"]
    )

    assert ris.submit(body).status_code == 200  # the same content again: nothing new
    assert OutboxRecord.objects.filter(interface="EXAM_RESULT_SUBMIT").count() == 1

    body2 = {**body, "impression": "右肺上叶结节较前增大，建议增强CT。", "resultCode": "2"}
    r = ris.submit(body2)
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["changed"]
    delivery.all()
    result = sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))
    assert (
        result["version"] == 2 and result["payload"]["impression"] == body2["impression"]
    )  # updated, same key
    assert len(sim.records("EXAM_RESULT_SUBMIT")) == 1
    status = ris.status(body["reportId"]).json()
    assert status["uploads"]["result"]["state"] == "done" and status["uploads"]["result"]["version"] == 2
    assert status["uploads"]["pdf"]["state"] == "done"


@pytest.mark.django_db
def test_withdrawal_voids_the_report_on_the_platform(ris, delivery, sim):
    body = report_body(2)
    ris.submit(body)
    delivery.all()
    assert not sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))["voided"]

    r = ris.withdraw(
        body["reportId"],
        {"voidReason": "检查部位错误", "voidOperatorId": "D1001", "voidOperatorName": "王建国"},
    )
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    delivery.immediate()
    assert sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))["voided"]
    assert sim.record("EXAM_REPORT_PDF", key(body["reportId"]))["voided"]
    void = sim.record("EXAM_REPORT_VOID", key(body["reportId"]))
    assert void["payload"]["voidReason"] == "检查部位错误"
    assert ris.withdraw(body["reportId"], {"voidReason": "again"}).status_code == 200  # idempotent
    assert OutboxRecord.objects.filter(interface="EXAM_REPORT_VOID").count() == 1

    # re-approved after the withdrawal: uploaded again, the platform un-voids it
    assert ris.submit({**body, "findings": body["findings"] + "（更正）"}).json()["state"] == "active"
    delivery.all()
    assert not sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))["voided"]

    # withdrawn before anything was sent: the unsent versions are cancelled, no void is sent
    early = report_body(3)
    ris.submit(early)
    ris.withdraw(
        early["reportId"],
        {"voidReason": "患者信息录入错误", "voidOperatorId": "D1001", "voidOperatorName": "王建国"},
    )
    delivery.all()
    assert sim.record("EXAM_RESULT_SUBMIT", key(early["reportId"])) is None
    assert sim.record("EXAM_REPORT_VOID", key(early["reportId"])) is None
    assert set(
        OutboxRecord.objects.filter(business_key=key(early["reportId"])).values_list("state", flat=True)
    ) == {State.VOIDED}
    assert ris.withdraw("JC9999999999", {"voidReason": "x"}).status_code == 404


@pytest.mark.django_db
def test_an_unmapped_code_holds_the_report_with_a_precise_error_until_the_dictionary_is_fixed(
    ris, delivery, sim, client, make_user, django_capture_on_commit_callbacks
):
    body = report_body(4, exec_dept="1501")  # 国际医疗部: not mapped to a standard department
    r = ris.submit(body)
    assert r.status_code == 202
    problem = r.json()["problems"][0]
    assert problem == {
        "field": "execDeptCode",
        "rule": "mapping.unmapped",
        "message": "院内科室 1501 国际医疗部 未对照标准科室",
    }
    unknown_item = report_body(5, item="XX0001")
    assert ris.submit(unknown_item).json()["problems"][0]["message"] == "院内检查医嘱项目 XX0001 不存在"
    assert not OutboxRecord.objects.exists()  # nothing uploaded
    delivery.all()
    assert sim.records("EXAM_RESULT_SUBMIT") == []

    make_user("ops-exam", role="ops")
    client.login(username="ops-exam", password="pw-for-tests-0")
    page = client.get("/exam/").content.decode()
    assert "院内科室 1501 国际医疗部 未对照标准科室" in page and "院内检查医嘱项目 XX0001 不存在" in page
    assert ExamReport.objects.get(report_id=body["reportId"]).get_state_display() in page

    dept = HospitalDepartment.objects.get(code="1501")  # lab/ops staff map the department
    dept.standard = StandardDepartment.objects.get(code="19")
    with django_capture_on_commit_callbacks(execute=True):  # the dictionary version changes on commit
        dept.save()
    published, held = services.republish_held_if_dictionaries_changed()  # what the periodic sweep does
    assert (published, held) == (1, 1)
    delivery.all()
    sent = sim.record("EXAM_RESULT_SUBMIT", key(body["reportId"]))["payload"]
    assert (sent["execDeptCode"], sent["execDeptName"]) == ("19", "肿瘤科")
    assert ExamReport.objects.get(report_id=body["reportId"]).state == "active"


@pytest.mark.django_db
def test_bad_input_is_rejected_whole_with_errors_per_field(ris):
    body = report_body(6)
    body.pop("findings")
    body["patient"]["sexCode"] = "7"
    body["pdf"]["fileContent"] = "not base64!"
    body["recognitionItemCode"] = "JC0012"
    r = ris.submit(body)
    assert r.status_code == 400
    rules = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert {
        ("findings", "required"),
        ("patient.sexCode", "valueSet"),
        ("pdf.fileContent", "base64"),
        ("recognitionItemCode", "serverFilled"),
    } <= rules
    assert not ExamReport.objects.exists() and not OutboxRecord.objects.exists()
    assert (
        ris.client.post("/api/exam/v1/reports", "{oops", content_type="application/json", **ris.auth).json()[
            "errors"
        ][0]["rule"]
        == "json"
    )
    assert ris.client.post("/api/exam/v1/reports", "{}", content_type="application/json").status_code == 401


@pytest.mark.django_db
def test_daily_summary_counts_match_the_uploads_and_can_be_rerun_for_a_past_date(
    ris, delivery, sim, client, make_user
):
    depts = ["1302", "1302", "1302", "1303", "1303", "1101"]
    bodies = [
        report_body(10 + i, exec_dept=d, studyInstanceUid=f"1.2.3.{i}" if i % 2 else None)
        for i, d in enumerate(depts)
    ]
    for b in bodies:
        assert ris.submit(b).status_code == 201
    late = report_body(30, exec_dept="1302")  # not accepted by the platform today: not counted
    ris.submit(late)
    sim.set_faults(reject_keys=[key(late["reportId"])])
    delivery.all()
    ris.withdraw(
        bodies[0]["reportId"],
        {"voidReason": "报告内容有误", "voidOperatorId": "D1", "voidOperatorName": "张伟"},
    )
    delivery.all()

    today = timezone.localdate()
    run = services.submit_daily_summary(today, trigger="ops", user="test")
    delivery.all()
    live = [r for r in sim.records("EXAM_RESULT_SUBMIT") if not r["voided"]]
    expected = Counter(r["payload"]["execDeptCode"] for r in live)
    summaries = {r["payload"]["deptCode"]: r["payload"] for r in sim.records("EXAM_DAILY_SUMMARY")}
    assert (
        {d: p["reportCount"] for d, p in summaries.items()}
        == dict(expected)
        == {"32": 2, "32.05": 2, "19": 1}
    )
    assert {d: p["studyCount"] for d, p in summaries.items()} == {"32": 1, "32.05": 1, "19": 1}
    assert all(p["statDate"] == today.strftime("%Y%m%d") for p in summaries.values())
    assert run.report_total == 5

    # a past date, re-run from the ops page: two uploads of yesterday
    yesterday = today - timedelta(days=1)
    moved = OutboxRecord.objects.filter(
        interface="EXAM_RESULT_SUBMIT",
        state=State.DONE,
        business_key__in=[key(b["reportId"]) for b in bodies[3:5]],
    )
    moved.update(accepted_at=timezone.now() - timedelta(days=1))
    make_user("ops-daily", role="ops")
    client.login(username="ops-daily", password="pw-for-tests-0")
    r = client.post("/exam/daily/run", {"stat_date": yesterday.isoformat()}, follow=True)
    assert "检查日报已生成：1 个科室，共 2 份报告" in r.content.decode()
    delivery.immediate()
    past = sim.record("EXAM_DAILY_SUMMARY", f"{ORG}|{yesterday:%Y%m%d}|32.05")
    assert past["payload"]["reportCount"] == 2
    assert client.post("/exam/daily/run", {"stat_date": today.isoformat()}, follow=True).status_code == 200
    assert DailySummaryRun.objects.count() == 2  # today is refused from the page (not over yet)

    # the schedule: after the configured time, yesterday once
    at = timezone.localtime().replace(hour=0, minute=40)
    assert services.daily_summary_tick(at.replace(minute=10)) == []  # before 00:30
    [scheduled] = services.daily_summary_tick(at)
    assert (
        scheduled.trigger == "schedule" and scheduled.stat_date == yesterday and scheduled.report_total == 2
    )
    assert services.daily_summary_tick(at + timedelta(hours=1)) == []


@pytest.mark.django_db
def test_the_openapi_schema_is_generated_from_the_spec(client, make_user):
    make_user("dev", role="ops")
    client.login(username="dev", password="pw-for-tests-0")
    schema = client.get("/api/exam/v1/schema", HTTP_ACCEPT="application/json").json()
    assert set(schema["paths"]) >= {
        "/api/exam/v1/reports",
        "/api/exam/v1/reports/{report_id}/withdraw",
        "/api/exam/v1/studies",
        "/api/exam/v1/studies/{study_uid}",
    }
    report = schema["components"]["schemas"]["ExamReport"]
    assert "院内科室代码" in report["properties"]["execDeptCode"]["description"]
    assert "recognitionItemCode" not in report["properties"] and "pdf" in report["required"]
    assert "findings" in report["required"] and "execDeptName" not in report.get("required", [])
    assert schema["paths"]["/api/exam/v1/reports"]["post"]["security"] == [{"IntegrationToken": []}]
    assert client.get("/api/exam/v1/docs").status_code == 200  # Swagger UI


@pytest.mark.django_db
def test_report_pdf_is_checked(ris):
    body = report_body(7)
    body["pdf"]["fileContent"] = base64.b64encode(b"GIF89a not a pdf").decode()
    assert ("pdf.fileContent", "format") in {
        (e["field"], e["rule"]) for e in ris.submit(body).json()["errors"]
    }


@pytest.mark.django_db
def test_a_three_day_outage_of_the_summary_schedule_leaves_no_missing_day(ris, sim, delivery):
    """The schedule last reported four days ago; reports were accepted on each of the three days
    since. The next tick reports each of those days, once, and the platform holds all three."""
    today = timezone.localdate()
    days = [today - timedelta(days=n) for n in (3, 2, 1)]
    bodies = [report_body(60 + i, exec_dept="1302") for i in range(3)]
    for b in bodies:
        assert ris.submit(b).status_code == 201
    delivery.all()
    for body, day in zip(bodies, days, strict=True):
        accepted = timezone.make_aware(datetime.combine(day, time(10, 0)))
        OutboxRecord.objects.filter(
            interface="EXAM_RESULT_SUBMIT", business_key=key(body["reportId"])
        ).update(accepted_at=accepted)
    DailySummaryRun.objects.create(stat_date=today - timedelta(days=4), trigger="schedule", rows=[])

    at = timezone.localtime().replace(hour=1, minute=0)
    runs = services.daily_summary_tick(at)
    delivery.immediate()

    assert [r.stat_date for r in runs] == days
    held = {r["payload"]["statDate"] for r in sim.records("EXAM_DAILY_SUMMARY")}
    assert held == {d.strftime("%Y%m%d") for d in days}
    assert services.daily_summary_tick(at) == []  # each day once
