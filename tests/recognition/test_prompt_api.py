"""The prompt API the HIS calls on every order: answers per item, from the cache once loaded."""

import json

import pytest
from django.urls import reverse

from mutual_recognition.models import Encounter

from .conftest import ITEMS, TOKEN, prompt_body

pytestmark = pytest.mark.django_db


def call(client, body, token=TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(
        reverse("recognition:api-prompt"), json.dumps(body), content_type="application/json", **headers
    )


def test_prompt_requires_a_token(client, recognition, patient):
    assert call(client, prompt_body(patient, ITEMS), token=None).status_code == 401
    assert call(client, prompt_body(patient, ITEMS), token="wrong").status_code == 401


def test_prompt_rejects_bad_input_with_field_errors(client, recognition, patient):
    body = prompt_body(patient, [{"kind": "xray", "itemCode": "CT0012", "orderId": "Y1"}])
    r = call(client, body)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "items[0].kind"


def test_prompt_at_visit_time_fetches_then_answers_from_cache(client, recognition, patient):
    before = recognition.stats()["queries"]
    first = call(client, prompt_body(patient, ITEMS)).json()
    assert first["source"] == "platform" and first["anyRecognizable"]
    after_first = recognition.stats()["queries"]
    assert after_first.get("EXAM_RECOGNIZABLE_ITEMS", 0) == before.get("EXAM_RECOGNIZABLE_ITEMS", 0) + 1
    assert after_first.get("LAB_RECOGNIZABLE_ITEMS", 0) == before.get("LAB_RECOGNIZABLE_ITEMS", 0) + 1

    by_order = {i["orderId"]: i for i in first["items"]}
    ct = by_order["YZ001"]
    assert ct["recognizable"] and ct["standardCode"] == "JC0012" and ct["results"][0]["validUntil"]
    assert "胸部CT平扫" in ct["summary"]
    liver = by_order["YZ003"]
    assert liver["coverage"] == "full" and liver["recognizableLineCount"] == 4
    assert {r["standardCode"] for r in liver["results"]} == {"JY0021", "JY0022", "JY0023", "JY0024"}
    cbc = by_order["YZ004"]
    assert cbc["coverage"] == "partial"  # NEUT% is not a recognition item
    assert by_order["YZ005"]["recognizable"] is False  # lumbar MR: no external result
    assert first["promptUrl"].startswith("http://testserver/recognition/embed/prompt?")

    second = call(client, prompt_body(patient, ITEMS)).json()
    assert second["source"] == "cache"
    assert recognition.stats()["queries"] == after_first  # no new platform query
    assert second["items"] == first["items"]
    assert Encounter.objects.get(visit_id=patient["visitId"]).name == patient["name"]


def test_unmapped_and_unknown_items_are_answered_not_failed(client, recognition, patient):
    body = prompt_body(
        patient,
        [
            {"kind": "exam", "itemCode": "PT0001", "orderId": "Y1"},
            {"kind": "lab", "itemCode": "NOSUCH", "orderId": "Y2"},
        ],
        dept="1501",
    )
    answer = call(client, body).json()
    assert [i["mapped"] for i in answer["items"]] == [False, False]
    assert answer["anyRecognizable"] is False and "promptUrl" not in answer
    assert answer["warnings"][0]["field"] == "dept"


def test_platform_down_degrades_to_no_prompt(client, recognition, patient):
    recognition.set_faults(http_5xx=1.0, services=["EXAM_RECOGNIZABLE_ITEMS", "LAB_RECOGNIZABLE_ITEMS"])
    answer = call(client, prompt_body(patient, ITEMS)).json()
    assert answer["ok"] and answer["anyRecognizable"] is False
    assert {e["kind"] for e in answer["platformErrors"]} == {"exam", "lab"}


def test_an_item_the_platform_could_not_be_asked_about_says_so_and_why(client, recognition, patient):
    """The doctor is told the platform could not be asked, never a plain "no external result"."""
    recognition.set_faults(http_5xx=1.0, services=["LAB_RECOGNIZABLE_ITEMS"])
    answer = call(client, prompt_body(patient, ITEMS)).json()
    by_kind = {i["kind"]: i for i in answer["items"] if i["mapped"]}
    assert by_kind["lab"]["summary"].startswith("未能查询市平台检验结果（")
    assert "请稍后重试" in by_kind["lab"]["summary"] and by_kind["lab"]["platformError"]["message"]
    assert "platformError" not in by_kind["exam"]  # the exam query answered: its own summary stands
