"""The signed text of one lab report version: one canonical form, built from plain dicts.

Two sides must arrive at the same bytes:

* the review module signs a :class:`esign.models.ReviewReport` (``esign.services.review_facts``);
* the lab upload checks a signature against the version it archives, from
  ``LabReportVersion.content`` (``mutual_recognition.lab.signing.version_facts``).

Both call :func:`report_facts` with the facts the PDF prints and the index carries — report
number and version, title, patient (as printed), specimen, result lines, and the reviewer the
report names — and :func:`canonical_text` turns them into the text that is signed: compact
UTF-8 JSON with sorted keys and a schema tag. Times the two sides cannot agree on (when the
review was done, when it was signed) are left out: the signing time is in the signature row and
in the timestamp token.

No Django, no database. esign never imports the lab: the lab app registers how the facts of
one of its report versions are built (``register_version_facts``, from its AppConfig.ready), and
the review module asks through :func:`version_facts` — the arrows point from lab to esign only.
"""

from __future__ import annotations

import json

from hospital_interop.municipal import gm

SCHEMA = "lab-report-signed/1"
ITEM_KEYS = ("code", "name", "result", "unit", "range", "flag")


def _s(value) -> str:
    return "" if value is None else str(value)


def report_facts(
    *,
    report_id: str,
    version: int,
    title: str,
    patient: dict,
    specimen: dict,
    items: list[dict],
    reviewer: dict,
) -> dict:
    """The facts a signature covers, every value a string (the version an integer).

    ``patient``: name, sex, age, patientId (as printed); ``specimen``: type, no; ``items``: one
    dict per result line with :data:`ITEM_KEYS`, in report order; ``reviewer``: staffNo, name.
    """
    return {
        "schema": SCHEMA,
        "reportId": _s(report_id),
        "reportVersion": int(version),
        "title": _s(title),
        "patient": {k: _s(patient.get(k)) for k in ("name", "sex", "age", "patientId")},
        "specimen": {k: _s(specimen.get(k)) for k in ("type", "no")},
        "items": [{k: _s(item.get(k)) for k in ITEM_KEYS} for item in items],
        "reviewer": {k: _s(reviewer.get(k)) for k in ("staffNo", "name")},
    }


def canonical_text(facts: dict) -> str:
    """The exact text that is signed: sorted keys, no insignificant whitespace, UTF-8 as is."""
    return json.dumps(facts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def text_hash(text: str) -> str:
    """SM3 (hex) of the UTF-8 bytes of a signed text: ``ReportSignature.original_hash``."""
    return gm.sm3_hex(text.encode("utf-8"))


class ContentUnreadable(ValueError):
    """A report version's content no longer maps through the dictionaries: it has no printable facts."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']} {e['message']}" for e in errors[:5]))


_version_facts = None


def register_version_facts(builder) -> None:
    """``builder(lab_version) -> facts`` (raising ContentUnreadable): installed by the lab app."""
    global _version_facts
    _version_facts = builder


def version_facts(lab_version) -> dict:
    """The facts of a lab report version as its PDF prints them (the lab app's builder)."""
    if _version_facts is None:
        raise RuntimeError("the lab app has not registered its report facts (is it in INSTALLED_APPS?)")
    return _version_facts(lab_version)
