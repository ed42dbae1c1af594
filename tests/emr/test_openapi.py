"""The OpenAPI document of the intake, generated from the specs, and a schemathesis fuzzing run
against the application: no 5xx, every answer's status, content type and body as documented.

The fuzzing runs in-process over WSGI (the Django application itself, in the test's database
transaction) over every single-record and status operation and the bulk operation of three
representative record types, with documented examples plus FUZZ_EXAMPLES positive and negative
cases per operation, so the run stays within a few minutes.
"""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = 4
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


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
    assert patient["properties"]["sexCode"]["enum"] == ["0", "1", "2", "9"]
    assert patient["properties"]["sexCode"]["description"].startswith("性别代码")
    assert "sexName" not in patient["required"] and "sexCode" in patient["required"]
    assert registration["properties"]["visitDate"]["pattern"] == "^[0-9]{8}$"
    assert registration["additionalProperties"] is False
    prescription = components["OpPrescriptionRecord"]["properties"]["drugs"]
    assert prescription["type"] == "array" and prescription["minItems"] == 1
    assert prescription["items"]["properties"]["doseAmount"]["type"] == "number"
    icd = components["OpRecordRecord"]["properties"]["diagnoses"]["items"]["properties"]["diagnosisCode"]
    assert "pattern" in icd and "ICD10" in icd["description"]  # an open subset: pattern, not enum
    assert schema["components"]["securitySchemes"]["IntegrationToken"]["name"] == "Authorization"
    # the example shown in Swagger is a valid record
    example = registration["example"]
    assert rts.get("op-registration").prepare(example)[1] == []


def test_schema_and_docs_need_a_login_or_token(client, admin_client):
    assert client.get("/api/emr/v1/schema").status_code in (401, 403)
    assert admin_client.get("/api/emr/v1/schema?format=json").status_code == 200
    docs = admin_client.get("/api/emr/v1/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


# --------------------------------------------------------------------------- fuzzing


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    if isinstance(value, list):
        return "\n".join(json.dumps(v, ensure_ascii=False) for v in value).encode("utf-8")
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def generated_schema() -> dict:
    """The document the schema view serves, generated without a request (no database needed)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings

    from emr_sharing.api_urls import SCHEMA_SETTINGS

    with patched_settings(SCHEMA_SETTINGS):
        return json.loads(
            json.dumps(SchemaGenerator(urlconf="emr_sharing.api_urls").get_schema(None, public=True))
        )


FUZZ_CONFIG = schemathesis.Config.from_dict(
    {
        # examples (each record type's documented example) and fuzzing (positive and negative data);
        # no coverage phase: it enumerates boundary values of every field (thousands of cases for the
        # 150-field front page), no stateful phase: the API has no links between operations.
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {
            "max-examples": FUZZ_EXAMPLES,
            "mode": "all",
            "deterministic": True,
            "database": "none",
        },
    }
)
# Bulk submission is one code path for all record types (each line validated like a single record):
# it is fuzzed for three representative types (flat, with arrays, with a file); every single-record
# and status operation is fuzzed.
BULK_FUZZED = ("op-registration", "op-prescription", "pub-pdf")
fuzz = schemathesis.openapi.from_dict(generated_schema(), config=FUZZ_CONFIG).exclude(
    path_regex=rf"^/api/emr/v1/records/(?!(?:{'|'.join(BULK_FUZZED)})/)[a-z-]+/bulk$"
)
fuzz.app = get_wsgi_application()


def test_fuzzed_schema_is_the_served_one(api):
    assert generated_schema() == fetch_schema(api)


@pytest.fixture
def in_test_transaction():
    """Requests through the WSGI app stay in this test's transaction (as Django's test client does)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@fuzz.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_intake_api(case, api, in_test_transaction):
    from schemathesis.checks import CHECKS as REGISTRY

    checks = [REGISTRY.get_one(name) for name in CHECKS]
    case.call_and_validate(headers=api.auth_headers, checks=checks)
