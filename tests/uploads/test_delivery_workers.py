"""Delivery through real Celery worker and beat processes, Redis and the platform simulator:
broker outages, ordering, and a chaos run with faults, killed workers and a Redis restart."""

from __future__ import annotations

import random
import time

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from hospital_interop.celery import app as celery_app
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import Attempt, OutboxRecord, State
from hospital_interop.uploads.schedules import sync_schedules

from ..delivery_fixtures import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST_RETRIES = dict(
    DELIVERY_BACKOFF_BASE_SECONDS="0.3",
    DELIVERY_BACKOFF_CAP_SECONDS="3",
    DELIVERY_LEASE_SECONDS="6",
    DELIVERY_SWEEP_SECONDS="1",
    PLATFORM_TIMEOUT_SECONDS="1",
)


@pytest.fixture(autouse=True)
def fresh_queue():
    """Start from an empty broker queue and the schedules the flush removed."""
    redis.Redis.from_url(settings.REDIS_URL).delete("celery")
    with transaction.atomic():
        sync_schedules()
    yield


def _spec(code):
    return load_catalogue().interface(code)


def _use_broker(url):
    """Point this process's Celery app at another broker, dropping its cached connections.
    kombu keeps pools in a process-wide registry keyed by URL: clear that too, or switching back
    would hand out the closed pool of the first URL ("Acquire on closed pool")."""
    celery_app.conf.broker_url = url
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def states(interface=None):
    qs = OutboxRecord.objects.all()
    if interface:
        qs = qs.filter(interface=interface)
    return dict(qs.values_list("business_key", "state"))


def test_upload_made_while_the_broker_is_down_is_delivered_by_the_sweep(sim, processes, caplog):
    payload = _spec("LAB_REPORT_DETAIL").example(11)
    original = celery_app.conf.broker_url
    _use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        with transaction.atomic():
            record = services.enqueue("LAB_REPORT_DETAIL", payload, source="test")
    finally:
        _use_broker(original)
    record.refresh_from_db()
    assert record.state == State.PENDING
    assert sim.stats()["requests"].get("LAB_REPORT_DETAIL", {}) == {}  # nothing sent by the caller
    assert "broker unavailable" in caplog.text

    processes.worker(**FAST_RETRIES)
    processes.beat(**FAST_RETRIES)
    wait_until(
        lambda: OutboxRecord.objects.get(pk=record.pk).state == State.DONE, 60, message="sweep delivery"
    )
    held = sim.record("LAB_REPORT_DETAIL", record.business_key)
    assert held["payload"] == payload


def test_a_visit_enqueued_before_its_registration_waits_while_other_patients_flow(sim, processes):
    reg, visit = _spec("OP_REGISTRATION"), _spec("OP_VISIT")
    visit_a = services.enqueue("OP_VISIT", visit.example(21))
    processes.worker(**FAST_RETRIES)
    processes.beat(**FAST_RETRIES)
    others = []
    for seed in (22, 23, 24):
        others.append(services.enqueue("OP_REGISTRATION", reg.example(seed)))
        others.append(services.enqueue("OP_VISIT", visit.example(seed)))
    wait_until(
        lambda: all(OutboxRecord.objects.get(pk=r.pk).state == State.DONE for r in others),
        60,
        message="other patients' records",
    )
    visit_a.refresh_from_db()
    assert visit_a.state == State.PENDING and "等待上级记录" in visit_a.last_message
    assert not Attempt.objects.filter(record=visit_a).exists()  # never sent ahead of its parent

    reg_a = services.enqueue("OP_REGISTRATION", reg.example(21))
    wait_until(lambda: OutboxRecord.objects.get(pk=visit_a.pk).state == State.DONE, 60, message="visit A")
    reg_a.refresh_from_db()
    visit_a.refresh_from_db()
    assert reg_a.accepted_at < visit_a.accepted_at
    assert not Attempt.objects.filter(record__interface="OP_VISIT", code="2002").exists()
    assert sim.record("OP_VISIT", visit_a.business_key)["payload"] == visit_a.payload


@pytest.fixture
def chaos_redis(private_redis):
    """Broker and cache of this test's own (a Redis it may restart; the shared one stays up)."""
    original = celery_app.conf.broker_url
    _use_broker(private_redis.url)
    yield private_redis
    _use_broker(original)


def _restart(redis_server):
    redis_server.stop()
    time.sleep(1)
    redis_server.start()


def test_chaos_every_record_arrives_once_at_its_latest_version(sim, processes, chaos_redis):
    """2,000 records; 20% HTTP 5xx, 5% timeouts, 5% rate limiting; two SIGKILLed workers; one
    Redis restart. Only the records the platform rejects need attention; nothing is lost."""
    broker = {"REDIS_URL": chaos_redis.url, "CELERY_BROKER_URL": chaos_redis.url, **FAST_RETRIES}
    rng = random.Random(2026)
    spec = _spec("LAB_REPORT_DETAIL")
    payloads = {}
    for seed in range(1000, 2800):  # 1,800 keys ...
        p = spec.example(seed)
        payloads[services.business_key(spec, p)] = p
    keys = list(payloads)
    updated = rng.sample(keys, 200)  # ... of which 200 get a second version: 2,000 records
    rejected = set(rng.sample(keys, 20))
    sim.set_faults(
        http_5xx=0.20,
        timeout=0.05,
        rate_limit=0.05,
        retry_after=1,
        timeout_seconds=1.5,
        reject_keys=sorted(rejected),
        seed=7,
    )

    workers = [processes.worker(concurrency=4, **broker), processes.worker(concurrency=4, **broker)]
    processes.beat(**broker)
    for i, key in enumerate(keys):
        with transaction.atomic():
            services.enqueue("LAB_REPORT_DETAIL", payloads[key])
        if i == 600:
            processes.kill(workers.pop(0))  # SIGKILL mid-run
            workers.append(processes.worker(concurrency=4, **broker))
        if i == 1200:
            _restart(chaos_redis)
    for key in updated:
        payloads[key] = {**payloads[key], "reportRemark": "复核后更正：第二版"}
        services.enqueue("LAB_REPORT_DETAIL", payloads[key])
    time.sleep(3)
    processes.kill(workers.pop(0))  # and once more while the updates are in flight
    workers.append(processes.worker(concurrency=4, **broker))

    def settled():
        open_rows = OutboxRecord.objects.filter(state__in=(State.PENDING, State.SENDING, State.RETRY)).count()
        return open_rows == 0

    wait_until(settled, 420, interval=1, message="all records settled")
    sim.set_faults()
    attention = set(OutboxRecord.objects.filter(state=State.ATTENTION).values_list("business_key", flat=True))
    assert attention == rejected
    held = {r["key"]: r for r in sim.records("LAB_REPORT_DETAIL")}
    assert set(held) == set(keys) - rejected  # every accepted key exactly once (the platform upserts by key)
    for key, record in held.items():
        assert record["payload"] == payloads[key], key  # at its latest version
    newest_done = dict(
        OutboxRecord.objects.filter(state=State.DONE)
        .values("business_key")
        .annotate(v=Max("version"))
        .values_list("business_key", "v")
    )
    assert set(newest_done) == set(held)
    for key, version in newest_done.items():
        assert version == (2 if key in updated else 1), key
