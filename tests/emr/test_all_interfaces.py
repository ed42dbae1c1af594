"""Acceptance, for each of the 29 EMR interfaces: a valid record posted to the intake API reaches
the real platform simulator with the same field values (after SM4 decryption there); an invalid
one is a 4xx with field errors and writes nothing.

Delivery runs inline through ``services.claim`` + ``services.deliver_claimed`` (what the Celery
task ``deliver`` runs) so that 29 cases need no worker start-up each; the end-to-end ordering test
(test_ordering_workers.py) uses real worker processes.
"""

import pytest

from emr_sharing.mapping import record_types
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord, State
from tests.emr.conftest import invalid_intake

pytestmark = pytest.mark.django_db

SLUGS = [rt.slug for rt in record_types()]


def lineage(rt, rts):
    """The record type's ancestors, root first (what must be on the platform before it)."""
    chain, current = [], rt
    while current.spec.parents:
        current = rts.for_interface(current.spec.parents[0].interface)
        chain.insert(0, current)
    return chain


def deliver_all(client, rounds: int = 20) -> None:
    for _ in range(rounds):
        claimed = outbox.claim(limit=50)
        if not claimed:
            return
        outbox.deliver_claimed(claimed, client)


def test_every_emr_interface_has_a_record_type():
    from hospital_interop.municipal.specs import load_catalogue

    emr = {s.code for s in load_catalogue().interfaces if s.document.startswith("emr_")}
    assert len(SLUGS) == 29 and {rt.interface for rt in record_types()} == emr


@pytest.mark.parametrize("slug", SLUGS)
def test_record_reaches_the_platform_unchanged_and_bad_input_is_refused(
    slug, api, rts, sim, platform_settings
):
    rt = rts.get(slug)
    seed = 500 + SLUGS.index(slug)
    for parent in lineage(rt, rts):
        assert api.post(parent.slug, parent.example(seed)).status_code == 201
    record = rt.example(seed)
    response = api.post(slug, record)
    assert response.status_code == 201, response.json()
    key = response.json()["status"]["businessKey"]

    deliver_all(sim.client())

    row = OutboxRecord.objects.get(interface=rt.interface, business_key=key)
    assert row.state == State.DONE, (row.last_code, row.last_message, row.last_errors)
    held = sim.record(rt.interface, key)
    assert held is not None and held["payload"] == record  # decrypted by the simulator, field for field
    status = api.status(slug, key).json()
    assert (status["state"], status["receipt"]) == ("done", held["receipt"])

    rows_before = OutboxRecord.objects.count()
    bad, expected = invalid_intake(rt, seed + 1000)
    refused = api.post(slug, bad)
    assert 400 <= refused.status_code < 500
    errors = {(e["field"], e["rule"]) for e in refused.json()["errors"]}
    assert errors >= set(expected) and expected
    assert OutboxRecord.objects.count() == rows_before
