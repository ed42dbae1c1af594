"""Audit coverage: each read and write of patient data writes exactly one entry of the security
trail naming who (user and role, calling system, or the doctor of a signed link), from where (the
client address), what (action, object, patient digest) and, for writes, the fields before and
after; no entry holds a clear ID number, name or phone.

Each test drives the real page or API with Django's test client (the client address set with
REMOTE_ADDR) against the real simulators where the read reaches the platform."""

from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from esign.models import ReviewReport
from esign.services import open_review
from hospital_interop.audit.models import Action, ActorType, AuditRecord
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.patients.models import id_key
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord, State
from mutual_recognition.lab import services as lab
from mutual_recognition.lab.models import LabReportVersion
from mutual_recognition.links import LinkContext, OrderedItem
from mutual_recognition.models import Encounter
from tests.lab.conftest import lis_report
from tests.recognition.conftest import ITEMS, TOKEN, his_system, prompt_body, resident_id

from .conftest import entry_text

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-0"


def only_entry(trail, **expected) -> AuditRecord:
    entries = trail.new()
    assert [(e.action, e.object_type) for e in entries] == [(expected["action"], expected["object_type"])]
    entry = entries[0]
    assert {k: getattr(entry, k) for k in expected} == expected
    return entry


def holds_no_identity(entry: AuditRecord, *values: str) -> None:
    text = entry_text(entry)
    for value in values:
        assert value and value not in text, f"{value!r} in audit entry #{entry.seq}"


@pytest.fixture
def login(client, make_user):
    def as_role(role: str, username: str | None = None):
        username = username or f"{role}-{uuid.uuid4().hex[:6]}"
        user = make_user(username, role=role)
        client.login(username=username, password=PASSWORD)
        return user

    return as_role


# --------------------------------------------------------------------------- the listed reads


def test_opening_the_prompt_page_is_one_entry_by_the_links_doctor(client, recognition, patient, trail):
    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    trail.new()
    page = client.get(answer["promptUrl"].replace("http://testserver", ""), REMOTE_ADDR="10.20.30.40")
    assert page.status_code == 200
    entry = only_entry(
        trail,
        action=Action.VIEW,
        object_type="mutual_recognition.Encounter",
        actor_type=ActorType.LINK,
        username="doctor:D1001",
        ip="10.20.30.40",
        route="recognition:embed",
        patient=id_key("01", patient["idNo"]),
    )
    holds_no_identity(entry, patient["idNo"], patient["name"])


def test_a_patient_lookup_by_id_number_is_one_entry_by_the_clinician(client, login, trail):
    doctor = login("clinician")
    id_no = resident_id(4242)
    trail.new()
    # not a patient of the doctor's current visit: without a reason nothing is read
    refused = client.post("/recognition/patients/", {"idNo": id_no, "visitId": ""}, REMOTE_ADDR="10.0.0.7")
    assert refused.status_code == 200 and "请选择查询事由" in refused.content.decode()
    assert id_no not in refused.content.decode() and trail.new() == []
    posted = client.post(
        "/recognition/patients/",
        {"idNo": id_no, "visitId": "", "reason": "consult", "reasonNote": "心内科会诊"},
        REMOTE_ADDR="10.0.0.7",
    )
    assert client.get(posted.url, REMOTE_ADDR="10.0.0.7").status_code == 200  # the number never in a URL
    entry = only_entry(
        trail,
        action=Action.SEARCH,
        object_type="mutual_recognition.Decision",
        actor_type=ActorType.USER,
        user_id=doctor.pk,
        username=doctor.username,
        roles="临床医生",
        ip="10.0.0.7",
        patient=id_key("01", id_no),
    )
    assert (entry.detail["reason"], entry.detail["reasonName"], entry.detail["reasonNote"]) == (
        "consult",
        "会诊",
        "心内科会诊",
    )
    holds_no_identity(entry, id_no)


def test_the_doctors_current_visit_needs_no_reason(client, login, trail):
    doctor = login("clinician")
    id_no, other = resident_id(4343), resident_id(4444)
    Encounter.objects.create(
        visit_id="V-CURRENT-1",
        name="患者",
        id_no=id_no,
        id_key=id_key("01", id_no),
        doctor_staff_no=doctor.username,
    )
    Encounter.objects.create(
        visit_id="V-OTHER-1",
        name="患者",
        id_no=other,
        id_key=id_key("01", other),
        doctor_staff_no="someone-else",
    )
    trail.new()
    posted = client.post("/recognition/patients/", {"idNo": id_no})
    assert posted.status_code == 302 and client.get(posted.url).status_code == 200
    entry = only_entry(trail, action=Action.SEARCH, object_type="mutual_recognition.Decision")
    assert entry.detail["context"] == "current-visit" and "reason" not in entry.detail
    # another doctor's patient, by ID number or by visit, and a forged result URL: a reason first
    assert "请选择查询事由" in client.post("/recognition/patients/", {"idNo": other}).content.decode()
    assert (
        "请选择查询事由" in client.post("/recognition/patients/", {"visitId": "V-OTHER-1"}).content.decode()
    )
    forged = client.get(f"/recognition/patients/?p={id_key('01', other)}").content.decode()
    assert "请选择查询事由" in forged and "已互认的外院结果" not in forged
    assert trail.new() == []
    # "其他" needs its note; a stated reason then holds for that patient within the session
    assert (
        "请填写说明"
        in client.post("/recognition/patients/", {"idNo": other, "reason": "other"}).content.decode()
    )
    posted = client.post(
        "/recognition/patients/", {"idNo": other, "reason": "other", "reasonNote": "病案复核"}
    )
    assert client.get(posted.url).status_code == 200 and client.get(posted.url).status_code == 200
    entries = trail.new()
    assert [e.detail["reasonNote"] for e in entries] == ["病案复核", "病案复核"]


def test_ops_can_no_longer_query_the_platform_about_any_patient(client, login, sim, platform_settings, trail):
    login("ops")
    id_no = resident_id(5252)
    page = client.post("/lab/platform/", {"kind": "id", "name": "孙玉兰", "idNo": id_no})
    assert page.status_code == 200 and "按证件号查询" not in page.content.decode()
    assert [e.object_type for e in trail.new()] == ["platform.LAB_REPORT_LIST_BY_ORG"]  # own list only
    assert client.get("/lab/platform/pdf", {"org": "X", "report": "R1"}).status_code == 403
    assert client.post("/lab/external/", {"live": "1", "name": "周桂芳", "idNo": id_no}).status_code == 403
    assert trail.new() == []


def test_api_results_is_one_entry_by_the_calling_system(client, trail):
    system = his_system("results-token-for-audit", scopes=("recognition.results",))
    id_no = resident_id(777)
    trail.new()
    answer = client.post(
        "/recognition/api/results",
        {"idNo": id_no},
        content_type="application/json",
        HTTP_AUTHORIZATION="Token results-token-for-audit",
        REMOTE_ADDR="10.3.3.3",
    )
    assert answer.status_code == 200, answer.content
    entry = only_entry(
        trail,
        action=Action.SEARCH,
        object_type="mutual_recognition.Decision",
        actor_type=ActorType.SYSTEM,
        username=f"system:{system.code}",
        ip="10.3.3.3",
        route="recognition:api-results",
        patient=id_key("01", id_no),
    )
    holds_no_identity(entry, id_no)


def test_the_platform_report_list_by_id_number_is_one_entry(client, login, sim, platform_settings, trail):
    user = login("lab")
    id_no = resident_id(5151)
    trail.new()
    page = client.post(
        "/lab/platform/", {"kind": "id", "name": "孙玉兰", "idNo": id_no}, REMOTE_ADDR="10.4.4.4"
    )
    assert page.status_code == 200 and not page.context["error"]
    entry = only_entry(
        trail,
        action=Action.SEARCH,
        object_type="platform.LAB_REPORT_LIST_BY_ID",
        username=user.username,
        roles="检验科",
        ip="10.4.4.4",
        patient=id_key("01", id_no),
    )
    holds_no_identity(entry, id_no, "孙玉兰")
    client.post("/lab/platform/", {"kind": "org"})  # the list by organisation shows patients too
    only_entry(trail, action=Action.SEARCH, object_type="platform.LAB_REPORT_LIST_BY_ORG", patient="")


def test_the_live_external_query_is_one_entry(client, login, sim, platform_settings, trail):
    user = login("lab")
    id_no = resident_id(6161)
    trail.new()
    page = client.post(
        "/lab/external/", {"live": "1", "name": "周桂芳", "idNo": id_no}, REMOTE_ADDR="10.5.5.5"
    )
    assert page.status_code == 200 and not page.context["live_error"]
    entries = trail.new()
    live = [e for e in entries if e.object_type == "platform.LAB_RECOGNIZABLE_ITEMS"]
    assert len(live) == 1
    assert (live[0].action, live[0].username, live[0].ip, live[0].patient) == (
        Action.SEARCH,
        user.username,
        "10.5.5.5",
        id_key("01", id_no),
    )
    # the page's other read, the local decisions for this ID number, is its own one entry
    assert [e.object_type for e in entries if e is not live[0]] == ["mutual_recognition.Decision"]
    for entry in entries:
        holds_no_identity(entry, id_no, "周桂芳")


def registration(seed: int, *, attention: bool = False) -> OutboxRecord:
    record = outbox.enqueue("OP_REGISTRATION", load_catalogue().interface("OP_REGISTRATION").example(seed))
    if attention:
        OutboxRecord.objects.filter(pk=record.pk).update(state=State.ATTENTION)
        record.refresh_from_db()
    return record


def test_the_ops_view_of_a_decrypted_payload_is_one_entry(client, login, trail):
    record = registration(11)
    patient = record.payload["patient"]
    user = login("ops")
    trail.new()
    page = client.get(f"/ops/uploads/records/{record.pk}/", REMOTE_ADDR="10.6.6.6")
    assert page.status_code == 200 and patient["idNo"] in page.content.decode()  # ops see it decrypted
    entry = only_entry(
        trail,
        action=Action.VIEW,
        object_type="uploads.OutboxRecord",
        object_id=str(record.pk),
        username=user.username,
        roles="运维",
        ip="10.6.6.6",
        patient=id_key(patient["idTypeCode"], patient["idNo"]),
    )
    holds_no_identity(entry, patient["idNo"], patient["name"])


# --------------------------------------------------------------------------- the listed writes


def test_fix_and_redrive_of_an_id_number_records_who_and_the_change_masked(client, login, trail):
    record = registration(12, attention=True)
    before = record.payload["patient"]
    new_id = resident_id(9090)
    fixed = {**before, "idNo": new_id, "name": "李新名", "phone": "13911112222"}
    user = login("ops")
    trail.new()
    response = client.post(
        f"/ops/uploads/records/{record.pk}/fix",
        {"fix": json.dumps({"patient": fixed}, ensure_ascii=False)},
        REMOTE_ADDR="10.7.7.7",
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.payload["patient"]["idNo"] == new_id and record.state == State.PENDING
    assert record.patient_id_hash == outbox.Patient(id_number=new_id).id_hash  # the row moved with it
    entry = only_entry(
        trail,
        action=Action.UPDATE,
        object_type="uploads.OutboxRecord",
        object_id=str(record.pk),
        username=user.username,
        ip="10.7.7.7",
        patient=id_key("01", new_id),
    )
    assert entry.detail["patientBefore"] == id_key("01", before["idNo"])
    assert entry.changes == {
        "patient.idNo": [
            before["idNo"][:6] + "********" + before["idNo"][-4:],
            new_id[:6] + "********" + new_id[-4:],
        ],
        "patient.name": [before["name"][0] + "*" * (len(before["name"]) - 1), "李**"],
        "patient.phone": [before["phone"][:3] + "****" + before["phone"][-4:], "139****2222"],
    }
    holds_no_identity(entry, before["idNo"], new_id, before["name"], "李新名", before["phone"], "13911112222")


def test_a_plain_redrive_is_one_entry_per_row(client, login, trail):
    records = [registration(20 + i, attention=True) for i in range(2)]
    user = login("ops")
    trail.new()
    client.post("/ops/uploads/redrive", {"ids": [r.pk for r in records]}, REMOTE_ADDR="10.7.7.8")
    entries = trail.new()
    assert sorted((e.action, e.object_id, e.username) for e in entries) == sorted(
        (Action.REDRIVE, str(r.pk), user.username) for r in records
    )


def test_a_void_records_the_actor_and_the_reason(client, login, trail):
    record = registration(13, attention=True)
    user = login("ops")
    trail.new()
    client.post(
        "/ops/uploads/cancel", {"ids": [record.pk], "reason": "患者信息登记错误"}, REMOTE_ADDR="10.8.8.8"
    )
    record.refresh_from_db()
    assert record.state == State.VOIDED and user.username in record.last_message
    entry = only_entry(
        trail,
        action=Action.VOID,
        object_type="uploads.OutboxRecord",
        object_id=str(record.pk),
        username=user.username,
        roles="运维",
        ip="10.8.8.8",
        patient=id_key("01", record.payload["patient"]["idNo"]),
    )
    assert entry.detail["reason"] == "患者信息登记错误"
    assert entry.changes == {"state": [State.ATTENTION, State.VOIDED]}


def test_a_doctors_changed_decision_is_one_entry_with_before_and_after(client, recognition, patient, trail):
    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    items = tuple(OrderedItem(i["kind"], i["itemCode"], "", i["orderId"]) for i in ITEMS)
    ctx = LinkContext(patient["patientId"], patient["visitId"], "D1001", "1001", items, 0)
    report = answer["items"][0]["results"][0]["reportId"]
    decide = {"orderId": "YZ001", "standardCode": "JC0012", "reportId": report}

    def save(**decision):
        body = {"ctx": ctx.to_token(), "decisions": [{**decide, **decision}]}
        response = client.post("/recognition/embed/save", json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content

    save(decision="1")
    trail.new()
    save(decision="2", reasonCode="3")
    entry = only_entry(
        trail,
        action=Action.DECIDE,
        object_type="mutual_recognition.Decision",
        actor_type=ActorType.LINK,
        username="doctor:D1001",
        patient=id_key("01", patient["idNo"]),
    )
    assert entry.changes["decision"] == ["互认", "不互认"]
    holds_no_identity(entry, patient["idNo"], patient["name"])


# --------------------------------------------------------------------------- the other reads found


@pytest.fixture
def lab_report(lab_dicts):
    body = lis_report(31, name="吴丽华")
    lab.approve(body, source="LIS")
    return body


def test_lab_report_pages_pdf_and_list_are_one_entry_each(client, login, lab_report, trail):
    user = login("lab")
    digest, report_id = id_key("01", lab_report["patient"]["idNo"]), lab_report["reportId"]
    trail.new()
    assert client.get(f"/lab/reports/{report_id}/").status_code == 200
    only_entry(trail, action=Action.VIEW, object_type="lab.LabReport", username=user.username, patient=digest)
    assert client.get(f"/lab/reports/{report_id}/v1.pdf").status_code == 200
    only_entry(trail, action=Action.VIEW, object_type="lab.LabReportVersion", patient=digest)
    by_id = client.post("/lab/", {"q": lab_report["patient"]["idNo"], "status": ""})
    assert client.get(by_id.url).context["rows"]
    entry = only_entry(trail, action=Action.SEARCH, object_type="lab.LabReport", patient=digest)
    holds_no_identity(entry, lab_report["patient"]["idNo"], "吴丽华")


def test_e_sign_review_pages_and_the_approval_are_one_entry_each(client, login, lab_report, trail):
    version = LabReportVersion.objects.get(report__report_id=lab_report["reportId"])
    review = open_review(version, "clinical")
    user = login("lab")
    digest = id_key("01", lab_report["patient"]["idNo"])
    trail.new()
    assert "吴丽华" in client.get("/esign/review/clinical/").content.decode()
    only_entry(trail, action=Action.SEARCH, object_type="esign.ReviewReport", username=user.username)
    assert client.get(f"/esign/reports/{review.pk}/").status_code == 200
    only_entry(trail, action=Action.VIEW, object_type="esign.ReviewReport", patient=digest)
    client.post(f"/esign/reports/{review.pk}/approve")  # CA off: approved without a signature
    assert ReviewReport.objects.get(pk=review.pk).status == ReviewReport.Status.APPROVED
    entry = only_entry(trail, action=Action.SIGN, object_type="esign.ReviewReport", patient=digest)
    assert entry.changes == {"status": ["待审核", "已审核"]} and entry.detail["signed"] == "unsigned"


def test_the_exam_report_page_is_one_entry(client, login, trail):
    from dictionaries.demo import load_all
    from hospital_interop.integrations import services as integrations
    from tests.exam.conftest import report_body

    load_all()
    system = integrations.create_system("RIS", "放射信息系统", allow_all=True)
    body = report_body(41)
    submitted = client.post(
        "/api/exam/v1/reports",
        json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {integrations.issue_token(system)}",
    )
    assert submitted.status_code in (200, 201), submitted.content
    user = login("ops")
    trail.new()
    assert client.get(f"/exam/reports/{body['reportId']}/").status_code == 200
    entry = only_entry(
        trail,
        action=Action.VIEW,
        object_type="exam.ExamReport",
        username=user.username,
        patient=id_key(body["patient"]["idTypeCode"], body["patient"]["idNo"]),
    )
    holds_no_identity(entry, body["patient"]["idNo"], body["patient"]["name"])


def test_the_his_reading_back_a_visits_decisions_is_one_entry(client, recognition, patient, trail):
    client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    trail.new()
    answer = client.get(
        "/recognition/api/decisions", {"visitId": patient["visitId"]}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert answer.status_code == 200, answer.content
    entry = only_entry(
        trail,
        action=Action.VIEW,
        object_type="mutual_recognition.Encounter",
        actor_type=ActorType.SYSTEM,
        patient=id_key("01", patient["idNo"]),
    )
    holds_no_identity(entry, patient["idNo"], patient["name"])


def test_the_emr_status_api_is_one_entry(client, trail):
    from emr_sharing.mapping import record_types
    from hospital_interop.integrations import services as integrations

    system = integrations.create_system("HIS", "医院信息系统", allow_all=True)
    auth = {"HTTP_AUTHORIZATION": f"Token {integrations.issue_token(system)}"}
    record = record_types().get("op-registration").example(5)
    created = client.post(
        "/api/emr/v1/records/op-registration",
        json.dumps(record, ensure_ascii=False),
        content_type="application/json",
        **auth,
    )
    assert created.status_code == 201, created.content
    trail.new()
    assert client.get(created.json()["statusUrl"], **auth).status_code == 200
    entry = only_entry(
        trail,
        action=Action.VIEW,
        object_type="uploads.OutboxRecord",
        actor_type=ActorType.SYSTEM,
        username="system:HIS",
        patient=id_key(record["patient"]["idTypeCode"], record["patient"]["idNo"]),
    )
    holds_no_identity(entry, record["patient"]["idNo"], record["patient"]["name"])


def test_the_record_browser_and_its_export_are_one_entry_each(client, login, trail):
    registration(14)
    user = login("ops")
    trail.new()
    client.get("/ops/uploads/records/", {"interface": "OP_REGISTRATION"})
    entry = only_entry(
        trail, action=Action.SEARCH, object_type="uploads.OutboxRecord", username=user.username
    )
    assert entry.detail["filter"] == {"interface": "OP_REGISTRATION"}
    export = client.get("/ops/uploads/records/export.csv", {"interface": "OP_REGISTRATION"})
    b"".join(export.streaming_content)
    only_entry(trail, action=Action.EXPORT, object_type="uploads.OutboxRecord", username=user.username)


def test_the_recognition_audit_search_by_id_number_is_one_entry(client, login, trail):
    login("ops")
    id_no = resident_id(3131)
    trail.new()
    posted = client.post("/recognition/audit/", {"idNo": id_no})
    assert client.get(posted.url).status_code == 200
    entry = only_entry(
        trail, action=Action.SEARCH, object_type="mutual_recognition.AuditEntry", patient=id_key("01", id_no)
    )
    holds_no_identity(entry, id_no)
