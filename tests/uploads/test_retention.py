"""Retention of the outbox (docs/retention.md), on the real database: accepted rows move to the
archive with their attempts, payloads kept or dropped per interface policy, and every read that
needs them (versions, ordering, voids, the record browser, fix and re-drive) still finds them."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from hospital_interop.municipal.client import CallResult, Outcome
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import retention, selectors, services
from hospital_interop.uploads.models import (
    ArchivedAttempt,
    ArchivedRecord,
    Attempt,
    InterfacePolicy,
    OutboxRecord,
    State,
)

pytestmark = pytest.mark.django_db

LATER = timedelta(days=400)  # the archiving job runs "a year later": every accepted row is old enough


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.RETENTION = {**settings.RETENTION, "ARCHIVE_AFTER_DAYS": 90, "FLOOR_DAYS": 7, "BATCH": 3}


def example(code, seed=0, **overrides):
    return load_catalogue().interface(code).example(seed, **overrides)


def accepted(code, seed=0, **overrides) -> OutboxRecord:
    """A record sent and accepted through the outbox's own claim and outcome path."""
    record = services.enqueue(code, example(code, seed, **overrides), wake_worker=False)
    [claimed] = services.claim(record.pk, limit=1, interface=code)
    services.record_outcome(
        claimed,
        CallResult(
            Outcome.ACCEPTED, http_status=200, code="0", message="ok", data={"receiptId": f"R{record.pk}"}
        ),
        started_at=timezone.now(),
    )
    record.refresh_from_db()
    assert record.state == State.DONE
    return record


def archive_all(**kwargs):
    return retention.run(timezone.now() + LATER, **kwargs)


def test_an_old_accepted_row_moves_with_its_attempts_and_keeps_its_id():
    record = accepted("LAB_REPORT_DETAIL", 1)
    fresh = accepted("LAB_REPORT_DETAIL", 2)
    open_row = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 3), wake_worker=False)
    assert retention.run().records == 0  # accepted a moment ago: under the age
    OutboxRecord.objects.filter(pk=fresh.pk).update(accepted_at=timezone.now() + LATER)  # "recent"

    done = archive_all()

    assert done.records == 1 and done.attempts == 1
    assert not OutboxRecord.objects.filter(pk=record.pk).exists()
    assert set(OutboxRecord.objects.values_list("pk", flat=True)) == {fresh.pk, open_row.pk}
    archived = ArchivedRecord.objects.get(pk=record.pk)
    assert (archived.business_key, archived.version, archived.state) == (record.business_key, 1, State.DONE)
    assert archived.enqueued_at == record.enqueued_at and archived.receipt == f"R{record.pk}"
    assert archived.payload == record.payload  # the default policy keeps payloads (still sealed)
    assert not Attempt.objects.filter(record_id=record.pk).exists()
    assert ArchivedAttempt.objects.get(record_id=record.pk).outcome == "accepted"


def test_the_payload_is_dropped_when_the_interface_policy_says_so():
    InterfacePolicy.objects.create(interface="OP_REGISTRATION", archive_payload=False)
    services.forget_policies()
    dropped = accepted("OP_REGISTRATION", 5)
    kept = accepted("LAB_REPORT_DETAIL", 5)
    archive_all()
    assert ArchivedRecord.objects.get(pk=dropped.pk).payload is None
    assert ArchivedRecord.objects.get(pk=dropped.pk).payload_dropped
    assert ArchivedRecord.objects.get(pk=kept.pk).payload == kept.payload
    assert not services.fixable(ArchivedRecord.objects.get(pk=dropped.pk))  # nothing to fix it from
    assert services.redrive([dropped.pk], payload_fix={"visitType": "1"}) == 0
    detail = selectors.record_detail(dropped.pk, with_payload=True)
    assert detail["record"].archived and detail["payload"] is None
    assert detail["payload_problem"] == retention.DROPPED_NOTE


def test_an_interface_policy_sets_its_own_age():
    InterfacePolicy.objects.create(interface="OP_REGISTRATION", archive_after_days=1000)
    services.forget_policies()
    long_kept = accepted("OP_REGISTRATION", 6)
    default = accepted("LAB_REPORT_DETAIL", 6)
    archive_all()
    assert OutboxRecord.objects.filter(pk=long_kept.pk).exists()
    assert ArchivedRecord.objects.filter(pk=default.pk).exists()


def test_rows_of_a_key_still_in_flight_stay_hot():
    first = accepted("LAB_REPORT_DETAIL", 7)
    second = services.enqueue(
        "LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 7, reportRemark="第二版"), wake_worker=False
    )
    archive_all()
    assert OutboxRecord.objects.filter(pk__in=[first.pk, second.pk]).count() == 2


def test_a_new_version_of_an_archived_key_gets_the_next_number():
    v1 = accepted("LAB_REPORT_DETAIL", 8)
    v2 = accepted("LAB_REPORT_DETAIL", 8, reportRemark="第二版")
    assert v2.version == 2
    archive_all()
    assert ArchivedRecord.objects.filter(pk__in=[v1.pk, v2.pk]).count() == 2
    v3 = services.enqueue(
        "LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 8, reportRemark="第三版"), wake_worker=False
    )
    assert v3.version == 3 and v3.state == State.PENDING
    # an unchanged resubmission of the archived latest version is recognised as unchanged
    payload = example("LAB_REPORT_DETAIL", 9)
    v1b = accepted("LAB_REPORT_DETAIL", 9)
    archive_all()
    [same] = services.enqueue_many([services.Item("LAB_REPORT_DETAIL", payload)], skip_unchanged=True)
    assert not same.created and same.record.pk == v1b.pk and same.record.archived


def test_a_child_of_an_archived_parent_is_not_held_back():
    registration = accepted("OP_REGISTRATION", 10)
    archive_all()
    assert ArchivedRecord.objects.filter(pk=registration.pk).exists()
    visit = services.enqueue("OP_VISIT", example("OP_VISIT", 10), wake_worker=False)
    assert visit.waits_for  # it names the registration as its parent
    assert services.blocking_reason(visit) == ""


def test_a_void_of_an_archived_accepted_report_is_sent():
    report = accepted("EXAM_RESULT_SUBMIT", 11)
    archive_all()
    spec = load_catalogue().interface("EXAM_REPORT_VOID")
    void = services.enqueue("EXAM_REPORT_VOID", spec.example(11, **{k: report.payload[k] for k in spec.key}))
    assert void.state == State.PENDING


def test_the_browser_finds_archived_rows_beside_hot_ones():
    old = [accepted("LAB_REPORT_DETAIL", 20 + i) for i in range(4)]
    archive_all()
    new = [accepted("LAB_REPORT_DETAIL", 30 + i) for i in range(3)]
    rows, more = selectors.search_records(selectors.RecordFilter(), limit=5)
    assert [r.pk for r in rows] == [r.pk for r in reversed(old + new)][:5] and more
    assert [r.archived for r in rows] == [False] * 3 + [True] * 2
    rows, more = selectors.search_records(
        selectors.RecordFilter(), limit=5, before=(rows[-1].enqueued_at, rows[-1].pk)
    )
    assert [r.pk for r in rows] == [old[1].pk, old[0].pk] and not more
    rows, _ = selectors.search_records(selectors.RecordFilter(), limit=2, page=3)
    assert [r.pk for r in rows] == [old[2].pk, old[1].pk]
    assert selectors.count_records(selectors.RecordFilter()) == 7
    assert selectors.count_records(selectors.RecordFilter(state=State.PENDING)) == 0
    by_key, _ = selectors.search_records(selectors.RecordFilter(key=old[0].business_key))
    assert [r.pk for r in by_key] == [old[0].pk]
    by_patient, _ = selectors.search_records(selectors.RecordFilter(patient_hash=old[0].patient_id_hash))
    assert old[0].pk in [r.pk for r in by_patient]
    detail = selectors.record_detail(old[0].pk, with_payload=True)
    assert detail["record"].archived and detail["payload"] == old[0].payload
    assert [a.outcome for a in detail["attempts"]] == ["accepted"]
    assert [v.pk for v in detail["versions"]] == [old[0].pk]


def test_the_record_page_of_an_archived_row(client, make_user):
    record = accepted("LAB_REPORT_DETAIL", 40)
    archive_all()
    make_user("ops-r", role="ops")
    client.login(username="ops-r", password="pw-for-tests-0")
    page = client.get(f"/ops/uploads/records/{record.pk}/").content.decode()
    assert "已归档" in page and record.business_key in page
    listing = client.get("/ops/uploads/records/", {"key": record.payload["reportId"]}).content.decode()
    assert f"/ops/uploads/records/{record.pk}/" in listing


def test_an_archived_accepted_record_can_be_fixed_and_sent_as_its_next_version():
    record = accepted("LAB_REPORT_DETAIL", 41)
    archive_all()
    archived = ArchivedRecord.objects.get(pk=record.pk)
    assert services.fixable(archived)
    assert services.redrive([record.pk], payload_fix={"reportRemark": "复核后更正"}) == 1
    newest = OutboxRecord.objects.get(business_key=record.business_key)
    assert newest.version == 2 and newest.payload["reportRemark"] == "复核后更正"
    assert not services.fixable(ArchivedRecord.objects.get(pk=record.pk))  # no longer the latest


def test_a_quality_finding_on_an_archived_key_brings_it_back():
    from hospital_interop.quality import services as quality

    record = accepted("LAB_REPORT_DETAIL", 42)
    archive_all()
    assert retention.restore_key("LAB_REPORT_DETAIL", record.business_key) == 1
    back = OutboxRecord.objects.get(pk=record.pk)
    assert back.enqueued_at == record.enqueued_at and back.payload == record.payload
    assert Attempt.objects.filter(record_id=record.pk).count() == 1
    assert quality.latest_record("LAB_REPORT_DETAIL", record.business_key).pk == record.pk


def test_links_from_other_tables_are_cleared_as_their_model_says():
    from hospital_interop.quality.models import Issuer, Kind, QcFinding

    record = accepted("LAB_REPORT_DETAIL", 43)
    on_finding = accepted("LAB_REPORT_DETAIL", 44)
    QcFinding.objects.create(
        feedback_id="F-1",
        issuer=Issuer.choices[0][0],
        kind=Kind.choices[0][0],
        interface=on_finding.interface,
        business_key=on_finding.business_key,
        message="问题",
        issued_at=timezone.now(),
        reply_by=timezone.now(),
        received_at=timezone.now(),
        record=on_finding,
    )
    archive_all()
    assert ArchivedRecord.objects.filter(pk=record.pk).exists()
    assert OutboxRecord.objects.filter(pk=on_finding.pk).exists()  # a key with a finding stays hot


def test_archived_rows_past_the_legal_retention_period_are_deleted(settings):
    record = accepted("LAB_REPORT_DETAIL", 45)
    archive_all()
    settings.RETENTION = {**settings.RETENTION, "LEGAL_RETENTION_DAYS": 300}
    done = archive_all()
    assert done.purged == 1
    assert not ArchivedRecord.objects.filter(pk=record.pk).exists()
    assert not ArchivedAttempt.objects.filter(record_id=record.pk).exists()


def test_the_command_moves_rows_in_batches_with_progress(capsys):
    records = [accepted("LAB_REPORT_DETAIL", 50 + i) for i in range(7)]
    OutboxRecord.objects.filter(pk__in=[r.pk for r in records]).update(
        accepted_at=timezone.now() - timedelta(days=30), enqueued_at=timezone.now() - timedelta(days=30)
    )
    call_command("archive_outbox", "--older-than-days", "20", "--batch-size", "3", "--no-progress")
    out = capsys.readouterr().out
    assert "待归档上传记录：7 条" in out and "已归档 7 条上传记录" in out
    assert ArchivedRecord.objects.count() == 7 and not OutboxRecord.objects.exists()


def test_the_beat_schedule_runs_the_job():
    from django_celery_beat.models import PeriodicTask

    from hospital_interop.uploads.schedules import ARCHIVE_TASK, sync_schedules

    sync_schedules()
    task = PeriodicTask.objects.get(name=ARCHIVE_TASK)
    assert task.task == "hospital_interop.uploads.tasks.archive_outbox" and task.enabled


def test_the_emr_status_api_answers_for_an_archived_record():
    from emr_sharing.mapping import record_types
    from emr_sharing.selectors import record_status

    rt = next(iter(record_types()))
    record = accepted(rt.interface, 60)
    archive_all()
    assert ArchivedRecord.objects.filter(pk=record.pk).exists()
    status = record_status(rt, record.business_key)
    assert (status["version"], status["state"]) == (1, State.DONE)
    assert [v["version"] for v in status["versions"]] == [1]
