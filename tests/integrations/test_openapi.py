"""The OpenAPI documents of the four machine APIs: the one error body documented once and used by
every error answer of every operation; the recognition API's own document; and real answers the
fuzzing seldom produces (recognisable results, decisions, recognised results; reports saved,
held, withdrawn; studies; lab approvals and archives) as the documents say."""

from __future__ import annotations

import json

import pytest

from hospital_interop.integrations import services as integrations
from mutual_recognition import services
from mutual_recognition.links import LinkContext, OrderedItem
from tests.exam.conftest import report_body
from tests.fuzzing import SCHEMA_URLS, call_and_check, fuzz_schema, generated_schema, in_test_transaction  # noqa: F401
from tests.lab.conftest import folders, lis_report  # noqa: F401
from tests.recognition.conftest import ITEMS, patient, prompt_body, recognition  # noqa: F401

pytestmark = pytest.mark.django_db

ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}


@pytest.fixture
def token(db):
    system = integrations.create_system("DOCS", "接口文档", allow_all=True)
    return {"HTTP_AUTHORIZATION": f"Token {integrations.issue_token(system)}"}


def served(client, api: str, token) -> dict:
    response = client.get(SCHEMA_URLS[api], {"format": "json"}, **token)
    assert response.status_code == 200, response.content[:200]
    return json.loads(response.content)


@pytest.mark.parametrize("api", sorted(SCHEMA_URLS))
def test_each_api_serves_the_document_the_fuzzing_uses(client, token, api):
    assert served(client, api, token) == generated_schema(api)


def test_every_error_answer_of_every_operation_is_the_one_documented_error_body(client, token):
    shared = []
    for api in sorted(SCHEMA_URLS):
        document = served(client, api, token)
        schemas = document["components"]["schemas"]
        shared.append((schemas["ApiError"], schemas["ApiFieldError"]))
        # no API keeps an error body of its own
        assert not [
            name
            for name, s in schemas.items()
            if name != "ApiError" and set(s.get("properties", {})) >= {"code", "message", "errors"}
        ]
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                where = f"{api} {method.upper()} {path}"
                assert "401" in responses, where
                if path != "/api/emr/v1/record-types":  # any staff login or token may read the list
                    assert "403" in responses, where
                if method == "post":
                    assert {"400", "413", "415"} <= set(responses), where
                if "{" in path:
                    assert "404" in responses, where
                for status, response in responses.items():
                    if status.startswith("4"):
                        assert response["content"] == ERROR_CONTENT and response["description"], where
    assert all(pair == shared[0] for pair in shared)
    error, field_error = shared[0]
    assert error["required"] == ["code", "message", "errors"] and {"invalid", "too_large"} <= set(
        error["properties"]["code"]["enum"]
    )
    assert field_error["required"] == ["field", "rule", "message"]


def test_the_intakes_say_which_answers_mean_another_patients_visit(client, token):
    conflicts = {
        api: [
            f"{m} {p}"
            for p, ops in served(client, api, token)["paths"].items()
            for m, op in ops.items()
            if "409" in op["responses"]
        ]
        for api in SCHEMA_URLS
    }
    assert "post /api/exam/v1/reports" in conflicts["exam"] and "post /api/lab/v1/reports" in conflicts["lab"]
    assert {"post /recognition/api/prompt", "post /recognition/api/events"} <= set(conflicts["recognition"])
    assert "post /api/emr/v1/records/op-registration" in conflicts["emr"]


def test_the_recognition_api_is_documented_behind_a_login_or_token(client, admin_client, token):
    anonymous = client.get("/recognition/api/schema")  # a browser without a session: the login page
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert client.get("/recognition/api/schema", HTTP_AUTHORIZATION="Token wrong").status_code in (401, 403)
    document = served(admin_client, "recognition", {})
    assert served(client, "recognition", token) == document
    assert {p: set(ops) for p, ops in document["paths"].items()} == {
        "/recognition/api/prompt": {"post"},
        "/recognition/api/events": {"post"},
        "/recognition/api/decisions": {"get"},
        "/recognition/api/results": {"get", "post"},
    }
    prompt = document["paths"]["/recognition/api/prompt"]["post"]
    assert prompt["security"] == [{"IntegrationToken": []}]
    assert prompt["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RecognitionPromptRequest"
    )
    assert prompt["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PromptAnswer"
    )
    results = document["paths"]["/recognition/api/results"]
    assert {p["name"] for p in results["get"]["parameters"]} == {
        "visitId",
        "kind",
        "status",
    }  # no idNo in a URL
    assert results["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RecognitionResultsQuery"
    )
    components = document["components"]["schemas"]
    assert components["RecognitionPatient"]["properties"]["idNo"]["maxLength"] == 32
    assert components["RecognitionOrderedItem"]["properties"]["kind"]["enum"] == ["exam", "lab"]
    docs = admin_client.get("/recognition/api/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content


def caller(api: str, token):
    """call(path, method, **case) → the answer, checked against the API's document (status,
    content type, headers, body) as the fuzzing checks it."""
    document, headers = fuzz_schema(api, 1), {"Authorization": token["HTTP_AUTHORIZATION"]}

    def call(path: str, method: str, expect: int, **kwargs):
        if "body" in kwargs:
            kwargs.setdefault("media_type", "application/json")
        response = call_and_check(document[path][method].Case(**kwargs), headers)
        assert response.status_code == expect, response.content[:300]
        return json.loads(response.content) if response.content else None

    return call


@pytest.mark.usefixtures("in_test_transaction")
def test_real_recognition_answers_are_as_documented(recognition, patient, token):  # noqa: F811
    """A prompt with recognisable results (exam and lab), an event, the doctor's decisions read
    back, and the recognised results."""
    call = caller("recognition", token)

    answer = call("/recognition/api/prompt", "POST", 200, body=prompt_body(patient, ITEMS))
    assert answer["anyRecognizable"] and answer["promptUrl"]
    by_order = {i["orderId"]: i for i in answer["items"]}
    assert by_order["YZ001"]["results"] and by_order["YZ003"]["results"]  # an exam and a lab panel

    event = {
        "eventType": "admission",
        "patient": prompt_body(patient, [])["patient"],
        "visit": {"visitId": patient["visitId"], "patientTypeCode": "3", "inpatientNo": "ZY0001"},
    }
    call("/recognition/api/events", "POST", 202, body=event)

    items = tuple(OrderedItem(i["kind"], i["itemCode"], "", i["orderId"]) for i in ITEMS)
    ctx = LinkContext(patient["patientId"], patient["visitId"], "D1001", "1001", items, 0)
    liver = by_order["YZ003"]["results"]
    services.save_decisions(
        ctx,
        [
            {
                "orderId": "YZ001",
                "standardCode": "JC0012",
                "reportId": by_order["YZ001"]["results"][0]["reportId"],
                "decision": "1",
            },
            {
                "orderId": "YZ003",
                "standardCode": liver[0]["standardCode"],
                "reportId": liver[0]["reportId"],
                "decision": "1",
            },
            {
                "orderId": "YZ003",
                "standardCode": liver[1]["standardCode"],
                "reportId": liver[1]["reportId"],
                "decision": "2",
                "reasonCode": "9",
                "note": "术前复查",
            },
        ],
    )
    decisions = call("/recognition/api/decisions", "GET", 200, query={"visitId": patient["visitId"]})
    assert {o["action"] for o in decisions["orders"]} >= {"cancel", "reduce"}
    rows = call("/recognition/api/results", "POST", 200, body={"idNo": patient["idNo"], "status": "all"})[
        "results"
    ]
    assert {(r["kind"], r["recognitionStatus"]) for r in rows} == {
        ("exam", "recognized"),
        ("lab", "recognized"),
        ("lab", "refused"),
    }


@pytest.mark.usefixtures("in_test_transaction", "recognition")
def test_real_exam_answers_are_as_documented(token):
    """A report saved, saved again unchanged, held for an unmapped code, read, withdrawn; a study
    event and its progress."""
    call = caller("exam", token)
    body = report_body(7101, body_part="B03", studyInstanceUid="1.2.156.7101")
    saved = call("/api/exam/v1/reports", "POST", 201, body=body)
    assert saved["state"] == "active" and saved["study"]["studyInstanceUid"] == "1.2.156.7101"
    call("/api/exam/v1/reports", "POST", 200, body=body)
    held = call("/api/exam/v1/reports", "POST", 202, body=report_body(7102, exec_dept="1501"))
    assert held["problems"][0]["rule"] == "mapping.unmapped"
    report = {"report_id": body["reportId"]}
    call("/api/exam/v1/reports/{report_id}", "GET", 200, path_parameters=report)
    withdrawn = call(
        "/api/exam/v1/reports/{report_id}/withdraw",
        "POST",
        200,
        path_parameters=report,
        body={"voidReason": "检查部位错误", "voidOperatorId": "D1001", "voidOperatorName": "王建国"},
    )
    assert withdrawn["state"] == "withdrawn"
    call(
        "/api/exam/v1/studies", "POST", 202, body={"studyInstanceUid": "1.2.156.7103", "accessionNo": "A7103"}
    )
    call("/api/exam/v1/studies/{study_uid}", "GET", 200, path_parameters={"study_uid": "1.2.156.7103"})


@pytest.mark.usefixtures("in_test_transaction", "recognition", "folders")
def test_real_lab_answers_are_as_documented(token):
    """A report approved, approved again unchanged, archived (PDF and index written), archived
    again, and read."""
    call = caller("lab", token)
    body = lis_report(7201)
    assert call("/api/lab/v1/reports", "POST", 201, body=body)["changed"]
    assert not call("/api/lab/v1/reports", "POST", 200, body=body)["changed"]
    report = {"report_id": body["reportId"]}
    assert call("/api/lab/v1/reports/{report_id}/archive", "POST", 202, path_parameters=report, body={})[
        "written"
    ]
    call("/api/lab/v1/reports/{report_id}/archive", "POST", 200, path_parameters=report, body={})
    call("/api/lab/v1/reports/{report_id}", "GET", 200, path_parameters=report)
