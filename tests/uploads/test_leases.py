"""The one lease helper (``hospital_interop.uploads.leases``) that the outbox and the DICOM
study-sync jobs share: who holds a row, for how long, and what a worker that lost it may still do."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import leases, services
from hospital_interop.uploads.models import OutboxRecord, State
from hospital_interop.uploads.tasks import deliver


def _record(seed: int) -> OutboxRecord:
    return services.enqueue(
        "LAB_REPORT_DETAIL", load_catalogue().interface("LAB_REPORT_DETAIL").example(seed), wake_worker=False
    )


@pytest.mark.django_db(transaction=True)
def test_each_process_of_a_prefork_pool_claims_under_a_name_of_its_own():
    """Celery's prefork pool forks its processes after the worker imported the services: a row
    claimed in a pool process must name that process, not the parent all of them were forked from."""
    record = _record(1)
    pid = os.fork()
    if pid == 0:  # the pool process
        code = 1
        try:
            inherited = connection.connection  # the parent's session: kept open, never closed from here
            connection.connection = None
            code = 0 if services.claim(record.pk) else 2
        finally:
            del inherited
            os._exit(code)  # no exit handlers: the parent's connection stays intact
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    record.refresh_from_db()
    assert record.state == State.SENDING
    assert record.claimed_by == f"{socket.gethostname()}:{pid}"


@pytest.mark.django_db
def test_a_worker_whose_lease_was_reclaimed_can_neither_renew_nor_release_the_row():
    record = _record(2)
    assert services.claim(record.pk, worker="slow:1")
    OutboxRecord.objects.filter(pk=record.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.LEASE.reclaim() == 1  # the sweep gives the row back ...
    assert services.claim(record.pk, worker="fast:2")  # ... and another worker takes it

    assert services.LEASE.renew(record.pk, "slow:1") is False
    assert services.LEASE.release(record.pk, "slow:1", state=State.DONE) == 0
    record.refresh_from_db()
    assert (record.state, record.claimed_by) == (State.SENDING, "fast:2")
    assert services.LEASE.holders([record.pk]) == {(record.pk, "fast:2")}

    assert services.LEASE.renew(record.pk, "fast:2") is True
    assert services.LEASE.release(record.pk, "fast:2", state=State.DONE) == 1
    record.refresh_from_db()
    assert (record.state, record.claimed_by, record.lease_until) == (State.DONE, "", None)


@pytest.mark.django_db
def test_a_row_is_claimed_only_when_due_and_reclaimed_only_when_its_lease_ran_out():
    record = _record(3)
    OutboxRecord.objects.filter(pk=record.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert services.claim(record.pk) == []  # not due yet
    OutboxRecord.objects.filter(pk=record.pk).update(next_attempt_at=timezone.now())
    assert [r.pk for r in services.claim(record.pk, worker="w:1")] == [record.pk]
    assert services.claim(record.pk) == []  # held
    assert services.LEASE.reclaim() == 0  # its lease still runs
    record.refresh_from_db()
    assert record.lease_until > timezone.now() + timedelta(seconds=settings.DELIVERY["LEASE_SECONDS"] - 5)


def test_waking_a_worker_while_the_broker_is_down_does_not_raise_and_leaves_the_row_to_the_sweep(
    dead_broker, caplog
):
    assert leases.wake(deliver, 42, what="record 42") is False
    assert "broker unavailable, record 42 left for the sweep" in caplog.text


@pytest.mark.django_db
def test_a_claimed_row_whose_lease_would_run_out_during_its_send_is_handed_back_unsent(sim, settings):
    """A batch that took long (slow answers, timeouts) must not send a row whose lease ends before
    its send could: the sweep may meanwhile give it to another worker, and both would send it. It
    goes back unsent and due, and a later claim delivers it."""
    settings.PLATFORM = {**settings.PLATFORM, "TIMEOUT_SECONDS": 3.0}  # a send may take up to 6 s
    first, late = _record(4), _record(5)
    claimed = services.claim(first.pk, worker="w:1", limit=2)
    assert [r.pk for r in claimed] == [first.pk, late.pk]
    almost_over = timezone.now() + timedelta(seconds=2)  # less than the send may take
    OutboxRecord.objects.filter(pk=late.pk).update(lease_until=almost_over)
    claimed[1].lease_until = almost_over

    counts = services.deliver_claimed(claimed, sim.client())
    assert counts == {State.DONE: 1, "handed-back": 1}
    assert sim.record("LAB_REPORT_DETAIL", first.business_key) is not None
    assert sim.record("LAB_REPORT_DETAIL", late.business_key) is None  # never sent
    late.refresh_from_db()
    assert (late.state, late.claimed_by, late.lease_until, late.attempts) == (State.PENDING, "", None, 0)
    assert late.next_attempt_at <= timezone.now() and "已交还" in late.last_message

    again = services.claim(late.pk, worker="w:2")
    assert [r.pk for r in again] == [late.pk]
    assert services.deliver_claimed(again, sim.client()) == {State.DONE: 1}
    assert sim.record("LAB_REPORT_DETAIL", late.business_key)["version"] == 1


@pytest.mark.django_db
def test_a_configured_lease_shorter_than_one_send_still_delivers(sim, settings):
    """DELIVERY_LEASE_SECONDS below twice the platform timeout: the claim's lease is stretched to
    one send's worst case, so the first row of a claim always goes (without the floor every row
    was handed back unsent for ever: found by the ordering test with real workers)."""
    settings.PLATFORM = {**settings.PLATFORM, "TIMEOUT_SECONDS": 10.0}  # a send may take up to 20 s
    settings.DELIVERY = {**settings.DELIVERY, "LEASE_SECONDS": 5.0}
    row = _record(6)
    claimed = services.claim(row.pk, worker="w:1")
    assert claimed[0].lease_until - timezone.now() > timedelta(seconds=20)
    assert services.deliver_claimed(claimed, sim.client()) == {State.DONE: 1}
