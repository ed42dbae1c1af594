"""The outbox and answers that must not be believed: a signed `code 0` answer captured from the
real simulator and replayed by a man in the middle (``answer_proxy``) for another record leaves
that record waiting for a retry, never accepted with someone else's receipt."""

from __future__ import annotations

import pytest
from django.utils import timezone

from hospital_interop.municipal.client import PlatformClient, config_from_settings
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import Attempt, OutboxRecord, State

pytestmark = pytest.mark.django_db

SPEC = load_catalogue().interface("LAB_REPORT_DETAIL")


def deliver(record, client):
    return services.deliver_claimed(services.claim(record.pk, limit=1), client)


def test_a_replayed_acceptance_does_not_mark_another_record_accepted(
    sim, answer_proxy, platform_settings, settings
):
    settings.PLATFORM = {**settings.PLATFORM, "BASE_URL": answer_proxy.url}
    config_from_settings.cache_clear()
    client = PlatformClient.from_settings()
    first = services.enqueue(SPEC.code, SPEC.example(61), wake_worker=False)
    second = services.enqueue(SPEC.code, SPEC.example(62), wake_worker=False)

    assert deliver(first, client) == {State.DONE: 1}
    first.refresh_from_db()
    answer_proxy.answer_with(SPEC.path, answer_proxy.last(SPEC.path).answer)  # replayed for `second`

    assert deliver(second, client) == {State.RETRY: 1}
    second.refresh_from_db()
    assert (second.state, second.receipt, second.accepted_at, second.last_code) == (State.RETRY, "", None, "")
    assert second.next_attempt_at > timezone.now() and "重放" in second.last_message
    attempt = Attempt.objects.get(record=second)
    assert (attempt.outcome, attempt.http_status) == ("retry", 200) and "应答无效" in attempt.message
    assert sim.record(SPEC.code, second.business_key) is None
    assert OutboxRecord.objects.filter(receipt=first.receipt).count() == 1

    answer_proxy.forward_all()  # the retry, once due, goes through with its own receipt
    OutboxRecord.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now())
    assert deliver(second, client) == {State.DONE: 1}
    second.refresh_from_db()
    assert second.receipt and second.receipt != first.receipt
    assert sim.record(SPEC.code, second.business_key)["receipt"] == second.receipt


def test_a_rate_limit_answer_asking_for_an_absurd_wait_is_held_to_the_backoff_cap(sim, platform_settings):
    """A signed 3001 with ``retryAfter`` 1e12 seconds: ``now + timedelta(seconds=1e12)`` overflowed
    the date (OverflowError), the group's write failed, and the row came back after each lease
    expiry to fail the same way. Now it waits at most the backoff cap, like any retry."""
    from django.conf import settings

    sim.set_faults(rate_limit=1, retry_after=1e12, services=[SPEC.code])
    record = services.enqueue(SPEC.code, SPEC.example(63), wake_worker=False)
    before = timezone.now()
    assert deliver(record, PlatformClient.from_settings()) == {State.RETRY: 1}
    record.refresh_from_db()
    cap = settings.DELIVERY["BACKOFF_CAP_SECONDS"]
    assert record.last_code == "3001" and record.attempts == 1
    assert 0 < (record.next_attempt_at - before).total_seconds() <= cap + 5
