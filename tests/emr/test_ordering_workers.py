"""End to end with real Celery worker processes: an outpatient encounter and an inpatient stay,
every record type of each posted to the intake API in shuffled order (children before their
parents), arrive at the platform simulator in a valid order and all are accepted."""

import random

import pytest
from django.db import transaction

from hospital_interop.uploads.models import OutboxRecord, State
from hospital_interop.uploads.schedules import sync_schedules
from tests.delivery_fixtures import wait_until

OUTPATIENT = [
    "op-registration",
    "op-visit",
    "op-visit-reason",
    "op-record",
    "op-order",
    "op-prescription",
    "op-settlement",
    "op-invoice",
    "op-procedure",
    "op-admission-notice",
    "op-pdf",
]
INPATIENT = [
    "ip-admission",
    "ip-admission-record",
    "ip-progress-note",
    "ip-surgery-record",
    "ip-in-hospital",
    "ip-discharge",
    "ip-discharge-record",
    "ip-front-page",
    "ip-settlement",
    "ip-invoice",
    "ip-death-record",
    "ip-pdf",
]


@pytest.mark.django_db(transaction=True)
def test_encounter_and_stay_posted_shuffled_arrive_in_a_valid_order(
    api, rts, sim, platform_settings, processes
):
    assert {rt.slug for rt in rts if rt.group in ("outpatient", "inpatient")} == {*OUTPATIENT, *INPATIENT}
    with transaction.atomic():
        sync_schedules()  # the flushed test database lost the sweep's schedule
    processes.worker(concurrency=2, DELIVERY_LEASE_SECONDS=10)
    processes.beat(DELIVERY_SWEEP_SECONDS=2)  # the safety net a lost broker message relies on
    posts = [(slug, 801) for slug in OUTPATIENT] + [(slug, 802) for slug in INPATIENT]
    random.Random(20261127).shuffle(posts)
    assert posts[0][0] not in ("op-registration", "ip-admission")  # a child comes first
    keys = {}
    for slug, seed in posts:
        response = api.post(slug, rts.get(slug).example(seed))
        assert response.status_code == 201, response.json()
        keys[slug] = response.json()["status"]["businessKey"]

    def all_done():
        states = dict(OutboxRecord.objects.values_list("interface", "state"))
        if any(s == State.ATTENTION for s in states.values()):
            raise AssertionError(
                f"a record needs attention: {list(OutboxRecord.objects.values_list('interface', 'last_code', 'last_message'))}"
            )
        return len(states) == len(posts) and all(s == State.DONE for s in states.values())

    wait_until(all_done, timeout=180, message="every record accepted by the platform")

    held = {slug: sim.record(rts.get(slug).interface, key) for slug, key in keys.items()}
    assert all(h is not None for h in held.values())
    for slug in keys:  # each record reached the platform after its parent did
        for parent in rts.get(slug).spec.parents:
            parent_slug = rts.for_interface(parent.interface).slug
            assert held[parent_slug]["first_received_at"] <= held[slug]["first_received_at"], (
                parent_slug,
                slug,
            )
    report = sim.stats()
    stats = report.get("requests", report.get("by_service"))  # per service: {platform code: count}
    assert not any("2002" in codes for codes in stats.values()), (
        stats
    )  # the platform never saw a child too early
    uploaded = {rts.get(slug).interface for slug in keys}
    assert sum(codes.get("0", 0) for service, codes in stats.items() if service in uploaded) == len(posts)
