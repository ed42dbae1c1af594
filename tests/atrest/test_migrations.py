"""What was stored before: payloads and PDFs sealed by the migrations, and every patient digest
recomputed as HMAC-SM3 from the ID numbers still stored in clear; what cannot be recomputed is
removed or cleared, never left as a plain SHA-256."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.municipal.specs.examples import persona
from hospital_interop.patients.models import id_key

BEFORE = [
    ("uploads", "0004_redriven_at"),
    ("lab", "0001_moved_from_mutual_recognition"),
    ("exam", "0001_moved_from_mutual_recognition"),
    ("mutual_recognition", "0006_exam_and_lab_models_moved_to_their_apps"),
    ("patients", "0001_patient_bindings"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def old_key(id_no: str) -> str:
    """The registry's digest before: SHA-256 of "<type>|<number>", 40 hex characters."""
    return hashlib.sha256(f"01|{id_no}".encode()).hexdigest()[:40]


def raw(table: str, column: str) -> list[bytes]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")
        return [bytes(v) for (v,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_stored_payloads_and_pdfs_are_sealed_and_every_digest_is_recomputed_or_removed(capsys):
    old = migrate(BEFORE)
    now = timezone.now()
    visit_patient, lab_patient, exam_patient, gone = persona(91), persona(92), persona(93), persona(94)
    catalogue = load_catalogue()
    visit = catalogue.interface("OP_VISIT").example(91)
    old.get_model("uploads", "OutboxRecord").objects.bulk_create(
        [
            old.get_model("uploads", "OutboxRecord")(
                interface=code,
                document="emr_outpatient",
                spec_version="1",
                business_key=f"K{i}",
                payload=payload,
                patient_id_hash=hashlib.sha256(visit_patient.idNo.encode()).hexdigest(),
                event_at=now,
            )
            for i, (code, payload) in enumerate([("OP_VISIT", visit), ("RETIRED_INTERFACE", {"x": 1})])
        ]
    )
    old.get_model("mutual_recognition", "Encounter").objects.create(
        visit_id="V91",
        name=visit_patient.name,
        id_type_code="01",
        id_no=visit_patient.idNo,
        id_key=old_key(visit_patient.idNo),
    )
    report = old.get_model("lab", "LabReport").objects.create(
        report_id="JY91",
        title="血常规",
        patient_name=lab_patient.name,
        patient_key=old_key(lab_patient.idNo),
        reported_at=now,
        approved_at=now,
    )
    version = old.get_model("lab", "LabReportVersion").objects.create(
        report=report,
        version=1,
        content={"patient": {"idTypeCode": "01", "idNo": lab_patient.idNo, "name": lab_patient.name}},
        content_hash="0" * 64,
        approved_at=now,
    )
    old.get_model("lab", "LabArchivedPdf").objects.create(
        version=version, data=b"%PDF-1.4 lab", sm3="0" * 64, archived_at=now
    )
    exam = catalogue.interface("EXAM_RESULT_SUBMIT").example(93)
    old.get_model("exam", "ExamReport").objects.create(
        report_id="JC93",
        content=exam,
        pdf_content=b"%PDF-1.4 exam",
        patient_id_hash=hashlib.sha256(exam_patient.idNo.encode()).hexdigest(),
    )
    Binding = old.get_model("patients", "PatientBinding")
    Binding.objects.create(kind="visit", ref="V91", id_type_code="01", id_key=old_key(visit_patient.idNo))
    Binding.objects.create(kind="labReport", ref="JY91", id_type_code="", id_key=old_key(lab_patient.idNo))
    Binding.objects.create(kind="visit", ref="V94", id_type_code="01", id_key=old_key(gone.idNo))
    old.get_model("patients", "BindingConflict").objects.create(
        kind="visit", ref="V91", bound_key=old_key(visit_patient.idNo), given_key=old_key(gone.idNo)
    )
    old.get_model("mutual_recognition", "AuditEntry").objects.create(
        action="view_report", patient_key=old_key(visit_patient.idNo)
    )
    try:
        new = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
        # sealed in the tables, opened by the models as they were
        assert all(v.startswith(b"SM4G\x01") for v in raw("uploads_outboxrecord", "payload"))
        assert all(v.startswith(b"SM4G\x01") for v in raw("mutual_recognition_labarchivedpdf", "data"))
        assert all(v.startswith(b"SM4G\x01") for v in raw("mutual_recognition_examreport", "pdf_content"))
        rows = list(new.get_model("uploads", "OutboxRecord").objects.order_by("pk"))
        assert [r.payload for r in rows] == [visit, {"x": 1}]
        assert [r.patient_id_hash for r in rows] == [id_key("01", visit_patient.idNo), ""]
        assert new.get_model("lab", "LabArchivedPdf").objects.get().data == b"%PDF-1.4 lab"
        exam_row = new.get_model("exam", "ExamReport").objects.get()
        assert exam_row.pdf_content == b"%PDF-1.4 exam"
        # every digest an HMAC-SM3 where a clear ID number was found
        assert exam_row.patient_id_hash == id_key("01", exam_patient.idNo)
        assert new.get_model("mutual_recognition", "Encounter").objects.get().id_key == id_key(
            "01", visit_patient.idNo
        )
        assert new.get_model("lab", "LabReport").objects.get().patient_key == id_key("01", lab_patient.idNo)
        bindings = dict(new.get_model("patients", "PatientBinding").objects.values_list("ref", "id_key"))
        assert bindings == {"V91": id_key("01", visit_patient.idNo), "JY91": id_key("01", lab_patient.idNo)}
        conflict = new.get_model("patients", "BindingConflict").objects.get()
        assert (conflict.bound_key, conflict.given_key) == (id_key("01", visit_patient.idNo), "")
        assert new.get_model("mutual_recognition", "AuditEntry").objects.get().patient_key == id_key(
            "01", visit_patient.idNo
        )
        out = capsys.readouterr().out
        assert "1 rows of interfaces no longer in the catalogue keep no patient digest" in out
        assert "1 bindings removed, 1 conflict digests and 0 audit entry digests cleared" in out
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
