"""EMR records cannot attach another patient's data to a visit: 409, nothing of the request stored."""

import pytest

from hospital_interop.uploads.models import OutboxRecord

pytestmark = pytest.mark.django_db


def test_a_record_naming_a_visit_of_another_patient_is_refused(api, rts):
    rt = rts.get("op-visit")
    first = rt.spec.example(5)
    assert api.post("op-visit", rt.to_intake(first)).status_code == 201

    r = api.post("op-visit", rt.to_intake(rt.spec.example(6, visitId=first["visitId"])))

    assert r.status_code == 409, r.content
    assert r.json()["code"] == "conflict"
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("visitId", "patientMismatch")]
    assert OutboxRecord.objects.filter(interface=rt.interface).count() == 1


def test_a_bulk_load_names_the_line_of_each_conflicting_record_and_stores_none(api, rts):
    rt = rts.get("op-visit")
    a = rt.spec.example(5)
    records = [
        rt.to_intake(a),
        rt.to_intake(rt.spec.example(7)),
        rt.to_intake(rt.spec.example(6, visitId=a["visitId"])),
    ]

    r = api.bulk("op-visit", records)

    assert r.status_code == 409, r.content
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(3, "visitId")]
    assert not OutboxRecord.objects.exists()


def test_a_backfill_reports_lines_naming_another_patient_visit_and_loads_the_rest(tmp_path, rts):
    import json

    from emr_sharing import backfill

    rt = rts.get("op-visit")
    a = rt.spec.example(5)
    lines = [
        rt.to_intake(a),
        rt.to_intake(rt.spec.example(7)),
        rt.to_intake(rt.spec.example(6, visitId=a["visitId"])),
        rt.to_intake(rt.spec.example(8)),
    ]
    source = tmp_path / "visits.ndjson"
    source.write_text(
        "".join(
            json.dumps({"recordType": "op-visit", "record": r}, ensure_ascii=False) + "\n" for r in lines
        ),
        encoding="utf-8",
    )

    stats = backfill.run([source], batch_size=10)

    assert (stats.created, stats.invalid) == (3, 1)
    report = [json.loads(x) for x in stats.error_file.read_text("utf-8").splitlines()]
    assert [(r["line"], r["errors"][0]["field"], r["errors"][0]["rule"]) for r in report] == [
        (3, "visitId", "patientMismatch")
    ]
    assert OutboxRecord.objects.filter(interface=rt.interface).count() == 3
