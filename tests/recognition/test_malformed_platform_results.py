"""A recognition query answered by a correctly signed result that does not match the interface's
response spec (items that are not objects, fields of another type): the prompt degrades with the
reason, it never fails the HIS. Found 2026-12-05: ``normalise_exam`` called ``.get`` on each item
outside ``fetch``'s guard, so ``fetch`` ("never raises") raised and the prompt API answered 500.
The answers are signed with the platform's test key and served by the answer proxy on loopback."""

from __future__ import annotations

import pytest

from hospital_interop.municipal import envelope
from hospital_interop.municipal.client import ANSWER_OFF_SPEC, Outcome, config_from_settings
from hospital_interop.municipal.specs import load_catalogue
from mutual_recognition import external
from mutual_recognition.models import Encounter
from mutual_recognition.payloads import QUERY_INTERFACE
from simulators.platform.app import load_credentials

from ..platform_fixtures import APP_ID, ORG_CODE

pytestmark = pytest.mark.django_db


def _serve(sim, proxy, client, kind: str, data) -> None:
    spec = load_catalogue().interface(QUERY_INTERFACE[kind])
    platform = load_credentials(sim.key_dir, APP_ID, ORG_CODE)
    answer = envelope.seal_response(
        "0", "成功", data, creds=platform, profile=spec.profile, timestamp=client.platform_now()
    )
    proxy.answer_with(spec.path, answer)


@pytest.mark.parametrize(
    "exam_items",
    [[1, "x"], [{"recognitionItemCode": ["CT01"], "examDateTime": 20260101}], {"not": "a list"}],
    ids=["not-objects", "wrong-types", "not-a-list"],
)
def test_a_signed_result_off_its_spec_is_a_reason_on_the_prompt_not_a_500(
    sim, answer_proxy, platform_settings, settings, exam_items
):
    settings.PLATFORM = {**settings.PLATFORM, "BASE_URL": answer_proxy.url}
    config_from_settings.cache_clear()
    client = external.platform_client()
    client.refresh_time()
    _serve(sim, answer_proxy, client, "exam", {"items": exam_items})
    enc = Encounter.objects.create(visit_id="V-OFFSPEC-1", name="王小明", id_no="11010519700307121X")

    bundle = external.fetch(enc, {})

    assert bundle["exam"] == {}
    (error,) = [e for e in bundle["errors"] if e["kind"] == "exam"]
    assert error["code"] == "0" and error["message"].startswith(ANSWER_OFF_SPEC)


def test_the_client_does_not_believe_a_query_result_off_its_spec(sim, answer_proxy):
    client = sim.client(base_url=answer_proxy.url)
    client.refresh_time()
    _serve(sim, answer_proxy, client, "lab", {"reports": [{"items": "HGB"}]})
    code = QUERY_INTERFACE["lab"]
    result = client.call(code, load_catalogue().interface(code).example(1))
    assert (result.outcome, result.code, result.data) == (Outcome.ATTENTION, "0", None)
    assert result.message.startswith(ANSWER_OFF_SPEC) and "HGB" not in result.message
