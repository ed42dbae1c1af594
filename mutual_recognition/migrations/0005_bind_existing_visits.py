"""Bind the visits and lab reports stored before the patient registry existed to their patients,
so that the one-patient-per-visit rule also protects them. First stored wins, as at run time."""

from django.db import migrations


def bind_existing(apps, schema_editor):
    Binding = apps.get_model("patients", "PatientBinding")
    Encounter = apps.get_model("mutual_recognition", "Encounter")
    LabReport = apps.get_model("mutual_recognition", "LabReport")
    rows = {}
    for e in Encounter.objects.order_by("created_at", "id").iterator():
        rows.setdefault(("visit", e.visit_id), Binding(kind="visit", ref=e.visit_id, id_type_code=e.id_type_code,
                                                      id_key=e.id_key, patient_id=e.patient_id, source="migration"))
    for r in LabReport.objects.order_by("created_at", "id").iterator():
        rows.setdefault(("labReport", r.report_id), Binding(kind="labReport", ref=r.report_id, id_type_code="",
                                                           id_key=r.patient_key, source="migration"))
        if r.visit_id:
            rows.setdefault(("visit", r.visit_id), Binding(kind="visit", ref=r.visit_id, id_type_code="",
                                                          id_key=r.patient_key, source="migration"))
    Binding.objects.bulk_create(rows.values(), batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("mutual_recognition", "0004_lab_archived_pdf"),
        ("patients", "0001_patient_bindings"),
    ]

    operations = [migrations.RunPython(bind_existing, migrations.RunPython.noop)]
