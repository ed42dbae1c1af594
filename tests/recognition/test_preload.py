"""Pre-load: a registration event makes a worker fetch the external results, so the prompt at
ordering time is answered from the cache without asking the platform again."""

import json

import pytest
from django.urls import reverse

from mutual_recognition.models import Encounter
from tests.delivery_fixtures import wait_until

from .conftest import ITEMS, TOKEN, prompt_body

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_registration_preloads_and_the_prompt_makes_no_platform_query(
    client, recognition, patient, processes
):
    processes.worker()
    body = prompt_body(patient, [])
    del body["items"]
    r = client.post(
        reverse("recognition:api-events"),
        json.dumps({"eventType": "registration", **body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert r.status_code == 202 and r.json()["preload"] == "scheduled"
    enc = wait_until(
        lambda: Encounter.objects.filter(visit_id=patient["visitId"], preloaded_at__isnull=False).first(),
        timeout=60,
        message="the pre-load task",
    )
    assert enc.preload_error == ""
    queries = recognition.stats()["queries"]
    assert queries["EXAM_RECOGNIZABLE_ITEMS"] == 1 and queries["LAB_RECOGNIZABLE_ITEMS"] == 1

    answer = client.post(
        reverse("recognition:api-prompt"),
        json.dumps(prompt_body(patient, ITEMS)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    ).json()
    assert answer["source"] == "cache" and answer["anyRecognizable"]
    assert {i["orderId"] for i in answer["items"] if i["recognizable"]} == {
        "YZ001",
        "YZ002",
        "YZ003",
        "YZ004",
    }
    assert recognition.stats()["queries"] == queries  # the simulator saw no new query


def test_a_registration_made_while_the_broker_is_down_is_stored_and_answered(
    client, recognition, patient, dead_broker, caplog
):
    """The pre-load is a convenience: without a broker the registration is kept, the request
    answers, and the prompt fetches at ordering time. The log names the encounter, not the patient."""
    body = prompt_body(patient, [])
    del body["items"]
    r = client.post(
        reverse("recognition:api-events"),
        json.dumps({"eventType": "registration", **body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert r.status_code == 202
    enc = Encounter.objects.get(visit_id=patient["visitId"])
    assert enc.preloaded_at is None
    assert f"pre-load of encounter {enc.pk}" in caplog.text
    assert patient["idNo"] not in caplog.text and patient["name"] not in caplog.text
