"""The outbox's own rules, on the real database: enqueue, versions, voids, claims, leases, outcomes."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from hospital_interop.municipal.client import CallResult, Outcome
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services
from hospital_interop.uploads.models import Attempt, InterfacePolicy, OutboxRecord, State

pytestmark = pytest.mark.django_db


def example(code, seed=0, **overrides):
    return load_catalogue().interface(code).example(seed, **overrides)


def test_bad_payload_is_rejected_with_field_errors_and_writes_nothing():
    payload = example("LAB_REPORT_DETAIL")
    payload.pop("reportId")
    with pytest.raises(services.PayloadInvalid) as err:
        services.enqueue("LAB_REPORT_DETAIL", payload)
    assert {"field": "reportId", "rule": "required"}.items() <= err.value.errors[0].items()
    assert OutboxRecord.objects.count() == 0


def test_newer_version_supersedes_an_unsent_older_one():
    first = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 1))
    second = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 1))
    first.refresh_from_db()
    assert (first.version, second.version) == (1, 2)
    assert first.state == State.SUPERSEDED and second.state == State.PENDING
    assert first.business_key == second.business_key


def test_void_of_a_report_never_sent_cancels_it_locally():
    report = services.enqueue("EXAM_RESULT_SUBMIT", example("EXAM_RESULT_SUBMIT", 3))
    spec = load_catalogue().interface("EXAM_REPORT_VOID")
    void_payload = spec.example(3, **{k: report.payload[k] for k in spec.key})
    void = services.enqueue("EXAM_REPORT_VOID", void_payload)
    report.refresh_from_db()
    assert report.state == State.VOIDED
    assert void.state == State.VOIDED and "从未上传" in void.last_message


def test_void_of_an_accepted_report_is_sent():
    report = services.enqueue("EXAM_RESULT_SUBMIT", example("EXAM_RESULT_SUBMIT", 4))
    OutboxRecord.objects.filter(pk=report.pk).update(state=State.DONE, accepted_at=timezone.now())
    spec = load_catalogue().interface("EXAM_REPORT_VOID")
    void = services.enqueue("EXAM_REPORT_VOID", spec.example(4, **{k: report.payload[k] for k in spec.key}))
    assert void.state == State.PENDING


def test_children_record_their_parents():
    reg_spec = load_catalogue().interface("OP_REGISTRATION")
    visit_spec = load_catalogue().interface("OP_VISIT")
    reg = reg_spec.example(5)
    visit = visit_spec.example(5, registrationId=reg["registrationId"], orgCode=reg["orgCode"])
    record = services.enqueue("OP_VISIT", visit)
    assert record.waits_for == [f"OP_REGISTRATION#{reg['orgCode']}|{reg['registrationId']}"]
    assert services.blocking_reason(record).startswith("等待上级记录")
    parent = services.enqueue("OP_REGISTRATION", reg)
    OutboxRecord.objects.filter(pk=parent.pk).update(state=State.DONE)
    assert services.blocking_reason(record) == ""


def test_a_child_whose_parent_never_comes_goes_to_attention_after_the_maximum_age():
    class NoCalls:
        def call(self, *args):
            raise AssertionError("a waiting child must not be sent")

    reg = example("OP_REGISTRATION", 41)
    visit = example("OP_VISIT", 41, registrationId=reg["registrationId"], orgCode=reg["orgCode"])
    fresh = services.enqueue("OP_VISIT", visit)
    assert services.deliver_claimed(services.claim(fresh.pk), NoCalls()) == {"waiting": 1}
    fresh.refresh_from_db()
    assert fresh.state == State.PENDING and fresh.last_message.startswith("等待上级记录")

    OutboxRecord.objects.filter(pk=fresh.pk).update(
        next_attempt_at=timezone.now(), event_at=timezone.now() - timedelta(hours=73)
    )
    assert services.deliver_claimed(services.claim(fresh.pk), NoCalls()) == {State.ATTENTION: 1}
    fresh.refresh_from_db()
    assert fresh.state == State.ATTENTION and fresh.next_attempt_at is None
    assert fresh.last_message.startswith(
        "等待超过 72 小时仍不能发送：等待上级记录被平台接收：OP_REGISTRATION#"
    )

    assert (
        services.redrive([fresh.pk]) == 1
    )  # ops re-drive it (the parent is on its way): a full max age again
    assert services.deliver_claimed(services.claim(fresh.pk), NoCalls()) == {"waiting": 1}
    fresh.refresh_from_db()
    assert fresh.state == State.PENDING and fresh.redriven_at is not None


def test_claim_takes_only_due_rows_and_marks_them_sending():
    due = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 6))
    later = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 7))
    OutboxRecord.objects.filter(pk=later.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    claimed = services.claim(limit=10, worker="w1")
    assert [r.pk for r in claimed] == [due.pk]
    assert claimed[0].state == State.SENDING and claimed[0].claimed_by == "w1"
    assert services.claim(limit=10, worker="w2") == []


def test_paused_interface_is_not_claimed():
    services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 8))
    InterfacePolicy.objects.create(interface="LAB_REPORT_DETAIL", enabled=False)
    assert services.claim(limit=10) == []


def test_enqueue_many_stores_a_batch_with_versions_parents_and_superseding():
    lab = [example("LAB_REPORT_DETAIL", seed) for seed in (21, 22)]
    first = services.enqueue("LAB_REPORT_DETAIL", lab[0])  # already stored: the batch's copy is version 2
    reg = example("OP_REGISTRATION", 23)
    visit = example("OP_VISIT", 23, registrationId=reg["registrationId"], orgCode=reg["orgCode"])
    items = [services.Item("LAB_REPORT_DETAIL", p) for p in lab]
    items += [
        services.Item("OP_VISIT", visit),
        services.Item("OP_REGISTRATION", reg),
        services.Item("LAB_REPORT_DETAIL", lab[1]),
    ]  # the same key twice: the later one is newer
    with transaction.atomic():
        records = services.enqueue_many(items, source="batch")
    first.refresh_from_db()
    assert first.state == State.SUPERSEDED and first.last_message == "已被第 2 版取代"
    assert [(r.interface, r.version, r.state) for r in records] == [
        ("LAB_REPORT_DETAIL", 2, State.PENDING),
        ("LAB_REPORT_DETAIL", 1, State.SUPERSEDED),
        ("OP_VISIT", 1, State.PENDING),
        ("OP_REGISTRATION", 1, State.PENDING),
        ("LAB_REPORT_DETAIL", 2, State.PENDING),
    ]
    assert all(r.pk for r in records) and {r.source for r in records} == {"batch"}
    assert records[2].waits_for == [f"OP_REGISTRATION#{reg['orgCode']}|{reg['registrationId']}"]
    assert list(records[2].dependencies.values_list("parent_interface", flat=True)) == ["OP_REGISTRATION"]
    assert records[0].patient_id_hash and "*" in records[0].patient_display  # masked, found by data element


def test_enqueue_many_is_all_or_nothing_and_names_every_bad_item():
    good, bad = example("LAB_REPORT_DETAIL", 31), example("LAB_REPORT_DETAIL", 32)
    bad.pop("reportId")
    worse = example("OP_REGISTRATION", 33)
    worse.pop("registrationId")
    with pytest.raises(services.BatchInvalid) as err:
        services.enqueue_many(
            [
                services.Item("LAB_REPORT_DETAIL", good),
                services.Item("LAB_REPORT_DETAIL", bad),
                services.Item("OP_REGISTRATION", worse),
            ]
        )
    assert [i for i, _ in err.value.failures] == [1, 2]
    assert err.value.failures[0][1].errors[0]["field"] == "reportId"
    assert {(e["item"], e["field"]) for e in err.value.errors} >= {(1, "reportId"), (2, "registrationId")}
    assert isinstance(
        err.value, services.PayloadInvalid
    )  # callers that catch one invalid record catch a batch
    assert OutboxRecord.objects.count() == 0


def test_enqueue_many_can_skip_items_identical_to_the_latest_version_and_says_which_row_holds_it():
    a, b = example("LAB_REPORT_DETAIL", 51), example("LAB_REPORT_DETAIL", 52)
    a_v1 = services.enqueue("LAB_REPORT_DETAIL", a)
    a_changed = {**a, "reportRemark": "复核后修改"}
    items = [services.Item("LAB_REPORT_DETAIL", p) for p in (a, a_changed, a_changed, b, b, a)]
    with transaction.atomic():
        results = services.enqueue_many(items, source="batch", skip_unchanged=True)
    assert [(r.record.business_key, r.record.version, r.created) for r in results] == [
        (a_v1.business_key, 1, False),  # identical to the stored version: nothing new
        (a_v1.business_key, 2, True),
        (a_v1.business_key, 2, False),  # identical to the version stored just before it in the batch
        (results[3].record.business_key, 1, True),
        (results[3].record.business_key, 1, False),
        (a_v1.business_key, 3, True),  # like version 1, but version 2 came in between: a change
    ]
    assert results[0].record.pk == a_v1.pk and results[2].record.pk == results[1].record.pk
    assert list(
        OutboxRecord.objects.filter(business_key=a_v1.business_key)
        .order_by("version")
        .values_list("version", "state")
    ) == [(1, State.SUPERSEDED), (2, State.SUPERSEDED), (3, State.PENDING)]
    assert OutboxRecord.objects.count() == 4

    again = services.enqueue_many(items[3:], skip_unchanged=True)  # a repeated load stores nothing
    assert [(r.record.version, r.created) for r in again] == [(1, False), (1, False), (3, False)]
    assert OutboxRecord.objects.count() == 4


def test_a_checked_item_is_stored_without_being_validated_again(monkeypatch):
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    checked, errors = services.check(services.Item(spec.code, example(spec.code, 53)))
    assert errors == [] and checked.key == services.business_key(spec, checked.payload)
    bad, errors = services.check(services.Item(spec.code, {**checked.payload, "reportId": ""}))
    assert bad is None and errors[0]["field"] == "reportId"

    calls = []
    monkeypatch.setattr(type(spec), "validate", lambda self, payload: calls.append(self.code) or [])
    [record] = services.enqueue_many([checked])
    assert calls == [] and record.version == 1 and record.payload == checked.payload


def test_a_void_in_a_batch_sees_the_report_stored_before_it_in_the_same_batch():
    report = example("EXAM_RESULT_SUBMIT", 34)
    spec = load_catalogue().interface("EXAM_REPORT_VOID")
    void = spec.example(34, **{k: report[k] for k in spec.key})
    stored, voided = services.enqueue_many(
        [services.Item("EXAM_RESULT_SUBMIT", report), services.Item("EXAM_REPORT_VOID", void)]
    )
    stored.refresh_from_db()
    assert stored.state == State.VOIDED  # never sent after its void
    assert voided.state == State.VOIDED and "从未上传" in voided.last_message


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_row():
    if connection.vendor != "postgresql":
        pytest.fail(
            "SKIP LOCKED semantics are exercised on PostgreSQL; run the suite with DATABASE_URL=postgres://…"
        )
    for seed in range(60):
        services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 100 + seed))
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(3)

    def worker(name):
        barrier.wait()
        ids = []
        while batch := services.claim(limit=7, worker=name):
            ids += [r.pk for r in batch]
        claimed[name] = ids
        connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [pk for ids in claimed.values() for pk in ids]
    assert len(every) == 60 and len(set(every)) == 60


def test_expired_lease_is_reclaimed():
    record = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 9))
    services.claim(record.pk, worker="dead")
    OutboxRecord.objects.filter(pk=record.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert services.reclaim_expired_leases() == 1
    record.refresh_from_db()
    assert record.state == State.RETRY and record.next_attempt_at <= timezone.now()


def _claimed(seed):
    record = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", seed))
    return services.claim(record.pk, limit=1, worker="w")[0]


def test_outcomes_move_rows_per_the_code_table():
    now = timezone.now()
    accepted = _claimed(20)
    assert (
        services.record_outcome(
            accepted, CallResult(Outcome.ACCEPTED, code="0", data={"receiptId": "R1"}), started_at=now
        )
        == State.DONE
    )
    accepted.refresh_from_db()
    assert accepted.receipt == "R1" and accepted.accepted_at and accepted.attempts == 1

    invalid = _claimed(21)
    errors = [{"field": "items[0].resultValue", "rule": "required", "message": "必填"}]
    services.record_outcome(
        invalid, CallResult(Outcome.ATTENTION, code="2001", errors=errors), started_at=now
    )
    invalid.refresh_from_db()
    assert invalid.state == State.ATTENTION and invalid.last_errors == errors

    limited = _claimed(22)
    services.record_outcome(limited, CallResult(Outcome.RETRY, code="3001", retry_after=30), started_at=now)
    limited.refresh_from_db()
    assert limited.state == State.RETRY
    assert timedelta(seconds=29) < limited.next_attempt_at - now < timedelta(seconds=32)
    assert Attempt.objects.filter(record=limited, code="3001").exists()


def test_too_old_record_goes_to_attention():
    record = _claimed(23)
    OutboxRecord.objects.filter(pk=record.pk).update(event_at=timezone.now() - timedelta(hours=100))
    record.refresh_from_db()
    assert (
        services.record_outcome(
            record, CallResult(Outcome.RETRY, message="HTTP 500"), started_at=timezone.now()
        )
        == State.ATTENTION
    )
    record.refresh_from_db()
    assert "超过最长重试时间" in record.last_message


def test_backoff_grows_with_jitter_and_is_capped(settings):
    settings.DELIVERY = {**settings.DELIVERY, "BACKOFF_BASE_SECONDS": 5, "BACKOFF_CAP_SECONDS": 60}
    result = CallResult(Outcome.RETRY)
    assert 2.5 <= services.retry_delay(1, result) <= 5
    assert 10 <= services.retry_delay(3, result) <= 20
    assert 30 <= services.retry_delay(12, result) <= 60


def test_redrive_with_a_fix_is_validated_first():
    record = _claimed(24)
    services.record_outcome(record, CallResult(Outcome.ATTENTION, code="2001"), started_at=timezone.now())
    with pytest.raises(services.PayloadInvalid):
        services.redrive([record.pk], payload_fix={"reportId": ""})
    record.refresh_from_db()
    assert record.state == State.ATTENTION
    with transaction.atomic():
        assert services.redrive([record.pk], payload_fix={"reportRemark": "复核后重传"}) == 1
    record.refresh_from_db()
    assert record.state == State.PENDING and record.payload["reportRemark"] == "复核后重传"


def test_a_fix_of_an_accepted_record_is_sent_as_its_next_version():
    """After a data-quality finding ops fix a record the platform accepted: the fix is the key's
    next version (the platform replaces the record); an older version or a key change is refused."""
    record = _claimed(25)
    services.record_outcome(record, CallResult(Outcome.ACCEPTED, code="0"), started_at=timezone.now())
    record.refresh_from_db()
    assert record.state == State.DONE and services.fixable(record)
    with pytest.raises(services.PayloadInvalid) as err:
        services.redrive([record.pk], payload_fix={"reportId": "OTHER0000001"})
    assert err.value.errors[0]["rule"] == "key"
    with transaction.atomic():
        assert services.redrive([record.pk], payload_fix={"reportRemark": "质控反馈后更正"}) == 1
    v2 = OutboxRecord.objects.get(interface=record.interface, business_key=record.business_key, version=2)
    assert v2.state == State.PENDING and v2.payload["reportRemark"] == "质控反馈后更正"
    record.refresh_from_db()
    assert record.state == State.DONE and record.payload["reportRemark"] != "质控反馈后更正"
    assert not services.fixable(record)  # no longer the latest version
    assert services.redrive([record.pk], payload_fix={"reportRemark": "x"}) == 0


def test_concurrency_and_rate_limits_hold_back_the_excess():
    for seed in range(30, 36):
        services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", seed))
    InterfacePolicy.objects.create(interface="LAB_REPORT_DETAIL", max_in_flight=2)
    assert len(services.claim(limit=10)) == 2
    assert services.claim(limit=10) == []  # two are in flight: nothing more until they finish
    InterfacePolicy.objects.filter(interface="LAB_REPORT_DETAIL").update(max_in_flight=100, rate_per_second=3)
    services.forget_policies()
    taken = len(services.claim(limit=10))
    assert 1 <= taken <= 3  # at most three per second (the second may turn over during the test)


def test_an_older_version_failing_while_a_newer_one_waits_is_not_retried():
    first = _claimed(40)  # v1 is in flight ...
    second = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 40))  # ... when v2 arrives
    assert services.blocking_reason(second) == "同一主键的上一版本正在发送"
    services.record_outcome(
        first, CallResult(Outcome.RETRY, message="HTTP 500", http_status=500), started_at=timezone.now()
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == State.SUPERSEDED  # never re-sent over v2
    assert second.state == State.PENDING and second.next_attempt_at <= timezone.now()


def test_a_dead_workers_older_version_is_superseded_by_a_newer_one():
    first = _claimed(41)
    services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 41))
    OutboxRecord.objects.filter(pk=first.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    services.reclaim_expired_leases()
    first.refresh_from_db()
    assert first.state == State.SUPERSEDED


def test_an_older_version_without_an_answer_makes_the_newest_go_again_later():
    first = _claimed(42)
    second = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 42))
    OutboxRecord.objects.filter(pk=second.pk).update(state=State.DONE)  # v2 got through meanwhile
    services.record_outcome(first, CallResult(Outcome.RETRY, message="请求超时"), started_at=timezone.now())
    second.refresh_from_db()
    assert second.state == State.RETRY and second.next_attempt_at > timezone.now()  # lands after a late v1


def test_an_older_version_whose_answer_was_not_believed_makes_the_newest_go_again_later():
    first = _claimed(43)
    second = services.enqueue("LAB_REPORT_DETAIL", example("LAB_REPORT_DETAIL", 43))
    OutboxRecord.objects.filter(pk=second.pk).update(state=State.DONE)  # v2 got through meanwhile
    replayed = CallResult(
        Outcome.RETRY, message="应答无效：应答随机数重复", http_status=200, refused_answer="1003"
    )
    services.record_outcome(first, replayed, started_at=timezone.now())  # v1's real answer never came
    second.refresh_from_db()
    assert second.state == State.RETRY and second.next_attempt_at > timezone.now()  # lands after a late v1


def test_after_an_outage_only_rows_waiting_on_the_outage_are_brought_forward():
    """The first acceptance after platform-wide failures brings forward rows backing off from
    them, in enqueue order; a row the platform asked to wait (3001) or one held back on purpose
    (an older version's request may still land) keeps its time."""
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    rows = [
        services.enqueue("LAB_REPORT_DETAIL", spec.example(seed), wake_worker=False) for seed in range(40, 44)
    ]
    later = timezone.now() + timedelta(minutes=30)
    OutboxRecord.objects.filter(pk__in=[r.pk for r in rows]).update(
        state=State.RETRY, attempts=5, next_attempt_at=later
    )
    OutboxRecord.objects.filter(pk=rows[1].pk).update(last_code="5000")
    OutboxRecord.objects.filter(pk=rows[2].pk).update(last_code="3001")
    OutboxRecord.objects.filter(pk=rows[3].pk).update(last_message=services.LATE_RESEND)

    assert services.bring_forward("LAB_REPORT_DETAIL") == 2
    now = timezone.now()
    due = {r.pk for r in OutboxRecord.objects.filter(next_attempt_at__lte=now)}
    assert due == {rows[0].pk, rows[1].pk}
    assert [r.pk for r in services.claim(limit=20)] == [rows[0].pk, rows[1].pk]  # enqueue order
