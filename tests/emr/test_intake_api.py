"""The intake API's contract: auth, idempotency, versions, field errors, bulk, status."""

import json

import pytest
from django.utils import timezone

from hospital_interop.integrations import services as integrations
from hospital_interop.uploads.models import OutboxRecord, State
from tests.emr.conftest import Api, invalid_intake

pytestmark = pytest.mark.django_db

ORG = "12110000400000000X"


def test_without_token_the_answer_is_401_in_the_error_shape(client, rts):
    response = client.post("/api/emr/v1/records/op-registration", "{}", content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    body = response.json()
    assert (
        body["code"] == "unauthorized" and "Authorization: Token" in body["message"] and body["errors"] == []
    )


def test_unknown_rotated_and_disabled_tokens_are_refused(api, his_system, rts):
    record = rts.get("op-registration").example(1)
    api.token = "hit_not-a-real-token"
    assert api.post("op-registration", record).status_code == 401
    api.token = his_system.token
    assert api.post("op-registration", record).status_code == 201
    new_token = integrations.issue_token(his_system)
    assert api.post("op-registration", record).status_code == 401  # the old token died with the rotation
    api.token = new_token
    assert api.post("op-registration", record).status_code == 200
    his_system.active = False
    his_system.save()
    assert api.post("op-registration", record).status_code == 401


def test_a_system_may_only_submit_the_interfaces_it_is_allowed(client, rts):
    lis = integrations.create_system("LIS", "检验系统", interfaces=["PUB_LAB_REPORT_DETAIL"])
    api = Api(client, integrations.issue_token(lis))
    denied = api.post("op-registration", rts.get("op-registration").example(1))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert api.post("pub-lab-report-detail", rts.get("pub-lab-report-detail").example(1)).status_code == 201
    assert OutboxRecord.objects.get().source == "LIS"
    lis.refresh_from_db()
    assert lis.last_used_at is not None


def test_a_valid_record_is_stored_for_delivery_with_its_status(api, rts):
    record = rts.get("op-visit").example(7)
    response = api.post("op-visit", record)
    assert response.status_code == 201, response.json()
    body = response.json()
    row = OutboxRecord.objects.get()
    assert (row.interface, row.source, row.version, row.state) == ("OP_VISIT", "HIS", 1, State.PENDING)
    assert row.payload == record
    assert body["created"] is True
    assert body["status"]["businessKey"] == f"{ORG}|{record['visitId']}"
    assert body["status"]["stateName"] == "待发送"
    # the visit names its registration: it waits for it (ordering rules)
    assert body["status"]["waitingFor"] == [f"OP_REGISTRATION#{ORG}|{record['registrationId']}"]
    assert api.client.get(body["statusUrl"], **api.auth).json()["version"] == 1


def test_reposting_the_same_record_is_idempotent_and_a_change_is_a_new_version(api, rts):
    record = rts.get("op-registration").example(2)
    first = api.post("op-registration", record)
    again = api.post("op-registration", json.loads(json.dumps(record)))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False and again.json()["status"]["version"] == 1
    assert OutboxRecord.objects.count() == 1

    changed = {**record, "registrationFee": record["registrationFee"] + 10}
    third = api.post("op-registration", changed)
    assert third.status_code == 201 and third.json()["status"]["version"] == 2
    v1, v2 = OutboxRecord.objects.order_by("version")
    assert (v1.state, v2.state) == (State.SUPERSEDED, State.PENDING)
    status = api.status("op-registration", v2.business_key).json()
    assert [v["version"] for v in status["versions"]] == [2, 1]
    assert status["versions"][1]["stateName"] == "已被新版本取代"


def test_an_invalid_record_gets_field_errors_and_writes_nothing(api, rts):
    rt = rts.get("op-record")
    payload, expected = invalid_intake(rt, 3)
    response = api.post("op-record", payload)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "未保存" in body["message"]
    assert {(e["field"], e["rule"]) for e in body["errors"]} >= set(expected)
    assert all(e["message"] for e in body["errors"])
    assert OutboxRecord.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("{not json", "json"),
        ('{"a": NaN}', "number"),
        ("[1, 2]", "type"),
        ("  ", "json"),
    ],
)
def test_unreadable_bodies_are_400_with_the_reason(api, body, rule):
    response = api.post("op-registration", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["rule"] == rule
    assert OutboxRecord.objects.count() == 0


def test_wrong_content_type_is_415(api, rts):
    response = api.post(
        "op-registration", json.dumps(rts.get("op-registration").example(1)), content_type="text/plain"
    )
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


def test_org_and_code_names_may_be_left_out(api, rts, settings):
    record = rts.get("op-prescription").example(4)
    del record["orgCode"], record["orgName"], record["patient"]["sexName"], record["patient"]["idTypeName"]
    for drug in record["drugs"]:
        del drug["frequencyName"], drug["routeName"]
    assert api.post("op-prescription", record).status_code == 201
    payload = OutboxRecord.objects.get().payload
    assert (
        payload["orgCode"] == settings.PLATFORM["ORG_CODE"] and payload["orgName"] == settings.HOSPITAL_NAME
    )
    assert payload["patient"]["sexName"] in ("男", "女") and payload["patient"]["idTypeName"] == "居民身份证"
    assert all(d["frequencyName"] and d["routeName"] for d in payload["drugs"])
    # and the short key finds it
    assert api.status("op-prescription", record["prescriptionId"]).status_code == 200


@pytest.mark.parametrize(
    ("slug", "path", "value", "rule"),
    [
        ("op-registration", "patient.sexCode", "3", "valueSet"),
        ("op-registration", "patient.idTypeCode", "98", "valueSet"),
        ("op-registration", "patient.idNo", "110105194912310020", "checksum"),
        ("op-registration", "deptCode", "内科", "valueSet"),
        ("op-record", "diagnoses[0].diagnosisCode", "XYZ", "valueSet"),
        ("op-procedure", "procedureCode", "1234567", "valueSet"),
        ("op-procedure", "procedureName", "不是这个名称", "nameMatch"),
        ("ip-admission", "admissionRouteCode", "7", "valueSet"),
    ],
)
def test_value_sets_are_checked(api, rts, slug, path, value, rule):
    record = rts.get(slug).example(5)
    holder, *parts = record, *path.replace("[0]", ".0").split(".")
    for part in parts[:-1]:
        holder = holder[int(part)] if part.isdigit() else holder[part]
    holder[parts[-1]] = value
    response = api.post(slug, record)
    assert response.status_code == 400
    assert (path, rule) in {(e["field"], e["rule"]) for e in response.json()["errors"]}
    assert OutboxRecord.objects.count() == 0


def test_bulk_ndjson_stores_every_line_or_none(api, rts):
    rt = rts.get("op-order")
    records = [rt.example(s) for s in range(10, 15)]
    bad = dict(records[3], orderCategoryCode="~")
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in [*records[:3], bad, records[4]])
    lines = lines.replace("\n", "\n\n", 1) + "\n{broken\n"  # a blank line (skipped) shifts the line numbers
    refused = api.bulk("op-order", lines)
    assert refused.status_code == 400
    errors = refused.json()["errors"]
    assert {(e["line"], e["field"], e["rule"]) for e in errors} == {
        (5, "orderCategoryCode", "valueSet"),
        (7, "", "json"),
    }
    assert OutboxRecord.objects.count() == 0

    accepted = api.bulk("op-order", records)
    assert accepted.status_code == 200
    body = accepted.json()
    assert (body["received"], body["created"], body["unchanged"]) == (5, 5, 0)
    assert [r["line"] for r in body["results"]] == [1, 2, 3, 4, 5]
    assert OutboxRecord.objects.filter(source="HIS", interface="OP_ORDER").count() == 5

    records[0] = dict(records[0], orderNote="改为加急")
    again = api.bulk("op-order", records, content_type="application/json").json()
    assert (again["created"], again["unchanged"]) == (1, 4)
    assert OutboxRecord.objects.filter(interface="OP_ORDER").count() == 6


def test_each_record_of_a_bulk_is_validated_once_on_its_way_to_the_outbox(api, rts, monkeypatch):
    rt = rts.get("op-order")
    records = [rt.example(s) for s in range(20, 24)]
    validated = []
    real = type(rt.spec).validate
    monkeypatch.setattr(
        type(rt.spec), "validate", lambda spec, payload: validated.append(payload) or real(spec, payload)
    )

    assert api.bulk("op-order", records).json()["created"] == 4
    assert len(validated) == 4

    validated.clear()
    records[1] = dict(records[1], orderNote="改为加急")
    assert (api.bulk("op-order", records).json()["unchanged"], len(validated)) == (3, 4)


def test_an_unchanged_record_before_a_conflicting_one_does_not_shift_the_line_reported(api, rts):
    rt = rts.get("op-visit")
    a = rt.spec.example(5)
    assert api.post("op-visit", rt.to_intake(a)).status_code == 201
    r = api.bulk("op-visit", [rt.to_intake(a), rt.to_intake(rt.spec.example(6, visitId=a["visitId"]))])
    assert r.status_code == 409, r.content
    assert [(e["line"], e["field"], e["rule"]) for e in r.json()["errors"]] == [
        (2, "visitId", "patientMismatch")
    ]
    assert OutboxRecord.objects.count() == 1


def test_bulk_limits_and_empty_bodies(api, rts, settings):
    settings.EMR_INTAKE = {"MAX_BULK_RECORDS": 3}
    rt = rts.get("op-order")
    too_many = api.bulk("op-order", [rt.example(s) for s in range(4)])
    assert too_many.status_code == 413 and too_many.json()["code"] == "too_large"
    assert api.bulk("op-order", "\n\n").json()["errors"][0]["rule"] == "lines"
    assert api.bulk("op-order", {"not": "a list"}, content_type="application/json").status_code == 400
    settings.INTEGRATION_BODY_LIMITS = {"record": 100}
    assert api.post("op-order", rt.example(1)).status_code == 413
    assert OutboxRecord.objects.count() == 0


def test_same_key_twice_in_one_bulk_keeps_the_last_as_the_version_to_send(api, rts):
    rt = rts.get("op-settlement")
    first = rt.example(21)
    second = dict(first, settlementTypeCode="2", settlementTypeName=None)
    body = api.bulk("op-settlement", [first, second, second]).json()
    assert [(r["version"], r["created"]) for r in body["results"]] == [(1, True), (2, True), (2, False)]
    assert list(OutboxRecord.objects.order_by("version").values_list("state", flat=True)) == [
        State.SUPERSEDED,
        State.PENDING,
    ]


def test_status_of_an_unknown_key_is_404_and_of_a_done_record_shows_the_receipt(api, rts):
    assert api.status("ip-admission", "NOPE").status_code == 404
    record = rts.get("ip-admission").example(8)
    api.post("ip-admission", record)
    OutboxRecord.objects.update(
        state=State.DONE, accepted_at=timezone.now(), receipt="RC1", attempts=1, last_code="0"
    )
    status = api.status("ip-admission", f"{ORG}|{record['inpatientId']}").json()
    assert (status["state"], status["stateName"], status["receipt"], status["lastCode"]) == (
        "done",
        "已接收",
        "RC1",
        "0",
    )
    assert status["acceptedAt"] and status["waitingFor"] == []


def test_unknown_record_types_and_methods(api):
    unknown = api.post("op-nothing", {})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    wrong_method = api.client.get("/api/emr/v1/records/op-visit", **api.auth)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"


def test_record_type_list(api, rts):
    listing = api.client.get("/api/emr/v1/record-types", **api.auth).json()
    assert len(listing) == len(rts) == 29
    front_page = next(r for r in listing if r["recordType"] == "ip-front-page")
    assert front_page["interface"] == "IP_FRONT_PAGE" and front_page["parents"] == ["IP_DISCHARGE"]
    assert front_page["key"] == ["orgCode", "caseNo", "admissionTimes"] and front_page["allowed"] is True


def test_a_name_of_the_wrong_type_is_a_400_not_a_crash(api, rts):
    record = rts.get("op-registration").example(6)
    record["patient"]["sexName"] = {"not": "a name"}  # found by the schemathesis run
    response = api.post("op-registration", record)
    assert response.status_code == 400 and response.json()["errors"]
    assert OutboxRecord.objects.count() == 0


def test_a_bulk_post_without_any_body_is_400_not_500(api):
    response = api.client.post("/api/emr/v1/records/op-order/bulk", **api.auth)
    assert response.status_code in (400, 415) and response.json()["errors"]
