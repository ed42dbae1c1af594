"""The mapping data: intake record <-> platform payload, renames, defaults, names, and its checks."""

import base64
import textwrap

import pytest

from emr_sharing.mapping import MappingError, record_types
from emr_sharing.openapi import record_schema
from hospital_interop.municipal.specs import sm3_hex
from hospital_interop.uploads.models import OutboxRecord

HEAD = """
groups: {outpatient: 门诊}
defaults: {orgCode: {setting: PLATFORM.ORG_CODE}}
fillNames: true
recordTypes:
"""


def mapping_file(tmp_path, body: str):
    path = tmp_path / "record_types.yaml"
    path.write_text(textwrap.dedent(HEAD) + textwrap.dedent(body), encoding="utf-8")
    return path


def test_renamed_fields_map_both_ways_and_errors_speak_intake_names(tmp_path):
    rt = record_types(
        mapping_file(
            tmp_path,
            """
      - slug: op-prescription
        interface: OP_PRESCRIPTION
        group: outpatient
        rename: {prescriptionId: cfh, patient.idNo: sfzh, "drugs[].drugCode": ypdm}
    """,
        )
    ).get("op-prescription")
    platform = rt.spec.example(3)
    intake = rt.example(3)
    assert (
        "cfh" in intake
        and "prescriptionId" not in intake
        and intake["patient"]["sfzh"] == platform["patient"]["idNo"]
    )
    assert all("ypdm" in d and "drugCode" not in d for d in intake["drugs"])
    checked, errors = rt.prepare(intake)
    assert errors == [] and checked.payload == platform
    assert rt.key_fields == ("orgCode", "cfh")

    intake["drugs"][-1]["ypdm"] = None
    intake["patient"]["sfzh"] = platform["patient"]["idNo"][:17] + (
        "0" if platform["patient"]["idNo"][17] != "0" else "1"
    )
    fields = {(e["field"], e["rule"]) for e in rt.prepare(intake)[1]}
    assert fields == {(f"drugs[{len(intake['drugs']) - 1}].ypdm", "required"), ("patient.sfzh", "checksum")}

    platform_named = rt.example(3)
    platform_named["prescriptionId"] = platform_named.pop("cfh")  # the platform's name is not the intake's
    fields = {(e["field"], e["rule"]) for e in rt.prepare(platform_named)[1]}
    assert fields == {("prescriptionId", "unknown"), ("cfh", "required")}

    schema = record_schema(rt)
    assert "cfh" in schema["properties"] and "prescriptionId" not in schema["properties"]
    assert "sfzh" in schema["properties"]["patient"]["properties"]
    assert "ypdm" in schema["properties"]["drugs"]["items"]["properties"]
    assert "cfh" in schema["required"] and "orgCode" not in schema["required"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - {slug: Op_Visit, interface: OP_VISIT, group: outpatient}", "slug"),
        ("  - {slug: op-visit, interface: OP_NOPE, group: outpatient}", "unknown service code"),
        ("  - {slug: op-visit, interface: OP_VISIT, group: inpatient}", "group"),
        ("  - {slug: q, interface: LAB_REPORT_LIST_BY_ORG, group: outpatient}", "query interface"),
        (
            "  - {slug: op-visit, interface: OP_VISIT, group: outpatient, rename: {nope: x}}",
            "no field 'nope'",
        ),
        (
            "  - {slug: op-visit, interface: OP_VISIT, group: outpatient, rename: {visitId: registrationId}}",
            "two fields",
        ),
        (
            "  - {slug: op-visit, interface: OP_VISIT, group: outpatient}\n  - {slug: op-visit, interface: OP_VISIT, group: outpatient}",
            "twice",
        ),
    ],
)
def test_a_malformed_mapping_file_is_refused_with_the_place(tmp_path, body, message):
    with pytest.raises(MappingError, match=message):
        record_types(mapping_file(tmp_path, body))


def test_every_shipped_record_type_maps_its_example_to_itself(rts):
    for rt in rts:
        checked, errors = rt.prepare(rt.example(9))
        assert errors == [] and checked.payload == rt.spec.example(9)


@pytest.mark.django_db
def test_a_record_larger_than_djangos_form_limit_is_accepted(api, rts, settings):
    """Bodies are read by the intake itself (limit 32 MiB), not through DATA_UPLOAD_MAX_MEMORY_SIZE."""
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < 3_000_000
    rt = rts.get("pub-pdf")
    record = rt.example(1)
    content = base64.b64decode(record["fileContent"])
    big = content + b"%" + b"0" * 3_000_000  # still a PDF to the platform's checks: bytes after %%EOF
    record.update(fileContent=base64.b64encode(big).decode("ascii"), fileSize=len(big), fileHash=sm3_hex(big))
    response = api.post("pub-pdf", record)
    assert response.status_code == 201, response.json()
    assert OutboxRecord.objects.get().payload["fileSize"] == len(big)
