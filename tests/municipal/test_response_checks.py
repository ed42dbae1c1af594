"""Platform answers are checked like requests (platform-protocol.md §3): a correctly signed answer
must also carry a timestamp inside the profile's window (platform time, with the client's measured
offset) and a nonce this client (or any other worker sharing its cache) has never seen. A man in
the middle on loopback (``answer_proxy``) replays answers captured from the real simulator process
or serves answers signed with the platform's test key."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hospital_interop.municipal import envelope
from hospital_interop.municipal.client import Outcome, PlatformClient, config_from_settings
from hospital_interop.municipal.specs import load_catalogue
from simulators.platform.app import load_credentials

from ..platform_fixtures import APP_ID, ORG_CODE

SPEC = load_catalogue().interface("LAB_REPORT_DETAIL")
CODE = SPEC.code
WINDOW = SPEC.profile.timestamp_window_seconds


def signed_answer(sim, timestamp, receipt="RC-FORGED-0001") -> dict:
    """A `code 0` answer signed with the platform's own (test) key: only its timestamp is wrong."""
    platform = load_credentials(sim.key_dir, APP_ID, ORG_CODE)
    return envelope.seal_response(
        "0",
        "成功",
        {"receiptId": receipt, "version": 1},
        creds=platform,
        profile=SPEC.profile,
        timestamp=timestamp,
    )


def sends_of(proxy, path=SPEC.path) -> int:
    return sum(1 for e in proxy.exchanges if e.path == path)


def test_a_replayed_signed_answer_is_a_retry_and_accepts_nothing(sim, answer_proxy):
    client = sim.client(base_url=answer_proxy.url)
    first, second = SPEC.example(1), SPEC.example(2)
    accepted = client.call(CODE, first)
    assert accepted.outcome == Outcome.ACCEPTED
    captured = answer_proxy.last(SPEC.path)
    assert captured.forwarded and json.loads(captured.answer)["code"] == "0"

    answer_proxy.answer_with(SPEC.path, captured.answer)  # the real platform never sees `second`
    result = client.call(CODE, second)
    assert (result.outcome, result.code, result.receipt) == (Outcome.RETRY, "", "")
    assert result.refused_answer == "1003"
    assert result.message.startswith("应答无效") and "重放" in result.message
    assert sim.record(CODE, SPEC.key_of(second)) is None

    answer_proxy.forward_all()  # the path is clear again: the same record goes through
    again = client.call(CODE, second)
    assert again.outcome == Outcome.ACCEPTED and again.receipt not in ("", accepted.receipt)


@pytest.mark.parametrize("seconds", [-(WINDOW + 60), WINDOW + 60], ids=["stale", "future-dated"])
def test_a_correctly_signed_answer_outside_the_time_window_is_a_retry(sim, answer_proxy, seconds):
    client = sim.client(base_url=answer_proxy.url)
    client.refresh_time()
    answer_proxy.answer_with(
        SPEC.path, signed_answer(sim, client.platform_now() + timedelta(seconds=seconds))
    )
    result = client.call(CODE, SPEC.example(3))
    assert (result.outcome, result.code, result.receipt) == (Outcome.RETRY, "", "")
    assert result.refused_answer == "1002"
    assert result.message.startswith("应答无效") and "时间戳" in result.message
    # like a 1002 from the platform: the clock is measured again and the request sent once more
    assert sends_of(answer_proxy) == 2 and sends_of(answer_proxy, "/security/timestamp") == 2


def test_a_correctly_signed_answer_inside_the_time_window_is_believed(sim, answer_proxy):
    client = sim.client(base_url=answer_proxy.url)
    client.refresh_time()
    answer_proxy.answer_with(
        SPEC.path, signed_answer(sim, client.platform_now() - timedelta(seconds=WINDOW - 60))
    )
    result = client.call(CODE, SPEC.example(3))
    assert (result.outcome, result.receipt) == (Outcome.ACCEPTED, "RC-FORGED-0001")


def test_two_clients_built_from_settings_share_the_seen_answer_nonces(
    sim, answer_proxy, platform_settings, settings
):
    settings.PLATFORM = {**settings.PLATFORM, "BASE_URL": answer_proxy.url}
    config_from_settings.cache_clear()
    worker_a, worker_b = PlatformClient.from_settings(), PlatformClient.from_settings()  # as two processes
    assert worker_a.call(CODE, SPEC.example(4)).outcome == Outcome.ACCEPTED
    answer_proxy.answer_with(SPEC.path, answer_proxy.last(SPEC.path).answer)
    result = worker_b.call(CODE, SPEC.example(5))
    assert result.outcome == Outcome.RETRY and result.refused_answer == "1003"
    assert sim.record(CODE, SPEC.key_of(SPEC.example(5))) is None


def test_a_replayed_time_service_answer_does_not_set_the_clock(sim, answer_proxy):
    client = sim.client(base_url=answer_proxy.url)
    client.refresh_time()
    answer_proxy.answer_with("/security/timestamp", answer_proxy.last("/security/timestamp").answer)
    with pytest.raises(envelope.EnvelopeError) as err:
        client.refresh_time()
    assert err.value.code == "1003"


@pytest.mark.parametrize(
    ("code", "data", "retry_after", "errors"),
    [
        ("3001", {"retryAfter": "abc"}, 1.0, []),
        ("3001", {"retryAfter": [5]}, 1.0, []),
        ("3001", {"retryAfter": True}, 1.0, []),
        ("3001", {"retryAfter": -30}, 1.0, []),
        ("3001", {"retryAfter": "Infinity"}, 1.0, []),
        ("3001", {"retryAfter": "NaN"}, 1.0, []),
        ("3001", {"retryAfter": "7"}, 7.0, []),
        ("2001", {"errors": "字段有误"}, None, []),
        ("2001", {"errors": [1, "x", {"field": "a", "rule": "r", "message": "m"}]}, None, [{"field": "a"}]),
    ],
    ids=[
        "text",
        "list",
        "bool",
        "negative",
        "infinite",
        "nan",
        "numeric-text",
        "errors-text",
        "errors-mixed",
    ],
)
def test_a_signed_answer_with_malformed_details_is_read_without_raising(
    sim, answer_proxy, code, data, retry_after, errors
):
    """The client never raises (its contract): a signed 3001 whose ``retryAfter`` is not a number
    raised ValueError/TypeError out of ``call`` (the delivery group stopped); an infinite or
    negative wait is the protocol's default; a 2001's ``errors`` keeps its field errors only."""
    client = sim.client(base_url=answer_proxy.url)
    client.refresh_time()
    platform = load_credentials(sim.key_dir, APP_ID, ORG_CODE)
    answer = envelope.seal_response(
        code, "测试", data, creds=platform, profile=SPEC.profile, timestamp=client.platform_now()
    )
    answer_proxy.answer_with(SPEC.path, answer)
    result = client.call(CODE, SPEC.example(4))
    assert result.code == code and result.retry_after == retry_after
    assert [{"field": e["field"]} for e in result.errors] == errors
