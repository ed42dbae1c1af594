"""Payload-aware claims: a row with a large payload (a 20 MiB PDF) is claimed alone, with a lease
sized to its transfer, and small rows neither wait behind it nor for its outcome; each record's
``accepted_at`` is the time of its own answer, not of its batch's end."""

from __future__ import annotations

import base64
import itertools
import multiprocessing
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from hospital_interop.municipal.client import PlatformClient
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.municipal.specs.examples import sm3_hex
from hospital_interop.uploads import services, tasks
from hospital_interop.uploads.models import Attempt, OutboxRecord, State

pytestmark = pytest.mark.django_db

LARGE = 50_000  # the threshold in these tests (1 MB in production)
RATE = 10_000  # bytes per second assumed for the transfer: a 100 kB payload adds 10 s of lease


@pytest.fixture(autouse=True)
def small_threshold(settings):
    settings.DELIVERY = {**settings.DELIVERY, "LARGE_PAYLOAD_BYTES": LARGE, "SEND_BYTES_PER_SECOND": RATE}


def _pdf(seed: int, size: int) -> OutboxRecord:
    payload = load_catalogue().interface("LAB_REPORT_PDF").example(seed)
    raw = b"%PDF-1.4\n" + os.urandom(size)
    payload.update(fileContent=base64.b64encode(raw).decode(), fileSize=len(raw), fileHash=sm3_hex(raw))
    return services.enqueue("LAB_REPORT_PDF", payload, wake_worker=False)


def _small(seed: int) -> OutboxRecord:
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    return services.enqueue("LAB_REPORT_DETAIL", spec.example(seed), wake_worker=False)


def test_the_payload_size_is_stored_at_enqueue():
    big, small = _pdf(1, 100_000), _small(2)
    assert big.payload_size == services.payload_size(big.payload) > 4 * 100_000 // 3
    assert small.payload_size == services.payload_size(small.payload) < LARGE
    big.refresh_from_db()
    assert big.payload_size > 100_000


def test_a_large_row_first_in_line_is_claimed_alone_with_a_lease_sized_to_its_payload():
    big = _pdf(3, 100_000)
    smalls = [_small(seed) for seed in (4, 5, 6)]
    before = timezone.now()
    claimed = services.claim(big.pk, limit=20, worker="w:1")
    assert [r.pk for r in claimed] == [big.pk]  # alone
    lease = (claimed[0].lease_until - before).total_seconds()
    base = services.settings.DELIVERY["LEASE_SECONDS"]
    assert lease >= base + big.payload_size / RATE - 1  # grown by its transfer time
    assert services.send_seconds(claimed[0]) > big.payload_size / RATE

    # the claiming worker does not read the large payload (the process that sends it does)
    assert "payload" in claimed[0].get_deferred_fields()

    rest = services.claim(limit=20, worker="w:2")
    assert sorted(r.pk for r in rest) == sorted(r.pk for r in smalls)
    assert all((r.lease_until - before).total_seconds() < base + 5 for r in rest)
    assert all(not r.get_deferred_fields() for r in rest)  # small rows come with their payloads
    assert rest[0].payload == OutboxRecord.objects.get(pk=rest[0].pk).payload


def test_a_large_row_behind_small_ones_waits_for_a_claim_of_its_own():
    first = _small(7)
    big = _pdf(8, 100_000)
    last = _small(9)
    OutboxRecord.objects.filter(pk=big.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    OutboxRecord.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=2))
    claimed = services.claim(limit=20, worker="w:1")
    assert sorted(r.pk for r in claimed) == sorted([first.pk, last.pk])
    assert OutboxRecord.objects.get(pk=big.pk).state == State.PENDING
    assert [r.pk for r in services.claim(limit=20, worker="w:2")] == [big.pk]


def test_each_record_is_stamped_accepted_when_its_own_answer_came(sim, settings):
    settings.DELIVERY = {**settings.DELIVERY, "PIPELINE": 1}  # one by one (pipelined: test_pipeline.py)
    rows = [_small(seed) for seed in (10, 11, 12)]
    claimed = services.claim(rows[0].pk, limit=20, worker="w:1")
    assert len(claimed) == 3
    assert services.deliver_claimed(claimed, sim.client()) == {State.DONE: 3}
    done = {r.pk: r for r in OutboxRecord.objects.filter(pk__in=[r.pk for r in rows])}
    for earlier, later in itertools.pairwise(claimed):
        started = Attempt.objects.get(record_id=later.pk).started_at
        assert done[earlier.pk].accepted_at <= started  # recorded before the next send began


def test_only_one_large_row_is_in_flight_at_a_time_so_small_rows_keep_a_worker():
    first, second = _pdf(13, 100_000), _pdf(14, 100_000)
    small = _small(15)
    OutboxRecord.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert [r.pk for r in services.claim(first.pk, limit=20, worker="w:1")] == [first.pk]
    assert [r.pk for r in services.claim(limit=20, worker="w:2")] == [small.pk]  # not the second PDF
    assert OutboxRecord.objects.get(pk=second.pk).state == State.PENDING


@pytest.mark.django_db(transaction=True)  # the large row's process has a connection of its own
def test_a_large_row_is_sent_beside_the_worker_at_low_cpu_priority(platform_settings, monkeypatch, tmp_path):
    """The worker's task hands a large row to a child process at ``DELIVERY["LARGE_NICE"]`` and
    returns: the worker takes the small rows meanwhile, at its own priority, which stays unchanged."""
    calls = tmp_path / "calls"

    class Watching:  # the real client, noting which process made each call, at what priority
        def __init__(self, inner):
            self.inner = inner

        def call(self, interface, payload):
            with calls.open("a") as f:
                f.write(f"{interface} {os.getpid()} {os.getpriority(os.PRIO_PROCESS, 0)}\n")
            return self.inner.call(interface, payload)

    big, small = _pdf(16, 100_000), _small(17)
    # as in a Celery pool process, which multiprocessing would refuse children
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.setattr(tasks, "_client", Watching(PlatformClient.from_settings()))
    monkeypatch.setattr(services, "_large_client", lambda: Watching(PlatformClient.from_settings()))
    assert tasks.deliver(big.pk) == 1
    assert tasks.deliver(small.pk) == 1
    services.wait_for_large_sends(timeout=60)
    low = max(base, services.settings.DELIVERY["LARGE_NICE"])
    seen = sorted(line.split() for line in calls.read_text().splitlines())
    assert seen[0] == ["LAB_REPORT_DETAIL", str(os.getpid()), str(base)]
    assert seen[1][0] == "LAB_REPORT_PDF" and seen[1][1] != str(os.getpid()) and seen[1][2] == str(low)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base
    assert set(OutboxRecord.objects.filter(pk__in=[big.pk, small.pk]).values_list("state", flat=True)) == {
        State.DONE
    }
