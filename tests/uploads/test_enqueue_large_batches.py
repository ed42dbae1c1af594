"""enqueue_many writes a large batch (a backfill's 1,000 rows) with its own INSERT instead of
bulk_create: the rows, their dependencies and what reads them back are the same either way."""

import pytest
from django.db import transaction

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import Dependency, OutboxRecord, State

pytestmark = pytest.mark.django_db
COLUMNS = [
    f.attname
    for f in OutboxRecord._meta.concrete_fields
    if f.attname
    not in (
        "id",
        "business_key",
        "payload",
        "payload_size",
        "waits_for",
        "enqueued_at",
        "updated_at",
        "next_attempt_at",
    )
    and not f.attname.startswith(("patient_", "event_at", "deadline_at"))
]


def items(code: str, seeds) -> list[services.Item]:
    spec = load_catalogue().interface(code)
    return [services.Item(code, spec.example(s)) for s in seeds]


def test_a_large_batch_stores_what_small_batches_store():
    small = []
    for seed in range(3):  # below the threshold: bulk_create
        with transaction.atomic():
            small += services.enqueue_many(items("OP_VISIT", [seed]))
    with transaction.atomic():
        large = services.enqueue_many(items("OP_VISIT", range(100, 220)) + items("OP_VISIT", [100]))
    assert len(large) == 121 and all(r.pk for r in large)
    assert [r.pk for r in large] == sorted(r.pk for r in large)

    def row(pk):
        return OutboxRecord.objects.filter(pk=pk).values(*COLUMNS).get()

    reference = row(small[0].pk)
    for record in large[1:120]:
        assert row(record.pk) == reference  # state, document, version, source, attempts ...
    for record in large:
        stored = OutboxRecord.objects.get(pk=record.pk)
        assert stored.payload == record.payload  # sealed at rest, opens to what was given
        assert stored.payload_size == record.payload_size > 0
        assert stored.patient_id_hash == record.patient_id_hash != ""
        assert stored.event_at == record.event_at and stored.deadline_at == record.deadline_at
        assert stored.waits_for == record.waits_for != []
    # the first version of seed 100 gave way to the batch's second one, as bulk_create rows do
    first, second = OutboxRecord.objects.get(pk=large[0].pk), OutboxRecord.objects.get(pk=large[120].pk)
    assert (first.state, first.version, second.state, second.version) == (
        State.SUPERSEDED,
        1,
        State.PENDING,
        2,
    )
    assert Dependency.objects.filter(record_id__in=[r.pk for r in large]).count() == sum(
        len(r.waits_for) for r in large
    )
    assert {d.parent_ref for d in Dependency.objects.filter(record=large[5])} == set(large[5].waits_for)
