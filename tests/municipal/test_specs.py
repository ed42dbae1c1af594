"""The interface catalogue: every interface is data, loads, validates and makes valid examples."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from hospital_interop.municipal import specs
from hospital_interop.municipal.profile import Profile
from hospital_interop.municipal.specs import SpecError, load_catalogue, resident_id_ok

REPO = Path(__file__).resolve().parents[2]

# The service codes of interfaces.md, sections A-G (DICOM, in-hospital and local operations excluded).
EXPECTED = {
    "exam": (
        "3.5",
        {
            "EXAM_REPORT_PDF",
            "EXAM_RESULT_SUBMIT",
            "EXAM_REPORT_VOID",
            "EXAM_DAILY_SUMMARY",
            "EXAM_RECOGNIZABLE_ITEMS",
            "EXAM_RECOGNITION_SUBMIT",
            "SECURITY_TIMESTAMP",
        },
    ),
    "lab": (
        "3.0.2.0",
        {
            "LAB_RECOGNIZABLE_ITEMS",
            "LAB_RECOGNITION_FEEDBACK",
            "LAB_REPORT_DETAIL",
            "LAB_REPORT_PDF",
            "LAB_REPORT_PDF_PREVIEW",
            "LAB_REPORT_LIST_BY_ORG",
            "LAB_REPORT_LIST_BY_ID",
        },
    ),
    "emr_public": (
        "2.0.2.0",
        {"PUB_LAB_REPORT_DETAIL", "PUB_DIAGNOSIS_CERT", "PUB_PDF", "PUB_LAB_REPORT_PDF"},
    ),
    "emr_outpatient": (
        "2.1.2.0",
        {
            "OP_REGISTRATION",
            "OP_VISIT",
            "OP_VISIT_REASON",
            "OP_RECORD",
            "OP_ORDER",
            "OP_PRESCRIPTION",
            "OP_SETTLEMENT",
            "OP_INVOICE",
            "OP_PROCEDURE",
            "OP_ADMISSION_NOTICE",
            "OP_PDF",
        },
    ),
    "emr_inpatient": (
        "2.2.2.0",
        {
            "IP_FRONT_PAGE",
            "IP_ADMISSION_RECORD",
            "IP_DISCHARGE_RECORD",
            "IP_SURGERY_RECORD",
            "IP_SETTLEMENT",
            "IP_INVOICE",
            "IP_DEATH_RECORD",
            "IP_PROGRESS_NOTE",
            "IP_ADMISSION",
            "IP_DISCHARGE",
            "IP_IN_HOSPITAL",
            "IP_PDF",
        },
    ),
    "emr_checkup": ("2.3.2.0", {"PE_REPORT", "PE_PDF"}),
    "quality": ("1.0", {"QC_FEEDBACK_QUERY", "QC_FEEDBACK_REPLY"}),
}
ALL_CODES = sorted(code for _, codes in EXPECTED.values() for code in codes)

# Paths and keys as interfaces.md fixes them.
PATHS_AND_KEYS = {
    "EXAM_REPORT_PDF": ("/exam/report/pdf", ("orgCode", "reportId")),
    "EXAM_REPORT_VOID": ("/exam/report/void", ("orgCode", "reportId")),
    "EXAM_DAILY_SUMMARY": ("/exam/daily/summary", ("orgCode", "statDate", "deptCode")),
    "EXAM_RECOGNITION_SUBMIT": (
        "/exam/recognition/submit",
        ("orgCode", "visitId", "orderId", "externalReportId"),
    ),
    "LAB_RECOGNITION_FEEDBACK": (
        "/lab/recognition/feedback",
        ("orgCode", "visitId", "orderId", "externalReportId", "itemCode"),
    ),
    "LAB_REPORT_PDF_PREVIEW": ("/lab/report/pdf/preview", ("orgCode", "reportId")),
    "LAB_REPORT_LIST_BY_ID": ("/lab/report/list/idcard", ()),
    "IP_FRONT_PAGE": ("/emr/ip/front-page", ("orgCode", "caseNo", "admissionTimes")),
    "IP_IN_HOSPITAL": ("/emr/ip/in-hospital", ("orgCode", "inpatientId", "statDate")),
    "OP_INVOICE": ("/emr/op/invoice", ("orgCode", "invoiceNo")),
    "PE_PDF": ("/emr/pe/pdf", ("orgCode", "reportId")),
    "QC_FEEDBACK_QUERY": ("/quality/feedback/query", ()),
    "QC_FEEDBACK_REPLY": ("/quality/feedback/reply", ("orgCode", "feedbackId")),
}

# interfaces.md "Ordering rules": child -> parent.
ORDERING = {
    "OP_VISIT": "OP_REGISTRATION",
    **{
        c: "OP_VISIT"
        for c in (
            "OP_VISIT_REASON",
            "OP_RECORD",
            "OP_ORDER",
            "OP_PRESCRIPTION",
            "OP_SETTLEMENT",
            "OP_INVOICE",
            "OP_PROCEDURE",
            "OP_ADMISSION_NOTICE",
            "OP_PDF",
        )
    },
    **{
        c: "IP_ADMISSION"
        for c in (
            "IP_ADMISSION_RECORD",
            "IP_PROGRESS_NOTE",
            "IP_SURGERY_RECORD",
            "IP_IN_HOSPITAL",
            "IP_DISCHARGE",
        )
    },
    **{
        c: "IP_DISCHARGE"
        for c in ("IP_DISCHARGE_RECORD", "IP_FRONT_PAGE", "IP_SETTLEMENT", "IP_INVOICE", "IP_PDF")
    },
}


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def rules(errors):
    return sorted((e["field"], e["rule"]) for e in errors)


# --------------------------------------------------------------------------- coverage


def test_catalogue_covers_exactly_the_service_codes_of_the_interface_list(cat):
    assert sorted(s.code for s in cat.interfaces) == ALL_CODES
    assert len(ALL_CODES) == 45
    for document, (version, codes) in EXPECTED.items():
        doc = cat.document(document)
        assert doc.version == version
        assert {s.code for s in doc.interfaces} == codes
        assert all(s.document == document and s.version == version for s in doc.interfaces)


def test_documents_carry_their_envelope_profile(cat):
    assert [d.document for d in cat.documents] == sorted(EXPECTED)
    for d in cat.documents:
        assert isinstance(d.profile, Profile)
        assert d.profile.sign_type == "SM2" and d.profile.encrypt_type == "SM4"
        assert d.profile.max_file_bytes == 20 * 1024 * 1024
        assert d.title
        for s in d.interfaces:
            assert s.profile is d.profile


def test_paths_keys_and_lookup(cat):
    for code, (path, key) in PATHS_AND_KEYS.items():
        spec = cat.interface(code)
        assert (spec.path, spec.key) == (path, key)
        assert cat.by_path(path) is spec
    assert len({s.path for s in cat.interfaces}) == len(cat.interfaces)
    with pytest.raises(KeyError, match="NOPE"):
        cat.interface("NOPE")
    with pytest.raises(KeyError):
        cat.by_path("/nowhere")


def test_kinds_envelopes_and_voids(cat):
    kinds = {s.code: s.kind for s in cat.interfaces}
    assert kinds["EXAM_REPORT_VOID"] == "void"
    assert kinds["EXAM_DAILY_SUMMARY"] == "daily"
    assert kinds["SECURITY_TIMESTAMP"] == "security"
    assert {c for c, k in kinds.items() if k == "query"} == {
        "EXAM_RECOGNIZABLE_ITEMS",
        "LAB_RECOGNIZABLE_ITEMS",
        "LAB_REPORT_PDF_PREVIEW",
        "LAB_REPORT_LIST_BY_ORG",
        "LAB_REPORT_LIST_BY_ID",
        "QC_FEEDBACK_QUERY",
    }
    assert cat.interface("SECURITY_TIMESTAMP").envelope == "plain"
    assert {s.envelope for s in cat.interfaces if s.code != "SECURITY_TIMESTAMP"} == {"sealed"}
    assert set(cat.interface("EXAM_REPORT_VOID").voids) == {"EXAM_RESULT_SUBMIT", "EXAM_REPORT_PDF"}
    assert cat.interface("EXAM_REPORT_VOID").fields["voidReason"].required


def test_ordering_rules_are_parents_with_match_fields(cat):
    parents = {s.code: [p.interface for p in s.parents] for s in cat.interfaces if s.parents}
    assert parents == {child: [parent] for child, parent in ORDERING.items()}
    assert cat.interface("OP_VISIT").parents[0].match == {"registrationId": "registrationId"}
    assert cat.interface("IP_FRONT_PAGE").parents[0].match == {"inpatientId": "inpatientId"}


def test_every_query_and_upload_has_a_response_shape(cat):
    for s in cat.interfaces:
        assert s.response is not None, s.code
    assert "receiptId" in cat.interface("OP_VISIT").response.fields
    assert "timestamp" in cat.interface("SECURITY_TIMESTAMP").response.fields
    assert {"fileContent", "fileHash"} <= set(cat.interface("LAB_REPORT_PDF_PREVIEW").response.fields)
    assert {"total", "reports"} <= set(cat.interface("LAB_REPORT_LIST_BY_ORG").response.fields)


def test_lab_report_detail_carries_what_requirement_1_2_2_asks_for(cat):
    spec = cat.interface("LAB_REPORT_DETAIL")
    top = spec.fields
    assert {
        "requestDoctorLicenseNo",
        "requestDeptCode",
        "requestDeptName",
        "chargeItems",
        "nonRecognitions",
        "externalResults",
        "items",
    } <= set(top)
    assert top["requestDoctorLicenseNo"].required
    item = top["items"].items.fields
    assert {
        "resultValue",
        "unit",
        "referenceRange",
        "abnormalFlagCode",
        "recognitionMark",
        "recognitionItemCode",
        "recognitionItemName",
    } <= set(item)
    assert item["recognitionMark"].value_set.codes == {"HR": "互认项目"}
    refusal = top["nonRecognitions"].items.fields
    assert {"refusalReasonCode", "refusalReasonName", "note"} <= set(refusal)


def test_recognition_decisions_name_reason_and_note(cat):
    for code in ("EXAM_RECOGNITION_SUBMIT", "LAB_RECOGNITION_FEEDBACK"):
        f = cat.interface(code).fields
        assert f["decisionCode"].value_set.id == "RECOGNITION_DECISION"
        assert f["refusalReasonCode"].value_set.id == "REFUSAL_REASON"
        assert f["refusalReasonCode"].required_when == {"decisionCode": ("2",)}
        assert f["refusalNote"].required_when == {"refusalReasonCode": ("9",)}


def test_front_page_has_its_groups_and_fee_lines(cat):
    spec = cat.interface("IP_FRONT_PAGE")
    assert {"patient", "admission", "diagnoses", "procedures", "discharge", "signatures", "fees"} <= set(
        spec.fields
    )
    fees = spec.fields["fees"].fields
    assert len(fees) >= 30
    assert all(
        f.type == "decimal" and f.precision == (10, 2) and f.de == "DE07.00.010.00" for f in fees.values()
    )
    assert spec.field_count() >= 140
    patient = spec.fields["patient"].fields
    assert {
        "nationalityCode",
        "ethnicityCode",
        "occupationCode",
        "maritalStatusCode",
        "currentAddressProvince",
        "householdAddressPostcode",
        "contactRelationCode",
    } <= set(patient)


def test_value_sets_of_the_data_element_reference(cat):
    expect = {
        "SEX": {"0", "1", "2", "9"},
        "ID_TYPE": {"01", "02", "03", "04", "05", "06", "07", "99"},
        "PATIENT_TYPE": {"1", "2", "3", "9"},
        "ADMISSION_ROUTE": {"1", "2", "3", "9"},
        "DISCHARGE_METHOD": {"1", "2", "3", "4", "5", "9"},
        "ABO": {"1", "2", "3", "4", "5", "6"},
        "RH": {"1", "2", "3", "4"},
        "PAYMENT_METHOD": {"01", "02", "03", "04", "05", "06", "07", "08", "99"},
        "ADMISSION_CONDITION": {"1", "2", "3", "4"},
        "SURGERY_LEVEL": {"1", "2", "3", "4"},
        "EXAM_RESULT": {"1", "2"},
        "VOID_FLAG": {"0", "1"},
        "RECOGNITION_DECISION": {"1", "2"},
        "REFUSAL_REASON": {"1", "2", "3", "4", "5", "6", "9"},
    }
    for set_id, codes in expect.items():
        assert set(cat.value_set(set_id).codes) == codes, set_id
    assert cat.value_set("RECOGNITION_DECISION").codes == {"1": "互认", "2": "不互认"}
    assert {"H", "L", "N"} <= set(cat.value_set("LAB_ABNORMAL_FLAG").codes)
    assert {"qd", "bid", "q8h"} <= set(cat.value_set("FREQUENCY").codes)
    for subset in ("ICD10", "ICD9CM3", "DEPT_STD"):
        assert cat.value_set(subset).subset
    with pytest.raises(KeyError):
        cat.value_set("NOPE")


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("code", ALL_CODES)
def test_examples_are_valid(cat, code):
    spec = cat.interface(code)
    for seed in (0, 1, 7, 42, 999):
        payload = spec.example(seed)
        assert spec.validate(payload) == [], (seed, spec.validate(payload))
        assert spec.validate_response(spec.response_example(seed)) == []
        json.dumps(payload)  # plain JSON


@pytest.mark.parametrize("code", ALL_CODES)
def test_invalid_examples_name_their_violations(cat, code):
    spec = cat.interface(code)
    payload, expected = spec.invalid_example(expected=True)
    assert ("unexpectedField", "unknown") in expected and len(expected) >= 2
    assert rules(spec.validate(payload)) == sorted(expected)
    assert spec.invalid_example() == payload


def test_invalid_example_reaches_nested_objects_and_array_items(cat):
    spec = cat.interface("LAB_REPORT_DETAIL")
    payload, expected = spec.invalid_example(expected=True)
    assert ("patient.idNo", "checksum") in expected
    assert ("items[0].itemNo", "required") in expected
    assert rules(spec.validate(payload)) == sorted(expected)


def test_examples_are_deterministic_and_distinct_per_seed(cat):
    spec = cat.interface("LAB_REPORT_DETAIL")
    assert spec.example(5) == spec.example(5)
    assert spec.example(5) != spec.example(6)
    keys = {spec.key_of(spec.example(seed)) for seed in range(1000)}
    assert len(keys) == 1000


def test_examples_are_realistic(cat):
    p = cat.interface("OP_RECORD").example(11)
    patient = p["patient"]
    assert resident_id_ok(patient["idNo"])
    assert patient["idNo"][6:14] == patient["birthDate"]
    assert int(patient["idNo"][16]) % 2 == (1 if patient["sexCode"] == "1" else 0)  # odd digit: male
    assert 2 <= len(patient["name"]) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in patient["name"])
    assert patient["sexName"] == {"1": "男", "2": "女"}[patient["sexCode"]]
    assert len(p["visitDateTime"]) == 14 and len(patient["birthDate"]) == 8
    pdf = cat.interface("LAB_REPORT_PDF").example(3)
    import base64

    raw = base64.b64decode(pdf["fileContent"])
    assert raw.startswith(b"%PDF-") and pdf["fileSize"] == len(raw) and pdf["fileHash"] == specs.sm3_hex(raw)


def test_one_seed_makes_one_encounter_across_interfaces(cat):
    registration = cat.interface("OP_REGISTRATION").example(8)
    visit_spec = cat.interface("OP_VISIT")
    visit = visit_spec.example(8)
    record_spec = cat.interface("OP_RECORD")
    record = record_spec.example(8)
    assert visit["patient"] == record["patient"] == registration["patient"]
    assert visit_spec.parent_keys_of(visit) == [
        ("OP_REGISTRATION", cat.interface("OP_REGISTRATION").key_of(registration))
    ]
    assert record_spec.parent_keys_of(record) == [("OP_VISIT", visit_spec.key_of(visit))]
    admission = cat.interface("IP_ADMISSION").example(8)
    discharge = cat.interface("IP_DISCHARGE").example(8)
    assert discharge["dischargeDateTime"] > admission["admissionDateTime"]
    front = cat.interface("IP_FRONT_PAGE")
    assert front.parent_keys_of(front.example(8)) == [
        ("IP_DISCHARGE", (admission["orgCode"], admission["inpatientId"]))
    ]


def test_example_overrides(cat):
    spec = cat.interface("OP_VISIT")
    p = spec.example(2, visitId="V-override", orgName=None)
    assert p["visitId"] == "V-override" and "orgName" not in p
    assert rules(spec.validate(p)) == [("orgName", "required")]
    assert spec.key_of(p) == (p["orgCode"], "V-override")


# --------------------------------------------------------------------------- validation rules


@pytest.fixture
def visit(cat):
    spec = cat.interface("OP_VISIT")
    return spec, spec.example(4)


def test_valid_payload_has_no_errors(visit):
    spec, p = visit
    assert spec.validate(p) == []


def test_required_missing_null_and_empty(visit):
    spec, p = visit
    p["patient"]["name"] = ""
    p["deptCode"] = None
    del p["visitDateTime"]
    assert rules(spec.validate(p)) == [
        ("deptCode", "required"),
        ("patient.name", "required"),
        ("visitDateTime", "required"),
    ]
    error = next(e for e in spec.validate(p) if e["field"] == "patient.name")
    assert error["message"] == "患者姓名为必填项 (required field missing)"


def test_optional_fields_may_be_absent_or_null(visit):
    spec, p = visit
    p["patient"]["phone"] = None
    del p["patient"]["ageYears"]
    assert spec.validate(p) == []


def test_a_nul_or_a_lone_surrogate_in_any_text_is_refused_naming_the_field(visit, cat):
    """The spec is the guard every intake shares. The HTTP edges refuse these characters in their
    JSON parser, but the EMR puller reads the HIS's own database (SQL Server or Oracle can hold
    both), and PostgreSQL can hold neither: a row carrying one passed validation and failed the
    outbox's insert (patient, key columns), so the pull stopped at it every time."""
    spec, p = visit
    p["patient"]["name"] = "张\x00三"
    p["outpatientNo"] = "M\ud800"
    assert rules(spec.validate(p)) == [("outpatientNo", "character"), ("patient.name", "character")]
    error = next(e for e in spec.validate(p) if e["field"] == "patient.name")
    assert (
        error["message"]
        == "患者姓名含有不允许的字符（空字符或孤立代理项） (contains U+0000 or a lone surrogate)"
    )
    lab = cat.interface("LAB_REPORT_DETAIL")
    payload = lab.example(5)
    payload["items"][0]["resultValue"] = "12\x00"  # array items and nested objects alike
    assert ("items[0].resultValue", "character") in rules(lab.validate(payload))


def test_length(visit):
    spec, p = visit
    p["patient"]["name"] = "名" * 51
    p["outpatientNo"] = "M" * 19
    assert rules(spec.validate(p)) == [("outpatientNo", "length"), ("patient.name", "length")]


def test_value_set_and_name_match(visit):
    spec, p = visit
    p["patient"]["sexCode"] = "5"
    p["patientTypeCode"], p["patientTypeName"] = "1", "住院"
    assert rules(spec.validate(p)) == [("patient.sexCode", "valueSet"), ("patientTypeName", "nameMatch")]
    message = next(e["message"] for e in spec.validate(p) if e["rule"] == "nameMatch")
    assert "门诊" in message and "住院" in message


def test_subset_value_sets_accept_well_formed_unlisted_codes(cat):
    spec = cat.interface("OP_PRESCRIPTION")
    p = spec.example(1)
    p["diagnosisCode"], p["diagnosisName"] = "C15.9", "食管恶性肿瘤"  # not in the demo subset
    assert spec.validate(p) == []
    p["diagnosisCode"] = "not-icd"
    assert rules(spec.validate(p)) == [("diagnosisCode", "valueSet")]
    p["diagnosisCode"], p["diagnosisName"] = "C34.9", "肺癌"  # listed: the name is checked
    assert rules(spec.validate(p)) == [("diagnosisName", "nameMatch")]


def test_code_fields_are_strings(visit):
    spec, p = visit
    p["patient"]["sexCode"] = 1
    assert rules(spec.validate(p)) == [("patient.sexCode", "type")]


def test_resident_id_checksum_and_format(visit):
    spec, p = visit
    good = p["patient"]["idNo"]
    assert resident_id_ok(good)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    p["patient"]["idNo"] = wrong
    assert rules(spec.validate(p)) == [("patient.idNo", "checksum")]
    p["patient"]["idNo"] = "11010519491331002X"  # month 13
    assert rules(spec.validate(p)) == [("patient.idNo", "format")]
    p["patient"]["idNo"] = "1101051949"
    assert rules(spec.validate(p)) == [("patient.idNo", "format")]
    # The check applies to resident ID cards only.
    p["patient"].update(idTypeCode="03", idTypeName="护照", idNo="E12345678")
    assert spec.validate(p) == []


def test_resident_id_ok():
    assert resident_id_ok("11010519491231002X")  # the GB 11643 example
    assert resident_id_ok("110105194912310029") is False
    assert resident_id_ok("11010519491231002x") is False  # the check character is an upper-case X
    assert resident_id_ok("11010519490230002X") is False  # 30 February
    assert resident_id_ok(None) is False
    assert resident_id_ok("") is False


def test_decimal_precision(cat):
    spec = cat.interface("OP_SETTLEMENT")
    p = spec.example(1)
    assert spec.validate(p) == []
    p["totalAmount"] = 12.345  # N..10,2
    p["selfPaidAmount"] = 123456789.5  # nine integer digits, eight allowed
    p["insurancePaidAmount"] = 100  # an integer is a decimal with no fraction
    p["fees"][0]["amount"] = "12.30"  # a string is not a number
    assert rules(spec.validate(p)) == [
        ("fees[0].amount", "type"),
        ("selfPaidAmount", "precision"),
        ("totalAmount", "precision"),
    ]
    p = spec.example(1, totalAmount=1e-05)
    assert rules(spec.validate(p)) == [("totalAmount", "precision")]
    p = spec.example(1, totalAmount=True)
    assert rules(spec.validate(p)) == [("totalAmount", "type")]


def test_date_and_datetime_format(visit):
    spec, p = visit
    p["patient"]["birthDate"] = "1980-01-01"
    p["visitDateTime"] = "20260101246000"
    assert rules(spec.validate(p)) == [("patient.birthDate", "format"), ("visitDateTime", "format")]
    p["patient"]["birthDate"] = "19800230"
    p["visitDateTime"] = "20260101"
    assert rules(spec.validate(p)) == [("patient.birthDate", "format"), ("visitDateTime", "format")]
    p["patient"]["birthDate"] = 19800101
    assert ("patient.birthDate", "type") in rules(spec.validate(p))


def test_integer_and_boolean(cat):
    spec = cat.interface("OP_RECORD")
    p = spec.example(1)
    p["allergyHistoryFlag"] = "true"
    p["patient"]["ageYears"] = 1234
    p["diagnoses"][0]["diagnosisOrder"] = 1.0
    assert rules(spec.validate(p)) == [
        ("allergyHistoryFlag", "type"),
        ("diagnoses[0].diagnosisOrder", "type"),
        ("patient.ageYears", "length"),
    ]


def test_conditionally_required(cat):
    spec = cat.interface("EXAM_RECOGNITION_SUBMIT")
    p = spec.example(
        1,
        decisionCode="2",
        decisionName="不互认",
        refusalReasonCode=None,
        refusalReasonName=None,
        refusalNote=None,
    )
    assert rules(spec.validate(p)) == [("refusalReasonCode", "required"), ("refusalReasonName", "required")]
    p.update(refusalReasonCode="9", refusalReasonName="其他（须填写说明）")
    assert rules(spec.validate(p)) == [("refusalNote", "required")]
    p["refusalNote"] = "患者要求复查"
    assert spec.validate(p) == []
    recognised = spec.example(
        1,
        decisionCode="1",
        decisionName="互认",
        refusalReasonCode=None,
        refusalReasonName=None,
        refusalNote=None,
    )
    assert spec.validate(recognised) == []


def test_unknown_fields_at_every_level(visit):
    spec, p = visit
    p["extra"] = 1
    p["patient"]["nickname"] = "小王"
    assert rules(spec.validate(p)) == [("extra", "unknown"), ("patient.nickname", "unknown")]


def test_array_item_paths(cat):
    spec = cat.interface("LAB_REPORT_DETAIL")
    p = spec.example(3)
    assert len(p["items"]) >= 3
    del p["items"][2]["resultValue"]
    p["items"][1]["abnormalFlagCode"] = "Z"
    p["items"][0]["quantitativeResult"] = 1.23456
    p["chargeItems"][0]["surplus"] = 1
    assert rules(spec.validate(p)) == [
        ("chargeItems[0].surplus", "unknown"),
        ("items[0].quantitativeResult", "precision"),
        ("items[1].abnormalFlagCode", "valueSet"),
        ("items[2].resultValue", "required"),
    ]
    p = spec.example(3, items=[])
    assert rules(spec.validate(p)) == [("items", "minItems")]
    p = spec.example(3, items={"itemNo": 1})
    assert rules(spec.validate(p)) == [("items", "type")]
    p = spec.example(3, items=[None])
    assert rules(spec.validate(p)) == [("items[0]", "type")]


def test_scalar_array_items(cat):
    spec = cat.interface("EXAM_RECOGNIZABLE_ITEMS")
    p = spec.example(1, recognitionItemCodes=["JC0012", "bad", 7])
    assert rules(spec.validate(p)) == [
        ("recognitionItemCodes[1]", "valueSet"),
        ("recognitionItemCodes[2]", "type"),
    ]


def test_file_content_is_checked_against_size_and_hash(cat):
    spec = cat.interface("LAB_REPORT_PDF")
    p = spec.example(1)
    p["fileSize"] += 1
    p["fileHash"] = "0" * 64
    assert rules(spec.validate(p)) == [("fileHash", "checksum"), ("fileSize", "checksum")]
    p = spec.example(1, fileContent="not base64!")
    assert rules(spec.validate(p)) == [("fileContent", "format")]
    p = spec.example(1, fileHash="abc")
    assert rules(spec.validate(p)) == [("fileHash", "format")]


def test_response_validation(cat):
    spec = cat.interface("SECURITY_TIMESTAMP")
    assert spec.validate_response({"timestamp": "20261127101500123"}) == []
    assert rules(spec.validate_response({"timestamp": "2026112710150012"})) == [("timestamp", "format")]
    assert rules(spec.validate_response([])) == [("", "type")]
    lst = cat.interface("LAB_REPORT_LIST_BY_ORG")
    data = lst.response_example(2)
    data["reports"][0]["voidFlag"] = "2"
    assert rules(lst.validate_response(data)) == [("reports[0].voidFlag", "valueSet")]


def test_payload_must_be_an_object(visit):
    spec, _ = visit
    assert rules(spec.validate(["x"])) == [("", "type")]
    assert rules(spec.validate(None)) == [("", "type")]


# --------------------------------------------------------------------------- spec files are checked


MINIMAL = """\
document: demo
version: "1.0"
title: 演示文档
profile: {signType: SM2}
interfaces:
  - code: DEMO_UPLOAD
    section: "1.1"
    name: 演示上传
    path: /demo/upload
    kind: upload
    key: [orgCode, recordId]
    request:
      $use: [org]
      recordId: {title: 记录编号, type: string, length: 20, required: true}
      sexCode: {title: 性别代码, type: code, length: 1, valueSet: SEX, nameField: sexName}
      sexName: {title: 性别名称, type: string, length: 10}
      content: {title: 文件, type: file}
    response:
      receiptId: {title: 回执, type: string, required: true}
"""


@pytest.fixture
def spec_root(tmp_path):
    """A spec folder with the real shared files and one small document, written by `write`."""
    shutil.copytree(specs.SPEC_ROOT / "_common", tmp_path / "_common")
    (tmp_path / "demo").mkdir()

    def write(text: str = MINIMAL, name: str = "1.0.yaml", folder: str = "demo") -> Path:
        (tmp_path / folder).mkdir(exist_ok=True)
        file = tmp_path / folder / name
        file.write_text(text, encoding="utf-8")
        load_catalogue.cache_clear()
        return file

    yield tmp_path, write
    load_catalogue.cache_clear()


def test_minimal_spec_folder_loads(spec_root):
    root, write = spec_root
    write()
    cat = load_catalogue(root)
    spec = cat.interface("DEMO_UPLOAD")
    assert spec.example(1)["orgCode"] and spec.validate(spec.example(1)) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("length: 20, required: true}", "lenght: 20, required: true}", "unknown attribute 'lenght'"),
        ("valueSet: SEX", "valueSet: GENDER", "unknown value set 'GENDER'"),
        (
            "key: [orgCode, recordId]",
            "key: [orgCode, reportId]",
            "key field 'reportId' is not a top-level request field",
        ),
        ("nameField: sexName", "nameField: sexLabel", "nameField 'sexLabel' must be a string field"),
        ("$use: [org]", "$use: [organisation]", "unknown field group 'organisation'"),
        ("type: file}", "type: blob}", "type 'blob' is not one of"),
        ('version: "1.0"', "version: 1.0", "quote the version"),
        ('section: "1.1"', "section: 1.1", "quote the section"),
        ("kind: upload", "kind: push", "kind 'push' is not one of"),
        ("profile: {signType: SM2}", "profile: {signType: RSA}", "rejected by Profile"),
        (
            "    key: [orgCode, recordId]\n",
            "    key: [orgCode, recordId]\n    parents: [{interface: NO_SUCH, match: {recordId: recordId}}]\n",
            "unknown interface 'NO_SUCH'",
        ),
        (
            "      sexName: {title: 性别名称, type: string, length: 10}\n",
            "      sexName: {title: 性别名称, type: string, length: 10}\n      sexName: {title: 重复, type: string}\n",
            "duplicate key 'sexName'",
        ),
        ("recordId: {", "record_id: {", "must be camelCase"),
    ],
)
def test_spec_errors_name_file_and_place(spec_root, old, new, message):
    root, write = spec_root
    assert old in MINIMAL
    file = write(MINIMAL.replace(old, new))
    with pytest.raises(SpecError) as caught:
        load_catalogue(root)
    text = str(caught.value)
    assert message in text
    assert str(file) in text


def test_spec_error_points_inside_the_document(spec_root):
    root, write = spec_root
    write(MINIMAL.replace("length: 20, required: true}", "lenght: 20, required: true}"))
    with pytest.raises(SpecError) as caught:
        load_catalogue(root)
    assert caught.value.where == "interfaces[0](DEMO_UPLOAD).request.recordId"
    assert caught.value.file.endswith("demo/1.0.yaml")


def test_document_must_sit_in_its_own_folder(spec_root):
    root, write = spec_root
    write(name="2.0.yaml")
    with pytest.raises(SpecError, match="does not match the file's place"):
        load_catalogue(root)


def test_broken_value_set_file_is_named(spec_root):
    root, write = spec_root
    write()
    sets = root / "_common" / "value_sets.yaml"
    sets.write_text(
        sets.read_text(encoding="utf-8") + "\nBROKEN:\n  title: 坏\n  codes:\n    1: 一\n", encoding="utf-8"
    )
    with pytest.raises(SpecError, match="codes must be quoted strings") as caught:
        load_catalogue(root)
    assert caught.value.file == str(sets)


def test_max_file_bytes_comes_from_the_profile(spec_root):
    root, write = spec_root
    write(MINIMAL.replace("profile: {signType: SM2}", "profile: {signType: SM2, maxFileBytes: 8}"))
    spec = load_catalogue(root).interface("DEMO_UPLOAD")
    assert rules(spec.validate(spec.example(1, content="AAAAAAAAAAAA"))) == [("content", "length")]
    assert spec.validate(spec.example(1, content="AAAAAAAA")) == []


def test_a_new_document_version_is_a_data_change(spec_root):
    root, write = spec_root
    write()
    newer = MINIMAL.replace('version: "1.0"', 'version: "1.1"').replace(
        "      content: {title: 文件, type: file}\n",
        "      content: {title: 文件, type: file}\n      remark: {title: 备注, type: string, length: 50}\n",
    )
    write(newer, name="1.1.yaml")
    cat = load_catalogue(root)
    assert [d.version for d in cat.documents] == ["1.0", "1.1"]
    assert cat.interface("DEMO_UPLOAD").version == "1.1"
    assert "remark" in cat.interface("DEMO_UPLOAD").fields
    assert cat.interface("DEMO_UPLOAD", version="1.0").version == "1.0"
    pinned = load_catalogue(root, pins={"demo": "1.0"})
    assert "remark" not in pinned.interface("DEMO_UPLOAD").fields
    with pytest.raises(SpecError, match=r"pinned version 9\.9"):
        load_catalogue(root, pins={"demo": "9.9"})


def test_a_document_may_redefine_a_value_set(spec_root):
    root, write = spec_root
    swapped = MINIMAL.replace(
        "interfaces:\n", 'valueSets:\n  SEX:\n    title: 性别\n    codes: {"M": 男, "F": 女}\ninterfaces:\n'
    )
    write(swapped.replace("length: 1, valueSet: SEX", "length: 1, valueSet: SEX, example: M"))
    spec = load_catalogue(root).interface("DEMO_UPLOAD")
    assert spec.validate(spec.example(1, sexCode="M", sexName="男")) == []
    assert rules(spec.validate(spec.example(1, sexCode="1", sexName="男"))) == [("sexCode", "valueSet")]


def test_catalogue_is_cached():
    assert load_catalogue() is load_catalogue()


# --------------------------------------------------------------------------- manage.py specs


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("specs", *args, stdout=out)
    return out.getvalue()


def test_command_list():
    text = run("list")
    assert text.splitlines()[0].split() == [
        "document",
        "version",
        "section",
        "code",
        "kind",
        "path",
        "key",
        "fields",
    ]
    for code in ALL_CODES:
        assert code in text
    assert "orgCode,caseNo,admissionTimes" in text


def test_command_show():
    text = run("show", "LAB_REPORT_DETAIL")
    assert "检验报告明细上报/变更" in text
    assert "requestDoctorLicenseNo  申请医师执业资格证书编码  string(30)  必填" in text
    assert "值域 LAB_ABNORMAL_FLAG" in text
    assert "应答 response:" in text


def test_command_example_prints_a_valid_payload(cat):
    payload = json.loads(run("example", "IP_DISCHARGE", "--seed", "4"))
    assert cat.interface("IP_DISCHARGE").validate(payload) == []
    data = json.loads(run("example", "LAB_REPORT_LIST_BY_ID", "--response"))
    assert cat.interface("LAB_REPORT_LIST_BY_ID").validate_response(data) == []


def test_command_check(tmp_path, cat):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(cat.interface("OP_ORDER").example(1), ensure_ascii=False), encoding="utf-8")
    assert "校验通过" in run("check", str(good), "--interface", "OP_ORDER")
    bad = tmp_path / "bad.json"
    payload, expected = cat.interface("OP_ORDER").invalid_example(expected=True)
    bad.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    from io import StringIO

    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("specs", "check", str(bad), "--interface", "OP_ORDER", stdout=out)
    assert caught.value.returncode == 1
    lines = out.getvalue().splitlines()
    for field, rule in expected:
        assert any(line.split()[:2] == [field, rule] for line in lines), (field, rule)
    with pytest.raises(CommandError, match="unknown service code"):
        run("check", str(good), "--interface", "NOPE")


def test_check_exit_status_from_the_shell(tmp_path, cat):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(cat.interface("PE_REPORT").example(2), ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(cat.interface("PE_REPORT").invalid_example(2), ensure_ascii=False), encoding="utf-8"
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    manage = [sys.executable, str(REPO / "manage.py"), "specs", "check"]
    ok = subprocess.run(
        [*manage, str(good), "--interface", "PE_REPORT"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    ko = subprocess.run(
        [*manage, str(bad), "--interface", "PE_REPORT"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert ko.returncode == 1
    assert "unexpectedField" in ko.stdout
    unreadable = subprocess.run(
        [*manage, str(broken), "--interface", "PE_REPORT"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert unreadable.returncode == 1 and "JSON" in unreadable.stdout


def test_check_payload_file_function(tmp_path, cat):
    f = tmp_path / "p.json"
    f.write_text(json.dumps(copy.deepcopy(cat.interface("OP_VISIT").example(1))), encoding="utf-8")
    status, text = specs.check_payload_file(f, "OP_VISIT")
    assert status == 0 and "OP_VISIT" in text


def test_a_name_field_of_the_wrong_type_is_an_error_not_a_crash():
    """Found by fuzzing the intake API: a dict where a code's name belongs."""
    spec = load_catalogue().interface("OP_REGISTRATION")
    payload = spec.example(1)
    payload["patient"]["sexName"] = {"x": 1}
    errors = spec.validate(payload)
    assert ("patient.sexName", "type") in [(e["field"], e["rule"]) for e in errors]


def test_quality_feedback_reply_needs_a_note_unless_fixed_and_a_resend_time_when_fixed(cat):
    """interfaces.md §G: note required unless result = 1; resentAt when result = 1."""
    spec = cat.interface("QC_FEEDBACK_REPLY")
    base = {"orgCode": "12110000400000000X", "feedbackId": "QC1", "handledBy": "D001"}
    assert rules(spec.validate({**base, "result": "1"})) == [("resentAt", "required")]
    assert spec.validate({**base, "result": "1", "resentAt": "20261204101500"}) == []
    assert rules(spec.validate({**base, "result": "2"})) == [("note", "required")]
    assert rules(spec.validate({**base, "result": "3", "note": ""})) == [("note", "required")]
    assert rules(spec.validate({**base, "result": "4", "note": "x"})) == [("result", "valueSet")]
    query = cat.interface("QC_FEEDBACK_QUERY")
    item = query.response_example(3)["items"][0]
    assert {"feedbackId", "issuer", "kind", "serviceCode", "businessKey", "replyBy"} <= set(item)
    assert rules(query.validate_response({"items": [{**item, "kind": "other"}], "nextCursor": ""})) == [
        ("items[0].kind", "valueSet")
    ]
