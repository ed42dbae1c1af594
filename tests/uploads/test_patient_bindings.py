"""The outbox's last check: a payload whose patient does not own the visit, order or report it
names never enters the outbox."""

import pytest
from django.db import transaction

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.patients.models import PatientBinding
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord

pytestmark = pytest.mark.django_db

DETAIL = "LAB_REPORT_DETAIL"


def example(seed: int, **overrides) -> dict:
    return load_catalogue().interface(DETAIL).example(seed, **overrides)


def test_a_payload_naming_another_patient_visit_is_refused_before_the_outbox():
    a = example(1)
    outbox.enqueue_many([outbox.Item(DETAIL, a)], source="test")

    with (
        pytest.raises(PatientConflict) as caught,
        transaction.atomic(),
    ):  # as callers do: the batch rolls back
        outbox.enqueue_many(
            [
                outbox.Item("LAB_REPORT_PDF", load_catalogue().interface("LAB_REPORT_PDF").example(9)),
                outbox.Item(DETAIL, example(2, visitId=a["visitId"])),
            ],
            source="test",
        )

    assert [(e["item"], e["field"], e["rule"]) for e in caught.value.errors] == [
        (1, "visitId", "patientMismatch")
    ]
    assert OutboxRecord.objects.count() == 1  # the whole batch was refused


def test_two_patients_on_one_report_number_in_one_batch_are_refused():
    a = example(1)
    with pytest.raises(PatientConflict) as caught, transaction.atomic():
        outbox.enqueue_many([outbox.Item(DETAIL, a), outbox.Item(DETAIL, example(2, reportId=a["reportId"]))])
    assert {e["field"] for e in caught.value.errors} == {"reportId"}
    assert not OutboxRecord.objects.exists()


def test_the_spec_names_the_identifiers_a_patient_owns():
    spec = load_catalogue().interface(DETAIL)
    kinds = {kind for kind, _, _ in spec.bound_refs(example(3))}
    assert kinds == {"visit", "labReport", "application"}


def test_fix_and_redrive_cannot_move_a_visit_to_another_patient():
    a = example(1)
    record = outbox.enqueue_many([outbox.Item(DETAIL, a)], source="test")[0]
    OutboxRecord.objects.filter(pk=record.pk).update(state="attention")
    other = example(2)["patient"]

    with pytest.raises(PatientConflict), transaction.atomic():
        outbox.redrive([record.pk], payload_fix={"patient": other})

    record.refresh_from_db()
    assert record.state == "attention" and record.payload["patient"] == a["patient"]
    assert (
        outbox.redrive([record.pk], payload_fix={"reportTitle": "血常规"}) == 1
    )  # a fix of the same patient is fine


def test_a_large_batch_binds_new_identifiers_keeps_bound_ones_and_still_finds_a_conflict():
    """Fifty bindings or more go in one INSERT … ON CONFLICT DO NOTHING (bulkinsert.insert):
    identifiers already bound stay as they were, new ones are bound, and one bound to another
    patient still refuses the whole batch."""
    first = [example(seed) for seed in range(100, 110)]
    outbox.enqueue_many([outbox.Item(DETAIL, p) for p in first], source="test")
    bound = {(b.kind, b.ref): b.pk for b in PatientBinding.objects.all()}
    assert len(bound) == 30  # visit, lab report and application of each

    again = first + [example(seed) for seed in range(110, 130)]  # 30 bound, 60 new: 90 bindings
    outbox.enqueue_many([outbox.Item(DETAIL, p) for p in again], source="test")
    after = {(b.kind, b.ref): b.pk for b in PatientBinding.objects.all()}
    assert len(after) == 90 and all(after[key] == pk for key, pk in bound.items())

    stolen = example(200, visitId=first[3]["visitId"])  # another patient naming a bound visit
    batch = [example(seed) for seed in range(201, 230)] + [stolen]
    with pytest.raises(PatientConflict) as caught, transaction.atomic():
        outbox.enqueue_many([outbox.Item(DETAIL, p) for p in batch], source="test")
    assert [(e["item"], e["field"], e["rule"]) for e in caught.value.errors] == [
        (29, "visitId", "patientMismatch")
    ]
    assert PatientBinding.objects.count() == 90  # the refused batch bound nothing
