"""Patient digests become HMAC-SM3 under the server's digest key (patients.models.id_key) instead
of a plain SHA-256 of the ID number, which anyone can reverse by trying every valid number.

Recomputed from the ID numbers still stored in clear somewhere: visits (``Encounter.id_no``), lab
report versions (their LIS content), exam reports (their RIS content) and outbox payloads (the
outbox's own digests were recomputed in uploads 0005). Those give a map old digest → new digest,
applied to every column that holds one:

* ``Encounter.id_key``, ``LabReport.patient_key``, ``ExamReport.patient_id_hash``: from their own row;
* ``PatientBinding.id_key``: mapped; a binding whose patient no stored record names any more cannot
  be recomputed and is **removed** (kept, it would refuse that patient's next request as another
  patient; the identifier is bound again by the next request that names it);
* ``BindingConflict`` keys and ``AuditEntry.patient_key``: mapped; an unmapped one is **cleared**
  (an old digest left in the table is exactly the weakness being removed).

The counts of what could not be recomputed are printed. Needs the patient digest key and the data
key (``manage.py setup_keys``) when there are rows.
"""

import hashlib

from django.db import migrations

BATCH = 1000


def _old(id_type: str, id_no: str) -> str:
    """The digest as it was: SHA-256 of ``<type>|<ID number upper-cased>``, 40 hex characters."""
    return hashlib.sha256(f"{id_type}|{id_no.upper()}".encode()).hexdigest()[:40]


class _Map(dict):
    """old digest → new digest, learnt from every clear ID number found."""

    def learn(self, id_type: str, id_no: str) -> str:
        from hospital_interop.patients.models import id_key

        raw_type, raw_no = id_type or "", id_no or ""
        id_type, id_no = raw_type.strip() or "01", raw_no.strip()
        if not id_no:
            return ""
        new = id_key(id_type, id_no)
        for t in {id_type, raw_type}:  # the old digests did not always strip what they were given
            for n in {id_no, raw_no}:
                self[_old(t, n)] = new
        return new


def _batches(qs):
    last = 0
    while True:
        rows = list(qs.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not rows:
            return
        yield rows
        last = rows[-1].pk


def rehash(apps, schema_editor):
    from hospital_interop.uploads.services import patient_of

    Encounter = apps.get_model("mutual_recognition", "Encounter")
    AuditEntry = apps.get_model("mutual_recognition", "AuditEntry")
    LabReport = apps.get_model("lab", "LabReport")
    LabReportVersion = apps.get_model("lab", "LabReportVersion")
    ExamReport = apps.get_model("exam", "ExamReport")
    OutboxRecord = apps.get_model("uploads", "OutboxRecord")
    Binding = apps.get_model("patients", "PatientBinding")
    Conflict = apps.get_model("patients", "BindingConflict")
    known = _Map()
    counts = {}

    for rows in _batches(Encounter.objects.only("pk", "id_type_code", "id_no", "id_key")):
        for e in rows:
            e.id_key = known.learn(e.id_type_code, e.id_no) or e.id_key
        Encounter.objects.bulk_update(rows, ["id_key"])
        counts["visits"] = counts.get("visits", 0) + len(rows)

    latest = {}  # report pk -> the patient of its newest version
    for rows in _batches(LabReportVersion.objects.only("pk", "report_id", "version", "content")):
        for v in rows:
            patient = (v.content or {}).get("patient") or {}
            new = known.learn(str(patient.get("idTypeCode") or "01"), str(patient.get("idNo") or ""))
            if new and v.version >= latest.get(v.report_id, (0, ""))[0]:
                latest[v.report_id] = (v.version, new)
    for rows in _batches(LabReport.objects.only("pk", "patient_key")):
        changed = [r for r in rows if r.pk in latest]
        for r in changed:
            r.patient_key = latest[r.pk][1]
        LabReport.objects.bulk_update(changed, ["patient_key"])
        counts["lab reports"] = counts.get("lab reports", 0) + len(changed)

    for rows in _batches(ExamReport.objects.only("pk", "content", "patient_id_hash")):
        for r in rows:
            p = patient_of("EXAM_RESULT_SUBMIT", r.content or {})
            r.patient_id_hash = known.learn(p.id_type, p.id_number)
        ExamReport.objects.bulk_update(rows, ["patient_id_hash"])
        counts["exam reports"] = counts.get("exam reports", 0) + len(rows)

    for rows in _batches(OutboxRecord.objects.exclude(patient_id_hash="").only("pk", "interface", "payload")):
        for r in rows:
            p = patient_of(r.interface, r.payload)
            known.learn(p.id_type, p.id_number)

    lost = []
    for rows in _batches(Binding.objects.only("pk", "id_key")):
        for b in rows:
            b.id_key = known.get(b.id_key, "")
        lost += [b.pk for b in rows if not b.id_key]
        Binding.objects.bulk_update([b for b in rows if b.id_key], ["id_key"])
    Binding.objects.filter(pk__in=lost).delete()

    cleared = {"conflict keys": 0, "audit entries": 0}
    for rows in _batches(Conflict.objects.only("pk", "bound_key", "given_key")):
        for c in rows:
            for name in ("bound_key", "given_key"):
                old = getattr(c, name)
                setattr(c, name, known.get(old, ""))
                cleared["conflict keys"] += bool(old and not getattr(c, name))
        Conflict.objects.bulk_update(rows, ["bound_key", "given_key"])
    for rows in _batches(AuditEntry.objects.exclude(patient_key="").only("pk", "patient_key")):
        for a in rows:
            a.patient_key = known.get(a.patient_key, "")
            cleared["audit entries"] += not a.patient_key
        AuditEntry.objects.bulk_update(rows, ["patient_key"])

    if any(counts.values()) or lost or any(cleared.values()):
        print("\n  patient digests now HMAC-SM3: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
        print(
            f"  not recomputable (no stored record names the patient in clear): {len(lost)} bindings removed, "
            f"{cleared['conflict keys']} conflict digests and {cleared['audit entries']} audit entry digests cleared"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("mutual_recognition", "0006_exam_and_lab_models_moved_to_their_apps"),
        ("uploads", "0005_sealed_payloads_hmac_patient_digest"),
        ("lab", "0002_sealed_archived_pdfs"),
        ("exam", "0002_sealed_report_pdfs"),
        ("patients", "0001_patient_bindings"),
    ]

    operations = [migrations.RunPython(rehash, migrations.RunPython.noop, elidable=False)]
