"""PlatformClient against the real platform simulator process: the protocol's code table, the
immediate second try on 1002/1003, and answers that cannot be verified."""

from __future__ import annotations

import itertools

import pytest

from hospital_interop.municipal import envelope, gm
from hospital_interop.municipal.client import CODE_TABLE, Outcome, PlatformClient
from hospital_interop.municipal.specs import load_catalogue

SPEC = load_catalogue().interface("LAB_REPORT_DETAIL")
CODE = SPEC.code


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(code, outcome) for code, (outcome, _) in CODE_TABLE.items()] + [("9999", Outcome.ATTENTION)],
)
def test_every_platform_code_maps_to_its_outcome(sim, code, outcome):
    sim.set_faults(force_code=code, services=[CODE])
    result = sim.client().call(CODE, SPEC.example(1))
    assert (result.code, result.outcome, result.http_status) == (code, outcome, 200)
    assert result.message
    if code == "3001":
        assert result.retry_after == 1.0  # no retryAfter in the answer: the protocol's default
    sent = sum(sim.stats()["requests"][CODE].values())
    assert sent == (2 if code in ("1002", "1003") else 1)  # only those two are tried again at once


def test_business_answers_carry_errors_receipt_and_retry_after(sim):
    client = sim.client()
    result = client.call(CODE, SPEC.example(1))
    assert result.outcome == Outcome.ACCEPTED and result.receipt.startswith("RC") and result.errors == []
    result = client.call(CODE, SPEC.invalid_example(1))
    assert result.outcome == Outcome.ATTENTION and {"field", "rule", "message"} <= set(result.errors[0])
    sim.set_faults(rate_limit=1, retry_after=4, services=[CODE])
    assert client.call(CODE, SPEC.example(2)).retry_after == 4.0


def test_1002_refreshes_the_platform_time_and_retries_at_once(sim):
    client = sim.client()
    assert client.call(CODE, SPEC.example(1)).code == "0"
    sim.set_faults(clock_skew_seconds=-900)
    result = client.call(CODE, SPEC.example(2))
    assert result.outcome == Outcome.ACCEPTED
    stats = sim.stats()["requests"]
    assert stats[CODE] == {"0": 2, "1002": 1}
    assert stats["SECURITY_TIMESTAMP"] == {"0": 2}  # first use, then the refresh after 1002


def test_1002_stays_retry_when_the_time_service_is_down(sim):
    sim.set_faults(clock_skew_seconds=3600, http_5xx=1, services=["SECURITY_TIMESTAMP"])
    result = sim.client().call(CODE, SPEC.example(1))
    # the platform's 1002 answer is an hour ahead of the only clock the client has (its own), so it
    # is not believed either (§3 window): a retry without a platform code
    assert (result.outcome, result.code, result.refused_answer) == (Outcome.RETRY, "", "1002")
    assert sim.stats()["requests"][CODE] == {"1002": 2}


def test_1003_is_retried_at_once_with_a_new_nonce(sim, monkeypatch):
    fixed = "0123456789abcdef0123456789abcdef"
    nonces = itertools.chain([fixed, fixed], iter(envelope.new_nonce, None))
    monkeypatch.setattr(envelope, "new_nonce", lambda: next(nonces))
    client = sim.client()
    client.refresh_time()
    assert client.call(CODE, SPEC.example(1)).code == "0"
    result = client.call(CODE, SPEC.example(2))  # same nonce as before: 1003, then a fresh one
    assert (result.outcome, result.code) == (Outcome.ACCEPTED, "0")
    assert sim.stats()["requests"][CODE] == {"0": 2, "1003": 1}


@pytest.mark.parametrize("fault", ["unsigned", "bad_signature"])
def test_an_unverifiable_answer_is_retry_never_accepted(sim, fault):
    sim.set_faults(**{fault: 1, "services": [CODE]})
    result = sim.client().call(CODE, SPEC.example(1))
    assert (result.outcome, result.code, result.data) == (Outcome.RETRY, "", None)
    assert "应答无效" in result.message
    assert sim.record(CODE, SPEC.key_of(SPEC.example(1)))["version"] == 1  # the platform did store it


def test_an_answer_signed_by_another_platform_key_is_retry(sim):
    impostor = gm.generate_sm2_key().public_key()
    result = sim.client(platform_public_key=impostor).call(CODE, SPEC.example(1))
    assert (result.outcome, result.code) == (Outcome.RETRY, "")


def test_configuration_errors_need_a_person(sim):
    result = sim.client(private_key=gm.generate_sm2_key()).call(CODE, SPEC.example(1))
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "1001")
    result = sim.client(sm4_key=bytes(16)).call(CODE, SPEC.example(1))
    assert (result.outcome, result.code) == (Outcome.ATTENTION, "1004")
    assert sim.stats()["requests"][CODE] == {"1001": 1, "1004": 1}


def test_http_errors_and_unreachable_platform_are_retry(sim):
    sim.set_faults(http_5xx=1, services=[CODE])
    result = sim.client().call(CODE, SPEC.example(1))
    assert (result.outcome, result.code, result.http_status) == (Outcome.RETRY, "", 500)
    closed = PlatformClient(sim.make_config(base_url="http://127.0.0.1:9", timeout=1.0))
    result = closed.call(CODE, SPEC.example(1))
    assert result.outcome == Outcome.RETRY and "无法连接" in result.message


def test_platform_settings_point_the_django_client_at_the_simulator(sim, platform_settings):
    client = PlatformClient.from_settings()
    assert (client.config.base_url, client.config.viewer_url) == (sim.url, sim.viewer_url)
    assert client.call(CODE, SPEC.example(1)).outcome == Outcome.ACCEPTED
