"""Pipelined delivery (``DELIVERY["PIPELINE"]`` sends in flight per worker process): answers are
recorded in groups of half the window, while later rows are on the wire, each with its own
``accepted_at``; a row with an ordering parent in the same claim is sent only once the parent's
answer is recorded; a client failure stops the batch with the answers that did come recorded."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError
from django.utils import timezone

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import Attempt, OutboxRecord, State

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def window_of_two(settings):
    settings.DELIVERY = {**settings.DELIVERY, "PIPELINE": 2}


def _enqueue(code: str, seed: int) -> OutboxRecord:
    return services.enqueue(code, load_catalogue().interface(code).example(seed), wake_worker=False)


def test_answers_are_recorded_while_later_rows_are_on_the_wire_each_with_its_own_time(sim):
    rows = [_enqueue("LAB_REPORT_DETAIL", seed) for seed in range(30, 36)]
    claimed = services.claim(rows[0].pk, limit=20, worker="w:1")
    assert len(claimed) == 6
    assert services.deliver_claimed(claimed, sim.client()) == {State.DONE: 6}
    done = list(OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]))
    attempts = {a.record_id: a for a in Attempt.objects.filter(record__in=rows)}
    assert len(attempts) == 6  # one send each
    for row in done:
        # its own answer: after its send started, stamped no later than the row was written
        assert attempts[row.pk].started_at <= row.accepted_at <= row.updated_at
        assert row.claimed_by == "" and row.lease_until is None
    # with 2 in flight, the third send waits for an answer to be recorded: the first outcome was
    # written before the last send began, not at the batch's end
    assert min(r.updated_at for r in done) <= max(a.started_at for a in attempts.values())
    assert all(sim.record("LAB_REPORT_DETAIL", r.business_key) for r in done)


def test_answers_are_recorded_in_groups_of_half_the_window(sim, settings, monkeypatch):
    settings.DELIVERY = {**settings.DELIVERY, "PIPELINE": 4}  # groups of 2
    groups: list[int] = []
    record_outcomes = services.record_outcomes
    monkeypatch.setattr(
        services, "record_outcomes", lambda sent: (groups.append(len(sent)), record_outcomes(sent))[1]
    )
    rows = [_enqueue("LAB_REPORT_DETAIL", seed) for seed in range(60, 69)]
    claimed = services.claim(rows[0].pk, limit=20, worker="w:1")
    assert services.deliver_claimed(claimed, sim.client()) == {State.DONE: 9}
    # one transaction per group of at least 2 answers; only the batch's last may hold fewer
    assert sum(groups) == 9 and len(groups) < 9
    assert min(groups[:-1]) >= 2
    done = list(OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]))
    attempts = {a.record_id: a for a in Attempt.objects.filter(record__in=rows)}
    assert all(attempts[r.pk].started_at <= r.accepted_at <= r.updated_at for r in done)
    # still recorded while later rows are on the wire, not at the batch's end
    assert min(r.updated_at for r in done) <= max(a.started_at for a in attempts.values())


class OnNthCall:
    """A real client that does ``act()`` before its ``nth`` call (called from the sender threads)."""

    def __init__(self, client, nth: int, act):
        self.client, self.nth, self.act, self.calls, self.lock = client, nth, act, 0, threading.Lock()

    def call(self, interface, payload):
        with self.lock:
            self.calls += 1
            nth = self.calls
        if nth == self.nth:
            self.act()
        return self.client.call(interface, payload)


def _raise_client_bug():
    raise RuntimeError("client bug")  # a bug in a client, not a platform failure


def test_a_slow_call_does_not_hold_back_the_answers_of_its_group(sim, settings):
    settings.DELIVERY = {**settings.DELIVERY, "PIPELINE": 4}  # groups of 2
    slow, fast = (_enqueue("LAB_REPORT_DETAIL", seed) for seed in (70, 71))
    claimed = services.claim(slow.pk, limit=20, worker="w:1")
    assert [r.pk for r in claimed] == [slow.pk, fast.pk]
    slow_first = OnNthCall(sim.client(), 1, lambda: time.sleep(3.0))  # a slow platform node
    assert services.deliver_claimed(claimed, slow_first) == {State.DONE: 2}
    slow.refresh_from_db()
    fast.refresh_from_db()
    # the fast answer was written after GROUP_WAIT_SECONDS, long before the slow one came back
    assert fast.updated_at < slow.accepted_at
    assert services.GROUP_WAIT_SECONDS < 3.0


def test_a_child_claimed_with_its_parent_goes_after_the_parents_answer_is_recorded(sim):
    # the visit is first in line: without its registration accepted it must not go
    visit = _enqueue("OP_VISIT", 40)
    registration = _enqueue("OP_REGISTRATION", 40)
    other = _enqueue("LAB_REPORT_DETAIL", 41)
    OutboxRecord.objects.filter(pk=registration.pk).update(next_attempt_at=visit.next_attempt_at)
    OutboxRecord.objects.filter(pk=visit.pk).update(next_attempt_at=timezone.now())
    claimed = services.claim(registration.pk, limit=20, worker="w:1")
    assert claimed[0].pk == registration.pk and len(claimed) == 3
    counts = services.deliver_claimed(claimed, sim.client())
    assert counts == {State.DONE: 3}
    registration.refresh_from_db()
    visit.refresh_from_db()
    assert registration.accepted_at < Attempt.objects.get(record=visit).started_at
    assert not Attempt.objects.filter(record=visit, code="2002").exists()
    assert OutboxRecord.objects.get(pk=other.pk).state == State.DONE


def test_a_client_that_raises_stops_the_batch_with_the_answers_that_came_recorded(sim):
    rows = [_enqueue("LAB_REPORT_DETAIL", seed) for seed in range(50, 55)]
    claimed = services.claim(rows[0].pk, limit=20, worker="w:1")
    client = OnNthCall(sim.client(), 3, _raise_client_bug)
    with pytest.raises(RuntimeError, match="client bug"):
        services.deliver_claimed(claimed, client)
    states = dict(OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "state"))
    sent = {a.record_id for a in Attempt.objects.filter(record__in=rows)}
    # every answer that came back is recorded; the row whose call raised and those never sent
    # keep their lease (the sweep gives them back), none is marked done without an answer
    assert {pk for pk, state in states.items() if state == State.DONE} == sent
    assert len(sent) >= 2
    assert all(state == State.SENDING for pk, state in states.items() if pk not in sent)


@pytest.mark.django_db(transaction=True)  # through_database_blips tries again only outside a transaction
def test_answers_cut_off_by_the_database_are_recorded_again_from_the_rows_as_they_were(sim, monkeypatch):
    """The database is lost while a group's answers are being written: the group is written again
    after the reconnect, each row counting its one attempt once, not once per try."""
    rows = [_enqueue("LAB_REPORT_DETAIL", seed) for seed in range(80, 84)]
    claimed = services.claim(rows[0].pk, limit=20, worker="w:1")
    insert_attempts, tries = services._insert_attempts, []

    def lost_on_the_first_try(attempts):
        tries.append(len(attempts))
        if len(tries) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        insert_attempts(attempts)

    monkeypatch.setattr(services, "_insert_attempts", lost_on_the_first_try)
    assert services.deliver_claimed(claimed, sim.client()) == {State.DONE: 4}
    assert tries[0] == tries[1]  # the lost group written again, whole
    rows = list(OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]))
    assert [r.attempts for r in rows] == [1, 1, 1, 1]
    assert all(r.state == State.DONE and r.claimed_by == "" for r in rows)
    assert Attempt.objects.filter(record__in=rows).count() == 4
