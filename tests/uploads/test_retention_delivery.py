"""The retention job moving accepted rows to the archive while real Celery workers deliver through
faults and a killed worker (the chaos test's conditions, docs/retention.md): nothing is lost,
nothing is stored twice, versions of archived keys go on counting, and children of archived
parents are not held back."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import retention, services
from hospital_interop.uploads.models import ArchivedAttempt, ArchivedRecord, OutboxRecord, State

from ..delivery_fixtures import wait_until

# the chaos test's own fixtures: its Redis (broker and cache) and an empty queue at the start
from .test_delivery_workers import FAST_RETRIES, chaos_redis, fresh_queue  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Archiver(threading.Thread):
    """The retention job in a loop, in small batches, with an age of zero: every row the moment the
    platform accepted it (the hardest case for delivery: its rows leave under its feet)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.moved, self.runs, self.error = threading.Event(), 0, 0, None

    def run(self):
        try:
            while not self.stop.is_set():
                self.moved += retention.run(older_than=timedelta(0), batch=25, pause=0.02).records
                self.runs += 1
                time.sleep(0.1)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


def _all_rows() -> list[tuple[str, str, int, int, str]]:
    """(interface, key, version, id, state) of every row, hot and archived."""
    cols = ("interface", "business_key", "version", "pk", "state")
    return list(OutboxRecord.objects.values_list(*cols)) + list(ArchivedRecord.objects.values_list(*cols))


def test_retention_runs_while_workers_deliver_and_loses_nothing(sim, processes, chaos_redis, settings):  # noqa: F811
    settings.RETENTION = {**settings.RETENTION, "FLOOR_DAYS": 0}
    broker = {"REDIS_URL": chaos_redis.url, "CELERY_BROKER_URL": chaos_redis.url, **FAST_RETRIES}
    rng = random.Random(19)
    lab, reg, visit = (
        load_catalogue().interface(c) for c in ("LAB_REPORT_DETAIL", "OP_REGISTRATION", "OP_VISIT")
    )
    payloads = {}
    for seed in range(3000, 3600):  # 600 keys ...
        p = lab.example(seed)
        payloads[services.business_key(lab, p)] = p
    keys = list(payloads)
    updated = rng.sample(keys, 150)  # ... 150 of them get a second version once the first may be archived
    rejected = set(rng.sample(keys, 10))
    sim.set_faults(
        http_5xx=0.20,
        timeout=0.05,
        rate_limit=0.05,
        retry_after=1,
        timeout_seconds=1.5,
        reject_keys=sorted(rejected),
        seed=19,
    )
    workers = [processes.worker(concurrency=4, **broker), processes.worker(concurrency=4, **broker)]
    processes.beat(**broker)
    archiver = Archiver()
    archiver.start()
    enqueued = 0
    try:
        for i, key in enumerate(keys):
            with transaction.atomic():
                services.enqueue("LAB_REPORT_DETAIL", payloads[key])
            enqueued += 1
            if i == 300:
                processes.kill(workers.pop(0))  # SIGKILL mid-run
                workers.append(processes.worker(concurrency=4, **broker))
        # parents first; their children after the parents may have gone to the archive
        registrations = [reg.example(seed) for seed in range(3700, 3780)]
        for p in registrations:
            services.enqueue("OP_REGISTRATION", p)
            enqueued += 1
        wait_until(
            lambda: ArchivedRecord.objects.filter(interface="OP_REGISTRATION").count() >= 40,
            180,
            message="parents archived",
        )
        for seed in range(3700, 3780):
            services.enqueue("OP_VISIT", visit.example(seed))
            enqueued += 1
        wait_until(
            lambda: ArchivedRecord.objects.filter(business_key__in=updated).count() >= 50,
            180,
            message="first versions archived",
        )
        for key in updated:
            payloads[key] = {**payloads[key], "reportRemark": "复核后更正：第二版"}
            services.enqueue("LAB_REPORT_DETAIL", payloads[key])
            enqueued += 1
        time.sleep(2)
        processes.kill(workers.pop(0))  # and once more while the updates are in flight
        workers.append(processes.worker(concurrency=4, **broker))

        def settled():
            open_rows = OutboxRecord.objects.filter(
                state__in=(State.PENDING, State.SENDING, State.RETRY)
            ).count()
            return open_rows == 0 and archiver.error is None

        wait_until(
            lambda: settled() or archiver.error is not None, 420, interval=1, message="all records settled"
        )
        time.sleep(2)  # one more pass of the archiver over the last accepted rows
    finally:
        archiver.stop.set()
        archiver.join(60)
    assert archiver.error is None, repr(archiver.error)
    sim.set_faults()

    rows = _all_rows()
    versions = [(i, k, v) for i, k, v, _, _ in rows]
    assert len(versions) == len(set(versions)), "a version stored twice (hot and archived)"
    assert len({pk for *_, pk, _ in rows}) == len(rows), "an id in both tables"
    assert len(rows) == enqueued, "rows lost or added"  # every enqueued version is somewhere, once
    assert archiver.moved == ArchivedRecord.objects.count() > len(keys) // 2  # the job really ran along

    attention = {k for i, k, _, _, s in rows if s == State.ATTENTION}
    assert attention == rejected
    held = {r["key"]: r for r in sim.records("LAB_REPORT_DETAIL")}
    assert set(held) == set(keys) - rejected  # every accepted key at the platform
    for key, record in held.items():
        assert record["payload"] == payloads[key], key  # at its latest version
    newest_done = {}
    for i, k, v, _, s in rows:
        if i == "LAB_REPORT_DETAIL" and s == State.DONE:
            newest_done[k] = max(v, newest_done.get(k, 0))
    assert set(newest_done) == set(held)
    for key, version in newest_done.items():
        assert version == (2 if key in updated else 1), key  # numbering went on across the archive
    # children of archived parents were sent, after their parents
    assert {k for i, k, _, _, s in rows if i == "OP_VISIT" and s == State.DONE} == {
        services.business_key(visit, visit.example(seed)) for seed in range(3700, 3780)
    }
    # every archived row took its attempts along: the accepted one among them
    accepted_ids = set(ArchivedAttempt.objects.filter(outcome="accepted").values_list("record_id", flat=True))
    assert set(ArchivedRecord.objects.filter(state=State.DONE).values_list("pk", flat=True)) <= accepted_ids
