"""Hostile input at every edge that takes JSON: a 4xx JSON error naming the field, never a 500 and
never a silent acceptance. The machine APIs answer one error body. Runs on PostgreSQL in the
suite and once more on SQLite (Makefile: ``test-sqlite``)."""

from __future__ import annotations

import json

import pytest

from hospital_interop.integrations import services as integrations
from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition.models import Encounter
from tests.lab.conftest import lis_report
from tests.recognition.conftest import recognition  # noqa: F401  (demo dictionaries, platform simulator)

pytestmark = pytest.mark.django_db

VALID_ID = "11010519491231002X"
EVENT = {
    "patient": {"name": "张三", "idTypeCode": "01", "idNo": VALID_ID},
    "visit": {"visitId": "V-HOSTILE-1", "patientTypeCode": "1"},
}
PROMPT = {**EVENT, "items": [{"kind": "lab", "itemCode": "XCG", "orderId": "YZ1"}]}


def _registration() -> dict:
    from emr_sharing.mapping import record_types

    rt = record_types().get("op-registration")
    return rt.to_intake(rt.spec.example(1))


# (name, path, body maker): every machine API that takes a JSON object
MACHINE = [
    ("emr", "/api/emr/v1/records/op-registration", _registration),
    ("events", "/recognition/api/events", lambda: json.loads(json.dumps(EVENT))),
    ("prompt", "/recognition/api/prompt", lambda: json.loads(json.dumps(PROMPT))),
    ("lab", "/api/lab/v1/reports", lambda: lis_report(41)),
    ("exam", "/api/exam/v1/reports", lambda: {"reportId": "JC0000000041", "patient": {"name": "张三"}}),
]
ALL_JSON = [
    *((name, path) for name, path, _ in MACHINE),
    ("embed-save", "/recognition/embed/save"),
    ("emr-bulk", "/api/emr/v1/records/op-registration/bulk"),
]


@pytest.fixture
def token(db):
    system = integrations.create_system("ALL", "全部接口", allow_all=True)
    return {"HTTP_AUTHORIZATION": f"Token {integrations.issue_token(system)}"}


def post(client, path, raw: bytes | str, token, content_type="application/json"):
    return client.post(path, raw, content_type=content_type, **token)


def assert_refused(response, rule: str | None = None, field: str | None = None, status=400):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["errors"], body
    error = body["errors"][0]
    assert error["message"]
    if rule is not None:
        assert error["rule"] == rule, body
    if field is not None:
        assert error["field"] == field, body


def with_name(body: dict, name: str) -> bytes:
    """The body with its patient's name (or the first name-like field) replaced, serialised by hand
    so that escapes such as \\ud800 reach the server as sent."""
    text = json.dumps(body, ensure_ascii=True)
    marker = "\\u5f20\\u4e09" if "\\u5f20\\u4e09" in text else None  # 张三
    if marker is None:
        original = json.dumps(body.get("patient", {}).get("name") or "", ensure_ascii=True)[1:-1]
        marker = original
    return text.replace(marker, name, 1).encode()


@pytest.mark.parametrize("name, path, make", MACHINE, ids=[m[0] for m in MACHINE])
def test_a_nul_in_a_name_is_refused_with_its_field(client, token, name, path, make):
    assert_refused(post(client, path, with_name(make(), "\\u0000\\u5f20"), token), rule="nul")
    assert not OutboxRecord.objects.exists() and not Encounter.objects.exists()


@pytest.mark.parametrize("name, path, make", MACHINE, ids=[m[0] for m in MACHINE])
def test_a_lone_surrogate_in_a_name_is_refused(client, token, name, path, make):
    assert_refused(post(client, path, with_name(make(), "\\ud800"), token), rule="surrogate")


@pytest.mark.parametrize("name, path", ALL_JSON, ids=[a[0] for a in ALL_JSON])
def test_100000_deep_nesting_is_refused_everywhere_even_unauthenticated(client, token, name, path):
    response = post(client, path, b"[" * 100_000 + b"]" * 100_000, token)
    assert response.status_code == 400, response.content[:200]
    assert "depth" in response.content.decode() or response.json()["errors"]


@pytest.mark.parametrize("name, path, make", MACHINE, ids=[m[0] for m in MACHINE])
def test_duplicate_keys_are_refused_not_last_wins(client, token, name, path, make):
    text = json.dumps(make(), ensure_ascii=False)
    raw = text.replace("{", '{"dup": 1, "dup": 2, ', 1).encode()
    assert_refused(post(client, path, raw, token), rule="duplicate", field="dup")


def test_a_visit_that_is_not_an_object_on_the_prompt_api_is_400(client, token):
    assert_refused(
        post(client, "/recognition/api/prompt", json.dumps({**PROMPT, "visit": "V1"}), token),
        field="visit",
        rule="type",
    )


def test_a_list_on_embed_save_is_400(client):
    response = client.post("/recognition/embed/save", "[1]", content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"][0]["rule"] == "type"


def test_an_event_with_a_bad_id_number_and_an_impossible_birth_date_is_refused(client, token):
    body = json.loads(json.dumps(EVENT))
    body["patient"].update(idNo="12345", birthDate="19991399")
    response = post(client, "/recognition/api/events", json.dumps(body), token)
    assert_refused(response)
    fields = {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert ("patient.idNo", "format") in fields and ("patient.birthDate", "format") in fields
    assert not Encounter.objects.exists()


def test_a_lab_report_with_a_wrong_check_digit_is_refused(client, token):
    body = lis_report(42)
    body["patient"]["idNo"] = body["patient"]["idNo"][:17] + (
        "1" if body["patient"]["idNo"][17] != "1" else "2"
    )
    response = post(client, "/api/lab/v1/reports", json.dumps(body, ensure_ascii=False), token)
    assert_refused(response, rule="checksum", field="patient.idNo")


@pytest.mark.parametrize("name, path, make", MACHINE, ids=[m[0] for m in MACHINE])
def test_every_machine_api_answers_the_same_error_body(client, token, name, path, make):
    body = post(client, path, b'{"patient": {"name": "\\u0000"}}', token).json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == "invalid"
    assert set(body["errors"][0]) >= {"field", "rule", "message"}


@pytest.mark.parametrize(
    "path",
    [
        "/recognition/api/prompt",
        "/recognition/api/events",
        "/api/lab/v1/reports",
        "/api/exam/v1/reports",
        "/api/emr/v1/records/op-registration",
    ],
)
def test_a_session_cookie_does_not_open_a_machine_api(client, make_user, path):
    user = make_user("dr-cookie", role="clinician", is_staff=True, is_superuser=True)
    client.force_login(user)
    response = client.post(path, json.dumps(PROMPT), content_type="application/json")
    assert response.status_code == 401, response.content[:200]
    assert response.json()["code"] == "unauthorized"
    assert not Encounter.objects.exists()


@pytest.mark.usefixtures("recognition")
@pytest.mark.parametrize("field, value", [("visit.visitId", 20261204), ("patient.idNo", 110105197003071002)])
def test_a_prompt_whose_visit_id_or_id_number_is_a_json_number_is_answered_not_a_500(
    client, token, field, value
):
    """Found by reading while fuzzing: the prompt's quick path took the raw values when they were
    not strings, after the slow path had accepted a number (as the events API does)."""
    body = json.loads(json.dumps(PROMPT))
    part, key = field.split(".")
    body[part][key] = value
    response = post(client, "/recognition/api/prompt", json.dumps(body), token)
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert_refused(response, field=field)
    else:
        assert response.json()["visitId"] == str(body["visit"]["visitId"])


@pytest.mark.parametrize(
    "query, field",
    [({"visitId": "V1", "kind": "xray"}, "kind"), ({"visitId": "V1", "status": "recognised"}, "status")],
)
def test_results_with_a_kind_or_status_outside_its_value_set_is_refused_not_ignored(
    client, token, query, field
):
    """Found writing the recognition API's schema: an unknown kind or status was ignored, so a typo
    returned every result instead of the ones asked for."""
    response = client.get("/recognition/api/results", query, **token)
    assert_refused(response, rule="valueSet", field=field)


# every machine API operation with a path parameter: (method, path with %00 in the parameter, parameter)
NUL_IN_PATH = [
    ("get", "/api/emr/v1/records/op-registration/MZ%00001", "businessKey"),
    ("get", "/api/exam/v1/reports/JC%00001", "report_id"),
    ("post", "/api/exam/v1/reports/JC%00001/withdraw", "report_id"),
    ("get", "/api/exam/v1/studies/1.2.%00", "study_uid"),
    ("get", "/api/lab/v1/reports/JY%00001", "report_id"),
    ("post", "/api/lab/v1/reports/JY%00001/archive", "report_id"),
]


@pytest.mark.parametrize(
    "method, path, parameter", NUL_IN_PATH, ids=[p[1].split("%")[0] for p in NUL_IN_PATH]
)
def test_a_nul_in_a_path_parameter_is_refused_with_its_name(client, token, method, path, parameter):
    """Found probing alongside the fuzzing (schemathesis never puts control characters in a path):
    PostgreSQL cannot compare a string with a NUL, so the lookup raised (500)."""
    if method == "post":
        response = client.post(path, "{}", content_type="application/json", **token)
    else:
        response = client.get(path, **token)
    assert_refused(response, rule="nul", field=parameter)


@pytest.mark.parametrize(
    "version", ["¹", "٣", "1²", "9" * 5000], ids=["sup1", "arabic3", "1sup2", "5000digits"]
)
def test_a_version_of_unicode_digits_is_a_precise_400_not_a_500(client, token, version):
    """str.isdigit() accepts superscripts and other scripts' digits; int() refuses '¹', and any
    number past 4,300 digits (a ValueError: was a 500)."""
    for method, path in (("get", ""), ("post", "/signing-link")):
        answer = getattr(client, method)(f"/api/lab/v1/reviews/JY1/{version}{path}", **token)
        assert answer.status_code == 400, (method, version, answer.content)
        assert answer.json()["errors"][0]["field"] == "version"
