"""Hospital codes in EMR records: mapped through the dictionaries (the same tables, admin, Excel
import and unmapped report as the exam and lab sides); a record with an unmapped code is held,
shown to ops and on its status URL, and released through the outbox once the mapping is added.

Real PostgreSQL, the real platform simulator process, delivery with the worker's own code path."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from django.urls import reverse

from dictionaries import demo
from dictionaries import services as dictionary_services
from dictionaries.models import HospitalCode, HospitalDepartment, StandardDepartment
from emr_sharing import services
from emr_sharing.models import HeldCode, HeldRecord
from hospital_interop.audit.models import AuditRecord
from hospital_interop.municipal.specs import SpecError, load_catalogue
from hospital_interop.uploads import tasks
from hospital_interop.uploads.models import OutboxRecord, State

pytestmark = pytest.mark.django_db

SEED = 611
CODE_HEADERS = ["值域", "院内代码", "院内名称", "标准代码", "标准名称", "启用"]


def hospital(code: str, name: str | None = None) -> dict:
    return {"code": code, "codeSystem": "hospital", **({"name": name} if name else {})}


def xlsx(rows, headers=CODE_HEADERS) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def dictionaries():
    demo.load_all()  # 院内科室 1001 胸外科 → 04.04; 1501 国际医疗部 not mapped


@pytest.fixture
def deliver(platform_settings):
    """Deliver with the worker's own code path, in this process, against the simulator."""
    tasks._client = None
    yield lambda: [tasks.deliver() for _ in range(5)]
    tasks._client = None


def visit_records(rts, seed: int = SEED):
    """Registration (national codes), visit and outpatient record with the HIS's own codes."""
    registration = rts.get("op-registration").example(seed)
    visit = rts.get("op-visit").example(seed)
    visit["deptCode"] = hospital("1001", "胸外科")
    visit.pop("deptName", None)
    record = rts.get("op-record").example(seed)
    record["deptCode"] = hospital("1001")
    record["deptName"] = "胸外科门诊"  # the hospital's name: replaced by the standard one
    record["diagnoses"] = [
        {**record["diagnoses"][0], "diagnosisCode": hospital("ZD0101", "上呼吸道感染"), "diagnosisName": ""}
    ]
    return registration, visit, record


def key_of(rts, slug: str, record: dict, org_code: str) -> str:
    spec = rts.get(slug).spec
    return "|".join(org_code if k == "orgCode" else str(record[k]) for k in spec.key)


def test_outpatient_visit_with_hospital_codes_is_held_then_released_by_an_excel_import(
    api, rts, sim, deliver, client, make_user, django_capture_on_commit_callbacks
):
    registration, visit, record = visit_records(rts)
    assert api.post("op-registration", registration).status_code == 201
    r = api.post("op-visit", visit)
    assert r.status_code == 201, r.json()  # 1001 is mapped: stored for delivery at once
    held_response = api.post("op-record", record)
    assert held_response.status_code == 202, held_response.json()
    body = held_response.json()
    assert (
        body["held"] is True and body["status"]["state"] == "held" and body["status"]["stateName"] == "待对照"
    )
    (problem,) = body["status"]["problems"]
    assert problem["field"] == "diagnoses[0].diagnosisCode" and problem["hospitalCode"] == "ZD0101"
    assert problem["rule"] == "mapping.unknown" and problem["valueSet"] == "ICD10"
    assert "诊断编码（diagnoses[0].diagnosisCode）" in problem["message"]
    assert "ZD0101" in problem["message"] and "院内代码对照（值域）" in problem["message"]
    # the same record again: unchanged, still held
    again = api.post("op-record", record)
    assert again.status_code == 202 and again.json()["created"] is False
    assert HeldRecord.objects.filter(state=HeldRecord.State.HELD).count() == 1

    deliver()
    org = platform_settings_org(sim, rts, registration)
    sent_visit = sim.record("OP_VISIT", key_of(rts, "op-visit", visit, org))["payload"]
    assert (sent_visit["deptCode"], sent_visit["deptName"]) == ("04.04", "胸外科专业")
    record_key = key_of(rts, "op-record", record, org)
    assert sim.record("OP_RECORD", record_key) is None  # held: nothing sent
    assert not OutboxRecord.objects.filter(interface="OP_RECORD").exists()

    # the status URL says why, in the API's words; the unmapped report lists the code
    status = api.client.get(body["statusUrl"], **api.auth).json()
    assert status["state"] == "held" and status["problems"][0]["hospitalCode"] == "ZD0101"
    staff = make_user("dictstaff", role="lab", is_staff=True)
    client.force_login(staff)
    report = client.get(reverse("dictionaries:unmapped")).content.decode()
    assert "电子病历待对照的院内代码" in report and "ICD10 ZD0101" in report and "上呼吸道感染" in report

    # the mapping comes as an Excel file through the admin's import page (preview, then confirm)
    sheet = xlsx([["ICD10", "ZD0101", "上呼吸道感染", "J06.9", "", "是"]])
    with django_capture_on_commit_callbacks(execute=True):
        admin_import(client, "hospitalcode", sheet)
    mapping = HospitalCode.objects.get(value_set="ICD10", code="ZD0101")
    assert (mapping.standard_code, mapping.standard_name) == ("J06.9", "急性上呼吸道感染")
    assert mapping.history.count() == 1  # simple_history keeps who imported it

    held = HeldRecord.objects.get()
    assert held.state == HeldRecord.State.RELEASED and held.released_record is not None
    assert not HeldCode.objects.exists()
    deliver()
    sent = sim.record("OP_RECORD", record_key)["payload"]
    assert (sent["deptCode"], sent["deptName"]) == ("04.04", "胸外科专业")
    assert (sent["diagnoses"][0]["diagnosisCode"], sent["diagnoses"][0]["diagnosisName"]) == (
        "J06.9",
        "急性上呼吸道感染",
    )
    status = api.client.get(body["statusUrl"], **api.auth).json()
    assert status["state"] == State.DONE and status["version"] == 1
    report = client.get(reverse("dictionaries:unmapped")).content.decode()
    assert "ZD0101" not in report


def platform_settings_org(sim, rts, registration) -> str:
    """The orgCode the records were stored with (the intake's default, settings.PLATFORM)."""
    return (
        OutboxRecord.objects.filter(interface="OP_REGISTRATION")
        .values_list("business_key", flat=True)[0]
        .split("|")[0]
    )


def admin_import(client, model: str, content: bytes) -> None:
    """django-import-export's two admin steps: upload (dry run, preview) and confirm."""
    url = reverse(f"admin:dictionaries_{model}_import")
    upload = io.BytesIO(content)
    upload.name = "mapping.xlsx"
    preview = client.post(url, {"resource": "0", "format": "0", "import_file": upload})
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "未导入任何一行" not in page, page
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page))
    confirm = client.post(reverse(f"admin:dictionaries_{model}_process_import"), form)
    assert confirm.status_code == 302, confirm.content.decode()[:2000]


def test_national_codes_pass_unchanged_plain_or_as_national_objects(api, rts, sim, deliver):
    registration = rts.get("op-registration").example(SEED + 1)
    registration["deptCode"], registration["deptName"] = "05.01", "妇科专业"
    registration["paymentMethodCode"] = {"code": "07", "codeSystem": "national"}
    r = api.post("op-registration", registration)
    assert r.status_code == 201, r.json()
    payload = OutboxRecord.objects.get(interface="OP_REGISTRATION").payload
    assert (payload["deptCode"], payload["paymentMethodCode"], payload["paymentMethodName"]) == (
        "05.01",
        "07",
        "全自费",
    )
    deliver()
    assert OutboxRecord.objects.get(interface="OP_REGISTRATION").state == State.DONE
    # a national code outside its value set is still a 400, not a held record
    bad = rts.get("op-registration").example(SEED + 2)
    bad["patient"]["sexCode"] = {"code": "7", "codeSystem": "national"}
    r = api.post("op-registration", bad)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "patient.sexCode"
    assert r.json()["errors"][0]["rule"] == "valueSet"
    assert not HeldRecord.objects.exists()


def test_a_bad_code_system_or_a_field_without_hospital_codes_is_a_precise_error(api, rts):
    record = rts.get("op-visit").example(SEED + 3)
    record["deptCode"] = {"code": "1001", "codeSystem": "hosp"}
    r = api.post("op-visit", record)
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert (error["field"], error["rule"]) == ("deptCode.codeSystem", "codeSystem")
    assert "代码体系 codeSystem“hosp”无效" in error["message"] and "hospital" in error["message"]
    record["deptCode"] = {"code": "1001"}
    (error,) = api.post("op-visit", record).json()["errors"]
    assert error["field"] == "deptCode.codeSystem" and "缺少代码体系" in error["message"]
    record["deptCode"] = {"code": "1001", "codeSystem": "hospital", "dept": "x"}
    (error,) = api.post("op-visit", record).json()["errors"]
    assert (error["field"], error["rule"]) == ("deptCode.dept", "unknown")
    registration = rts.get("op-registration").example(SEED + 3)
    registration["cancelFlag"] = hospital("N")  # VOID_FLAG: national only (spec hospitalCodes)
    (error,) = api.post("op-registration", registration).json()["errors"]
    assert (error["field"], error["rule"]) == ("cancelFlag", "codeSystem")
    assert "不接受院内代码" in error["message"]
    assert not HeldRecord.objects.exists() and not OutboxRecord.objects.exists()


def test_other_errors_reject_a_record_with_an_unmapped_code(api, rts):
    record = rts.get("op-visit").example(SEED + 4)
    record["deptCode"] = hospital("9999")
    record["visitDateTime"] = "2026-01-10"
    r = api.post("op-visit", record)
    assert r.status_code == 400
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} == {
        ("visitDateTime", "format"),
        ("deptCode", "mapping.unknown"),
    }
    assert not HeldRecord.objects.exists()


def test_admin_save_of_a_department_mapping_releases_held_records(
    api, rts, admin_client, django_capture_on_commit_callbacks
):
    registration = rts.get("op-registration").example(SEED + 5)
    registration["deptCode"] = hospital("1501", "国际医疗部")
    r = api.post("op-registration", registration)
    assert r.status_code == 202
    problem = r.json()["status"]["problems"][0]
    assert problem["rule"] == "mapping.unmapped" and "国际医疗部 未对照标准科室" in problem["message"]
    assert "院内科室（含标准科室对照）" in problem["message"]
    dept = HospitalDepartment.objects.get(code="1501")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:dictionaries_hospitaldepartment_change", args=[dept.pk]),
            {
                "code": "1501",
                "name": "国际医疗部",
                "standard": StandardDepartment.objects.get(code="03").pk,
                "active": "on",
            },
        )
    assert response.status_code == 302
    stored = OutboxRecord.objects.get(interface="OP_REGISTRATION")
    assert (stored.payload["deptCode"], stored.payload["deptName"]) == ("03", "内科")
    assert HeldRecord.objects.get().state == HeldRecord.State.RELEASED


def test_a_newer_version_supersedes_the_held_one_and_the_periodic_check_releases(api, rts):
    first = rts.get("op-registration").example(SEED + 6)
    first["deptCode"] = hospital("1501")
    assert api.post("op-registration", first).status_code == 202
    newer = {**first, "deptCode": "03", "deptName": "内科"}
    assert api.post("op-registration", newer).status_code == 201
    assert HeldRecord.objects.get().state == HeldRecord.State.SUPERSEDED
    third = {**first, "registrationFee": 12.5, "paymentMethodCode": hospital("ZF", "自费")}
    assert api.post("op-registration", third).status_code == 202
    HospitalCode.objects.create(value_set="PAYMENT_METHOD", code="ZF", name="自费", standard_code="07")
    HospitalDepartment.objects.filter(code="1501").update(standard=StandardDepartment.objects.get(code="03"))
    # the update() above bypassed the save hook: the periodic re-check finds the record mappable
    outcome = services.release_held_if_dictionaries_changed()
    assert outcome is not None and outcome.released == 1
    latest = OutboxRecord.objects.filter(interface="OP_REGISTRATION").order_by("-version").first()
    assert latest.version == 2 and latest.payload["paymentMethodCode"] == "07"


def test_ops_page_lists_held_records_without_patient_identity_and_audits_reads(api, rts, client, make_user):
    record = rts.get("op-visit").example(SEED + 7)
    record["deptCode"] = hospital("1501")
    assert api.post("op-visit", record).status_code == 202
    held = HeldRecord.objects.get()
    client.force_login(make_user("opsheld", role="ops"))
    page = client.get(reverse("emr_sharing:held"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "1501" in text and reverse("emr_sharing:held-detail", args=[held.pk]) in text
    assert record["patient"]["idNo"] not in text and record["patient"]["name"] not in text
    detail = client.get(reverse("emr_sharing:held-detail", args=[held.pk])).content.decode()
    assert "院内科室" in detail and "1501" in detail and record["patient"]["idNo"] not in detail
    views = AuditRecord.objects.filter(object_type="emr_sharing.HeldRecord")
    assert views.filter(action="search").exists()
    assert views.get(action="view", object_id=str(held.pk)).patient == held.patient_id_hash != ""
    assert client.get(reverse("emr_sharing:held-detail", args=[held.pk + 1000])).status_code == 404
    client.force_login(make_user("nobody"))
    assert client.get(reverse("emr_sharing:held")).status_code == 403


def test_hospital_code_dictionary_checks_the_standard_code_and_imports_all_or_nothing():
    report = dictionary_services.import_file(
        HospitalCode,
        xlsx([["SEX", "M", "男", "1", "", "是"], ["MARITAL_STATUS", "YH", "已婚", "99x", "", "是"]]),
        "xlsx",
    )
    assert not report.imported and [p.row for p in report.problems] == [2]
    assert "99x" in " ".join(report.problems[0].messages)
    report = dictionary_services.import_file(
        HospitalCode, xlsx([["DEPT_STD", "1001", "胸外科", "04.04", "", "是"]]), "xlsx"
    )
    assert not report.imported and "院内科室" in " ".join(report.problems[0].messages)
    assert not HospitalCode.objects.exists()


def test_the_spec_linter_refuses_a_department_dictionary_on_another_value_set(tmp_path):
    from hospital_interop.municipal.specs import SPEC_ROOT

    root = tmp_path / "specs"
    (root / "_common").mkdir(parents=True)
    for name in ("value_sets.yaml", "fields.yaml"):
        (root / "_common" / name).write_text((SPEC_ROOT / "_common" / name).read_text(encoding="utf-8"))
    (root / "emr_outpatient").mkdir()
    text = (SPEC_ROOT / "emr_outpatient" / "2.1.2.0.yaml").read_text(encoding="utf-8")
    (root / "emr_outpatient" / "2.1.2.0.yaml").write_text(
        text.replace("  ICD10: valueSet", "  ICD10: department"), encoding="utf-8"
    )
    with pytest.raises(SpecError, match="dictionary 'department' maps to DEPT_STD only, not ICD10"):
        load_catalogue(root)
