"""The OpenAPI document of the intake, generated from the specs, and a schemathesis fuzzing run
against the application: no 5xx, every answer's status, content type and body as documented.

The quick fuzzing here runs in-process over WSGI (tests/fuzzing.py: the Django application itself, in
the test's database transaction) over every single-record and status operation and the bulk
operation of three representative record types, with documented examples plus FUZZ_EXAMPLES
positive and negative cases per operation; the slow run over every operation of every machine
API with 100 examples each is tests/integrations/test_fuzzing.py.
"""

import json

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzzing import call_and_check, fuzz_schema, in_test_transaction  # noqa: F401

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = 4


def fetch_schema(api) -> dict:
    response = api.client.get("/api/emr/v1/schema?format=json", **api.auth)
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_has_every_record_type_with_its_fields_and_chinese_titles(api, rts):
    schema = fetch_schema(api)
    components = schema["components"]["schemas"]
    for rt in rts:
        base = f"/api/emr/v1/records/{rt.slug}"
        assert {"post"} == set(schema["paths"][base]) and "post" in schema["paths"][f"{base}/bulk"]
        assert "get" in schema["paths"][base + "/{businessKey}"]
        ref = schema["paths"][base]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = components[ref.rsplit("/", 1)[1]]
        assert set(component["properties"]) == set(
            rt.spec.request.fields
        )  # no renames in the shipped mapping
        assert "orgCode" not in component["required"]  # filled from settings when left out
    registration = components["OpRegistrationRecord"]
    patient = registration["properties"]["patient"]
    national, hospital = patient["properties"]["sexCode"]["oneOf"]  # a national code, or a hospital one
    assert national["enum"] == ["0", "1", "2", "9"]
    assert hospital["required"] == ["code", "codeSystem"] and "院内代码对照" in hospital["description"]
    assert patient["properties"]["sexCode"]["description"].startswith("性别代码")
    assert "sexName" not in patient["required"] and "sexCode" in patient["required"]
    assert registration["properties"]["visitDate"]["pattern"] == "^[0-9]{8}$"
    assert registration["additionalProperties"] is False
    prescription = components["OpPrescriptionRecord"]["properties"]["drugs"]
    assert prescription["type"] == "array" and prescription["minItems"] == 1
    assert prescription["items"]["properties"]["doseAmount"]["type"] == "number"
    icd = components["OpRecordRecord"]["properties"]["diagnoses"]["items"]["properties"]["diagnosisCode"]
    assert "pattern" in icd["oneOf"][0] and "ICD10" in icd["description"]  # an open subset: pattern, not enum
    assert schema["components"]["securitySchemes"]["IntegrationToken"]["name"] == "Authorization"
    # the example shown in Swagger is a valid record
    example = registration["example"]
    assert rts.get("op-registration").prepare(example)[1] == []


def test_schema_and_docs_need_a_login_or_token(client, admin_client, make_user):
    anonymous = client.get("/api/emr/v1/schema")  # a browser without a session: the login page
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next=")
    assert client.get("/api/emr/v1/schema", HTTP_AUTHORIZATION="Token wrong").status_code in (401, 403)
    client.force_login(make_user("doc-openapi", role="clinician"))  # integrators' documents only
    assert client.get("/api/emr/v1/docs").status_code == 403
    assert admin_client.get("/api/emr/v1/schema?format=json").status_code == 200
    docs = admin_client.get("/api/emr/v1/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


# --------------------------------------------------------------------------- fuzzing
# A quick run (FUZZ_EXAMPLES per operation); tests/integrations/test_fuzzing.py runs every operation
# of every machine API with 100 examples, tests/integrations/test_openapi.py checks that the fuzzed
# document is the served one.

# Bulk submission is one code path for all record types (each line validated like a single record):
# it is fuzzed here for three representative types (flat, with arrays, with a file); every single-record
# and status operation is fuzzed.
BULK_FUZZED = ("op-registration", "op-prescription", "pub-pdf")
fuzz = fuzz_schema("emr", FUZZ_EXAMPLES).exclude(
    path_regex=rf"^/api/emr/v1/records/(?!(?:{'|'.join(BULK_FUZZED)})/)[a-z-]+/bulk$"
)


@fuzz.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.usefixtures("in_test_transaction")
def test_fuzz_intake_api(case, api):
    call_and_check(case, api.auth_headers)
