"""An exam report cannot name a visit, application or report number of another patient."""

import pytest

from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition.exam.models import ExamReport

from .conftest import report_body

pytestmark = pytest.mark.django_db


def test_a_report_naming_another_patient_visit_is_refused_and_nothing_is_stored(ris):
    first = report_body(1)
    assert ris.submit(first).status_code == 201
    stored = OutboxRecord.objects.count()

    r = ris.submit(report_body(2, visitId=first["visitId"]))

    assert r.status_code == 409, r.content
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("visitId", "patientMismatch")]
    assert list(ExamReport.objects.values_list("report_id", flat=True)) == [first["reportId"]]
    assert OutboxRecord.objects.count() == stored


def test_a_study_event_with_an_over_long_accession_number_is_refused_not_cut(ris):
    r = ris.study({"studyInstanceUid": "1.2.826.0.1.3680043.8.498.1", "accessionNo": "A" * 33})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "accessionNo" and "32" in r.json()["errors"][0]["message"]
