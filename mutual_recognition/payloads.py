"""Municipal payloads built from the interface spec, never from a hand-written field list.

The caller gathers what it knows as one dictionary of values under the spec's field names
(``facts``); :func:`build` walks the interface's request fields and takes the ones the spec
defines, recursing into objects, and fills each code's name field from its value set. So the
2.3.2.3 and 3.2 payloads, and the 2.3.2.1 / 3.1 queries, come from the same facts, and a new
document version that adds or drops a field is a YAML change.
"""

from __future__ import annotations

from hospital_interop.municipal.specs import FieldSpec, load_catalogue
from hospital_interop.patients import facts as shared


def spec(code: str):
    return load_catalogue().interface(code)


def build(fields: dict[str, FieldSpec], facts: dict) -> dict:
    """A payload shaped by the spec: the facts' values for the spec's fields (objects and arrays
    of objects recursively; empty values left out), and code names filled from the value set where
    the facts left them out. Used by the recognition and the lab payloads."""
    out: dict = {}
    for name, f in fields.items():
        value = facts.get(name)
        if value in (None, "", []):
            continue
        if f.type == "object" and f.fields:
            if isinstance(value, dict):
                out[name] = build(f.fields, value)
        elif f.type == "array" and f.items is not None and f.items.fields:
            out[name] = [build(f.items.fields, v) for v in value if isinstance(v, dict)]
        else:
            out[name] = value
    for name, f in fields.items():  # code → name from the value set where the facts left it out
        if (
            f.type == "code"
            and f.name_field
            and name in out
            and f.value_set is not None
            and out.get(f.name_field) in (None, "")
        ):
            derived = f.value_set.name_of(out[name])
            if derived:
                out[f.name_field] = derived
    return out


def for_interface(code: str, facts: dict) -> dict:
    return build(spec(code).request.fields, facts)


def patient_facts(enc) -> dict:
    """The patient object (name, sex, birth date, identity) of an Encounter."""
    return shared.patient_facts(
        name=enc.name,
        id_type=enc.id_type_code,
        id_no=enc.id_no,
        sex_code=enc.sex_code,
        birth_date=enc.birth_date,
        phone=enc.phone,
    )


def encounter_facts(enc) -> dict:
    return {
        **shared.org_facts(),
        "patient": patient_facts(enc),
        "patientTypeCode": enc.patient_type_code,
        "visitId": enc.visit_id,
        "outpatientNo": enc.outpatient_no,
        "inpatientNo": enc.inpatient_no,
    }


def decision_facts(decision) -> dict:
    """Everything 2.3.2.3 (exam) and 3.2 (lab) may ask about one decision."""
    facts = encounter_facts(decision.encounter)
    facts.update(
        {
            "orderId": decision.order_id,
            "orderItemCode": decision.order_item_code,
            "orderItemName": decision.order_item_name,
            "recognitionItemCode": decision.standard_code,
            "recognitionItemName": decision.standard_name,
            "itemCode": decision.standard_code,
            "itemName": decision.standard_name,
            "externalOrgCode": decision.external_org_code,
            "externalOrgName": decision.external_org_name,
            "externalReportId": decision.external_report_id,
            "decisionCode": decision.decision,
            "refusalReasonCode": decision.platform_reason_code,
            "refusalNote": decision.note,
            "deptCode": decision.std_dept_code,
            "deptName": decision.std_dept_name,
            "doctorId": decision.doctor_staff_no,
            "doctorName": decision.doctor_name,
            "decisionDateTime": shared.platform_datetime(decision.decided_at),
        }
    )
    return facts


SUBMIT_INTERFACE = {"exam": "EXAM_RECOGNITION_SUBMIT", "lab": "LAB_RECOGNITION_FEEDBACK"}
QUERY_INTERFACE = {"exam": "EXAM_RECOGNIZABLE_ITEMS", "lab": "LAB_RECOGNIZABLE_ITEMS"}


def decision_payload(decision) -> tuple[str, dict]:
    code = SUBMIT_INTERFACE[decision.kind]
    return code, for_interface(code, decision_facts(decision))


def query_payload(kind: str, enc) -> tuple[str, dict]:
    code = QUERY_INTERFACE[kind]
    return code, for_interface(code, encounter_facts(enc))
