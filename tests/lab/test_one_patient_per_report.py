"""A lab report belongs to its patient: it cannot name another patient's visit, application, order
or report number, and it only ever carries its own patient's recognition decisions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hospital_interop.patients.models import BindingConflict, id_key
from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition.lab import services
from mutual_recognition.lab.models import LabReport
from mutual_recognition.models import Decision, Encounter
from tests.lab.conftest import lis_report, post_json, resident_id

pytestmark = pytest.mark.django_db

URL = "/api/lab/v1/reports"


def recognised_for(visit_id: str, seed: int, name: str) -> Encounter:
    """Patient ``seed`` registered on ``visit_id`` with one current lab recognition (ALT)."""
    from mutual_recognition import services as recognition

    enc = recognition.upsert_encounter(
        recognition.encounter_fields(
            {
                "patient": {"name": name, "idNo": resident_id(seed), "patientId": f"P{seed:06d}"},
                "visit": {"visitId": visit_id},
            }
        ),
        event="registration",
    )
    now = timezone.now()
    Decision.objects.create(
        encounter=enc,
        kind="lab",
        order_id=f"YZ{seed:08d}",
        order_item_code="GGN",
        order_item_name="肝功能",
        sub_item_code="ALT",
        sub_item_name="丙氨酸氨基转移酶",
        standard_code="JY0021",
        standard_name="丙氨酸氨基转移酶",
        external_org_code="12110000400001234A",
        external_org_name="北京大学人民医院",
        external_report_id="EJY0001",
        external_at=now - timedelta(days=3),
        result={"value": "31", "unit": "U/L"},
        decision="1",
        doctor_staff_no="D1001",
        doctor_name="王建国",
        dept_code="1001",
        dept_name="胸外科",
        std_dept_code="04.04",
        std_dept_name="胸外科专业",
        decided_at=now,
    )
    return enc


def test_a_report_of_patient_c_on_patient_a_visit_is_refused_and_gets_no_decisions(client, lis, lab_dicts):
    a = recognised_for("V0000000001", 1, "张秀兰")
    body = lis_report(3, name="赵六", visit={"visitId": a.visit_id, "patientTypeCode": "1"})
    body.pop("nonRecognitions", None), body.pop("externalResults", None)

    r = post_json(client, URL, body, lis)

    assert r.status_code == 409, r.content
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} == {("visit.visitId", "patientMismatch")}
    assert not LabReport.objects.exists() and not OutboxRecord.objects.exists()
    assert BindingConflict.objects.get().ref == a.visit_id


def test_approval_collects_only_decisions_of_the_report_own_patient_and_visit(lab_dicts):
    a = recognised_for("V0000000001", 1, "张秀兰")
    refused, accepted = services.recognition_from_decisions(a.visit_id, a.id_key, None)
    assert refused == []
    assert [r["recognitionItemCode"] for r in accepted] == ["JY0021"]
    assert services.recognition_from_decisions(a.visit_id, id_key("01", resident_id(3)), None) == ([], [])


def test_a_report_number_stays_with_its_patient_across_versions(client, lis, lab_dicts):
    assert post_json(client, URL, lis_report(7), lis).status_code == 201
    other = lis_report(
        7,
        patient={"name": "钱七", "idTypeCode": "01", "idNo": resident_id(8)},
        visit={"visitId": "V0000000008", "patientTypeCode": "1"},
    )
    r = post_json(client, URL, other, lis)
    assert r.status_code == 409
    assert ("reportId", "patientMismatch") in {(e["field"], e["rule"]) for e in r.json()["errors"]}
    report = LabReport.objects.get()
    assert report.version == 1 and report.patient_name == "张秀兰"


def test_a_34_character_visit_id_is_refused_not_cut(client, lis, lab_dicts):
    body = lis_report(9, visit={"visitId": "V" * 34, "patientTypeCode": "1"})
    r = post_json(client, URL, body, lis)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "visit.visitId" and "32" in r.json()["errors"][0]["message"]
    assert not LabReport.objects.exists()
