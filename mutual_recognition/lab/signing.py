"""The lab side of signatures: what a version's signature must cover, and that signature.

``version_facts`` gives the facts of one ``LabReportVersion`` exactly as its PDF prints them and
its index carries them (``esign.content.report_facts``): report number and version, title,
patient (name, sex, age as printed, HIS patient id), specimen (type as printed, number), result
lines (code, printed name, result, printed unit, reference range, flag) and the reviewer the LIS
names (staff number, printed name). The review module copies the same facts when a version is
opened for review (``esign.services.open_review``), so both sides build the same signed text.

``signature_for`` is what the PDF, the index and any other product of a version carry: that
version's own signature over the text of its current content, or None.
"""

from __future__ import annotations

from esign.content import ContentUnreadable, report_facts
from esign.services import signature_block

from . import payloads, pdf
from .models import LabReportVersion

__all__ = ["ContentUnreadable", "signature_for", "version_facts"]


def version_facts(version: LabReportVersion, mapped: payloads.Mapped | None = None) -> dict:
    """The signed facts of ``version`` (its content resolved through the dictionaries, as printed)."""
    c = version.content
    m = mapped or payloads.map_content(c)
    if m.errors:
        raise ContentUnreadable(m.errors)
    patient, specimen = c.get("patient") or {}, c.get("specimen") or {}
    sex, age = pdf.printed_sex_age(c)
    staff_no, reviewer_name = m.review_doctor
    return report_facts(
        report_id=c["reportId"],
        version=version.version,
        title=c.get("reportTitle", ""),
        patient={"name": patient.get("name"), "sex": sex, "age": age, "patientId": patient.get("patientId")},
        specimen={"type": pdf.printed_specimen_type(c), "no": specimen.get("specimenNo")},
        items=[
            {
                "code": i.code,
                "name": i.name,
                "result": i.result,
                "unit": i.unit,
                "range": i.range,
                "flag": i.flag,
            }
            for i in m.items
        ],
        reviewer={"staffNo": staff_no, "name": reviewer_name},
    )


def signature_for(version: LabReportVersion, mapped: payloads.Mapped | None = None) -> dict | None:
    """The signature block of this version (``esign.services.signature_block``), or None (also
    when its content cannot be printed under the current dictionaries)."""
    try:
        facts = version_facts(version, mapped)
    except ContentUnreadable:
        return None
    return signature_block(version.report.report_id, version.version, facts)
