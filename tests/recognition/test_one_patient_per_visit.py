"""A visit belongs to the patient it was first registered with: an event or prompt naming it with
another patient is refused (409) and changes nothing; identifiers are never cut to fit."""

import json

import pytest
from django.urls import reverse

from hospital_interop.patients.models import BindingConflict
from mutual_recognition.models import Encounter

from .conftest import ITEMS, TOKEN, prompt_body, resident_id

pytestmark = pytest.mark.django_db


def post(client, name, body):
    return client.post(
        reverse(f"recognition:{name}"),
        json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )


@pytest.fixture
def other(patient):
    """Patient B: another person, same visit id as ``patient`` (A)."""
    return {**patient, "idNo": resident_id(424242), "name": "李娜", "patientId": "P999999"}


def test_an_event_naming_a_visit_of_another_patient_is_refused_and_changes_nothing(
    client, recognition, patient, other
):
    assert post(client, "api-events", prompt_body(patient, ITEMS)).status_code == 202
    before = Encounter.objects.values().get(visit_id=patient["visitId"])

    r = post(client, "api-events", prompt_body(other, ITEMS))

    assert r.status_code == 409, r.content
    error = r.json()["errors"][0]
    assert error["field"] == "visit.visitId" and error["rule"] == "patientMismatch"
    assert patient["visitId"] in error["message"] and "另一位患者" in error["message"]
    assert other["idNo"] not in r.content.decode() and patient["idNo"] not in r.content.decode()
    assert Encounter.objects.values().get(visit_id=patient["visitId"]) == before  # A's visit untouched
    conflict = BindingConflict.objects.get()
    assert (conflict.kind, conflict.ref, conflict.what) == ("visit", patient["visitId"], "identity")


def test_the_prompt_api_refuses_a_visit_of_another_patient_and_shows_no_results(
    client, recognition, patient, other
):
    first = post(client, "api-prompt", prompt_body(patient, ITEMS))
    assert first.status_code == 200 and first.json()["anyRecognizable"]

    r = post(client, "api-prompt", prompt_body(other, ITEMS))

    assert r.status_code == 409
    assert "items" not in r.json() and "promptUrl" not in r.json()  # A's external results never shown for B
    enc = Encounter.objects.get(visit_id=patient["visitId"])
    assert (enc.name, enc.id_no, enc.patient_id) == (patient["name"], patient["idNo"], patient["patientId"])
    again = post(
        client, "api-prompt", prompt_body(patient, ITEMS)
    )  # A's own prompt still works, from the cache
    assert again.status_code == 200 and again.json()["source"] == "cache"


def test_the_same_patient_under_another_hospital_patient_id_is_refused_too(client, recognition, patient):
    assert post(client, "api-events", prompt_body(patient, ITEMS)).status_code == 202
    r = post(client, "api-events", prompt_body({**patient, "patientId": "P-OTHER"}, ITEMS))
    assert r.status_code == 409 and r.json()["errors"][0]["rule"] == "patientMismatch"
    assert Encounter.objects.get(visit_id=patient["visitId"]).patient_id == patient["patientId"]


def test_a_later_event_of_the_same_patient_updates_the_visit(client, recognition, patient):
    assert post(client, "api-events", prompt_body(patient, ITEMS)).status_code == 202
    body = prompt_body(patient, ITEMS, dept="1101")
    body["patient"]["patientId"] = ""  # not repeated: the stored hospital patient id stays
    assert post(client, "api-events", body).status_code == 202
    enc = Encounter.objects.get(visit_id=patient["visitId"])
    assert enc.dept_code == "1101" and enc.patient_id == patient["patientId"]


@pytest.mark.parametrize(
    "path, value, limit",
    [
        (("visit", "visitId"), "V" * 34, 32),
        (("patient", "patientId"), "P" * 33, 32),
        (("visit", "outpatientNo"), "M" * 19, 18),
        ((None, "doctor"), "D" * 21, 20),
    ],
)
def test_an_over_long_identifier_is_refused_with_its_field_and_limit_never_cut(
    client, recognition, patient, path, value, limit
):
    body = prompt_body(patient, ITEMS)
    if path[0]:
        body[path[0]][path[1]] = value
    else:
        body[path[1]] = value
    for name in ("api-events", "api-prompt"):
        r = post(client, name, body)
        assert r.status_code == 400, (name, r.content)
        error = r.json()["errors"][0]
        assert error["field"] == ".".join(p for p in path if p) and error["rule"] == "length"
        assert str(limit) in error["message"]
    assert not Encounter.objects.exists()


def test_two_visit_ids_that_differ_after_32_characters_stay_two_visits(client, recognition, patient):
    common = "V" + "0" * 31
    for visit_id in (common + "A1", common + "B2"):
        assert (
            post(client, "api-events", prompt_body({**patient, "visitId": visit_id}, ITEMS)).status_code
            == 400
        )
    assert not Encounter.objects.filter(visit_id__startswith=common).exists()
