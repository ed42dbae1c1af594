"""The data-quality feedback loop (issue 16, interfaces.md §G) against the real platform simulator
process and the real database: the platform raises findings, the scheduled pull stores them
attached to the outbox records they name, ops see, fix through the outbox's fix-and-re-drive,
answer, and the replies reach the platform through the outbox."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule

from hospital_interop.audit.models import Action, AuditRecord
from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.quality import tasks as quality_tasks
from hospital_interop.quality.models import Assignee, FindingState, Kind, PullCursor, QcFinding
from hospital_interop.quality.schedules import ensure_pull_schedule
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads import tasks as upload_tasks
from hospital_interop.uploads.models import OutboxRecord, State
from tests.delivery_fixtures import wait_until

pytestmark = pytest.mark.django_db

LAB = "LAB_REPORT_DETAIL"
ORG = "12110000400000000X"


@pytest.fixture
def inline(platform_settings):
    """The workers' own code paths, run in this process against the simulator: delivery, and the
    periodic pull task (what beat starts)."""
    upload_tasks._client = quality_tasks._client = None

    class Run:
        @staticmethod
        def deliver():
            for _ in range(5):
                upload_tasks.deliver()

        @staticmethod
        def pull():
            return quality_tasks.pull_feedback()

    yield Run
    upload_tasks._client = quality_tasks._client = None


@pytest.fixture
def ops(client, make_user):
    make_user("ops-qc", role="ops")
    client.login(username="ops-qc", password="pw-for-tests-0")
    return client


def sent_lab_reports(inline, *seeds) -> list[OutboxRecord]:
    spec = load_catalogue().interface(LAB)
    records = [outbox.enqueue(LAB, spec.example(seed)) for seed in seeds]
    inline.deliver()
    for r in records:
        r.refresh_from_db()
        assert r.state == State.DONE, r.last_message
    return records


def raise_three(sim, content: OutboxRecord, late: OutboxRecord) -> dict[str, dict]:
    raised = sim.raise_findings(
        {
            "kind": "content",
            "serviceCode": LAB,
            "businessKey": content.business_key,
            "field": "reportRemark",
            "rule": "plausibility",
            "message": "报告备注与检验结果不符，请核实后修正重传。",
            "issuer": "WJW",
        },
        {"kind": "missing", "serviceCode": LAB, "businessKey": f"{ORG}|LRMISSING01", "replyInHours": 10},
        {"kind": "late", "serviceCode": LAB, "businessKey": late.business_key, "replyInHours": -2},
    )
    return {f["kind"]: f for f in raised}


def reply(client, finding: QcFinding, result: str, note: str = "") -> str:
    r = client.post(
        reverse("quality:reply", args=[finding.pk]), {"result": result, "note": note}, follow=True
    )
    assert r.status_code == 200
    return r.content.decode()


def test_three_findings_are_pulled_seen_fixed_answered_and_the_platform_holds_the_replies(sim, inline, ops):
    content_rec, late_rec = sent_lab_reports(inline, 501, 502)
    raised = raise_three(sim, content_rec, late_rec)

    # the scheduled pull: three findings, each attached to the record it names
    assert inline.pull() == {"pages": 1, "received": 3, "created": 3}
    found = {f.kind: f for f in QcFinding.objects.all()}
    assert {k: f.feedback_id for k, f in found.items()} == {k: f["feedbackId"] for k, f in raised.items()}
    assert found[Kind.CONTENT].record == content_rec and found[Kind.CONTENT].record_version == 1
    assert found[Kind.LATE].record == late_rec
    assert found[Kind.MISSING].record is None
    assert found[Kind.CONTENT].patient_id_hash == content_rec.patient_id_hash
    assert {f.assignee for f in found.values()} == {Assignee.LAB}  # lab reports go to the lab
    assert (found[Kind.CONTENT].issuer, found[Kind.MISSING].issuer) == ("WJW", "ZKZX")

    # ops see them: list with issuer and deadline, counts on the list and on the upload dashboard
    page = ops.get(reverse("quality:findings")).content.decode()
    for f in found.values():
        assert f.feedback_id in page
    assert "卫健委" in page and "质控中心" in page and "已逾期" in page
    assert found[Kind.LATE].reply_by.astimezone().strftime("%Y-%m-%d %H:%M") in page
    dashboard = ops.get(reverse("uploads:dashboard")).content.decode()
    for html in (page, dashboard):
        assert 'data-count="open">3<' in html
        assert 'data-count="due_24h">1<' in html  # the missing record, due in 10 h
        assert 'data-count="overdue">1<' in html  # the late one, 2 h past its deadline
    only_missing = ops.get(reverse("quality:findings"), {"kind": "missing"}).content.decode()
    assert (
        found[Kind.MISSING].feedback_id in only_missing
        and found[Kind.CONTENT].feedback_id not in only_missing
    )
    overdue = ops.get(reverse("quality:findings"), {"due": "overdue"}).content.decode()
    assert found[Kind.LATE].feedback_id in overdue and found[Kind.MISSING].feedback_id not in overdue

    # the detail page leads to the record and its fix-and-re-drive; the record page shows the finding
    detail = ops.get(reverse("quality:finding", args=[found[Kind.CONTENT].pk])).content.decode()
    record_url = reverse("uploads:record", args=[content_rec.pk])
    assert record_url in detail and "reportRemark" in detail
    record_page = ops.get(record_url).content.decode()
    assert found[Kind.CONTENT].feedback_id in record_page and 'id="fix-form"' in record_page

    # "fixed" before anything was re-sent is refused, precisely
    html = reply(ops, found[Kind.CONTENT], "1")
    assert "该记录在收到反馈后尚未重新上传" in html and "修正并重推" in html
    assert QcFinding.objects.get(pk=found[Kind.CONTENT].pk).state == FindingState.OPEN

    # fix through the outbox's own path: the accepted record goes again as version 2
    fixed_remark = "已核对原始检验结果，备注更正后重传。"
    r = ops.post(
        reverse("uploads:fix", args=[content_rec.pk]),
        {"fix": json.dumps({"reportRemark": fixed_remark}, ensure_ascii=False)},
        follow=True,
    )
    assert "已保存修正并重推" in r.content.decode()
    v2 = OutboxRecord.objects.get(interface=LAB, business_key=content_rec.business_key, version=2)
    inline.deliver()
    v2.refresh_from_db()
    assert v2.state == State.DONE
    held = sim.record(LAB, content_rec.business_key)
    assert held["version"] == 2 and held["payload"]["reportRemark"] == fixed_remark

    # answer all three
    assert "已回复" in reply(ops, found[Kind.CONTENT], "1")
    html = reply(ops, found[Kind.LATE], "3")
    assert "处理结果为“无法修改”时必须填写处理说明" in html
    assert "已回复" in reply(ops, found[Kind.LATE], "3", "LIS 故障停机两天，已恢复，历史记录无法补在时限内。")
    assert "已回复" in reply(ops, found[Kind.MISSING], "2", "该标本已退检，报告未发出，无需上传。")
    assert "该反馈已回复" in reply(ops, found[Kind.MISSING], "2", "再次回复")

    replies = OutboxRecord.objects.filter(interface="QC_FEEDBACK_REPLY")
    assert replies.count() == 3
    inline.deliver()
    assert set(replies.values_list("state", flat=True)) == {State.DONE}

    held = {r["feedbackId"]: r for r in sim.qc_replies()}
    assert len(held) == 3
    fixed = held[raised["content"]["feedbackId"]]
    assert fixed["result"] == "1" and fixed["resentAt"] and fixed["handledBy"] == "ops-qc"
    assert held[raised["late"]["feedbackId"]]["result"] == "3"
    assert held[raised["missing"]["feedbackId"]]["note"] == "该标本已退检，报告未发出，无需上传。"
    page = ops.get(reverse("quality:findings"), {"state": ""}).content.decode()
    assert 'data-count="open">0<' in page and page.count("已回复") >= 3

    # reads and writes of the patient-linked findings are in the audit trail, by digest only
    writes = AuditRecord.objects.filter(object_type="quality.QcFinding", action=Action.UPDATE)
    assert writes.filter(patient=content_rec.patient_id_hash).exists()
    assert AuditRecord.objects.filter(object_type="quality.QcFinding", action=Action.VIEW).exists()
    assert AuditRecord.objects.filter(object_type="quality.QcFinding", action=Action.SEARCH).exists()


def test_the_pull_is_idempotent_keeps_its_cursor_and_a_reissued_finding_opens_again(sim, inline, ops):
    (content_rec,) = sent_lab_reports(inline, 511)
    for n in range(3):
        sim.raise_findings(
            {"kind": "content", "serviceCode": LAB, "businessKey": content_rec.business_key, "field": f"f{n}"}
        )
    assert inline.pull()["created"] == 3
    assert inline.pull()["created"] == 0  # the same feed again: nothing new, nothing doubled
    assert QcFinding.objects.count() == 3
    cursor = PullCursor.objects.get(feed="QC_FEEDBACK_QUERY")
    assert cursor.pulled_at and cursor.last_error == ""

    first = QcFinding.objects.order_by("pk").first()
    reply(ops, first, "2", "经核实数据无误。")
    assert QcFinding.objects.get(pk=first.pk).state == FindingState.ANSWERED
    sim.raise_findings(
        {
            "kind": "content",
            "serviceCode": LAB,
            "businessKey": content_rec.business_key,
            "feedbackId": first.feedback_id,
            "message": "回复理由不充分，请再次核实。",
        }
    )
    assert inline.pull()["created"] == 0
    again = QcFinding.objects.get(pk=first.pk)
    assert (again.state, again.times_issued, again.message) == (
        FindingState.OPEN,
        2,
        "回复理由不充分，请再次核实。",
    )
    assert again.reply_result == "" and QcFinding.objects.count() == 3

    # a platform that fails leaves the cursor where it was and says why
    kept = PullCursor.objects.get(feed="QC_FEEDBACK_QUERY").cursor
    sim.set_faults(force_code="5000", services=["QC_FEEDBACK_QUERY"])
    with pytest.raises(Exception, match="数据质量反馈查询失败"):
        inline.pull()
    after = PullCursor.objects.get(feed="QC_FEEDBACK_QUERY")
    assert after.cursor == kept and "5000" in after.last_error


def test_bad_reply_input_gets_precise_chinese_errors(sim, inline, ops):
    (rec,) = sent_lab_reports(inline, 521)
    sim.raise_findings({"kind": "late", "serviceCode": LAB, "businessKey": rec.business_key})
    inline.pull()
    finding = QcFinding.objects.get()
    assert "请选择处理结果：已修正并重传、无需修改或无法修改" in reply(ops, finding, "9", "x")
    assert "请选择处理结果" in reply(ops, finding, "", "x")
    assert "处理结果为“无需修改”时必须填写处理说明" in reply(ops, finding, "2", "   ")
    assert "处理说明最多 500 字，当前 501 字" in reply(ops, finding, "3", "长" * 501)
    assert QcFinding.objects.get().state == FindingState.OPEN
    assert not OutboxRecord.objects.filter(interface="QC_FEEDBACK_REPLY").exists()


def test_assignment_and_the_lab_sees_only_its_own(sim, inline, ops, make_user, client):
    (rec,) = sent_lab_reports(inline, 531)
    sim.raise_findings(
        {"kind": "content", "serviceCode": LAB, "businessKey": rec.business_key},
        {"kind": "missing", "serviceCode": LAB, "businessKey": f"{ORG}|LRMISSING09"},
    )
    inline.pull()
    content, missing = QcFinding.objects.order_by("pk")
    r = ops.post(reverse("quality:assign", args=[missing.pk]), {"assignee": "emr"}, follow=True)
    assert "已分派给电子病历" in r.content.decode()
    assert (
        "请选择负责角色"
        in ops.post(
            reverse("quality:assign", args=[missing.pk]), {"assignee": "nobody"}, follow=True
        ).content.decode()
    )

    client.logout()
    make_user("lab-qc", role="lab")
    client.login(username="lab-qc", password="pw-for-tests-0")
    page = client.get(reverse("quality:findings")).content.decode()
    assert content.feedback_id in page and missing.feedback_id not in page
    assert client.get(reverse("quality:finding", args=[missing.pk])).status_code == 404
    assert client.post(reverse("quality:assign", args=[content.pk]), {"assignee": "ops"}).status_code == 403
    assert "已回复" in reply(client, content, "2", "复核原始记录，结果无误。")
    make_user("clinician-qc", role="clinician")
    client.login(username="clinician-qc", password="pw-for-tests-0")
    assert client.get(reverse("quality:findings")).status_code == 403


def test_the_pull_is_a_periodic_task_whose_interval_ops_edit_in_the_admin():
    from hospital_interop.celery import app

    task = ensure_pull_schedule()  # what runs after every migrate
    assert task.name == "数据质量反馈拉取" and task.enabled
    assert task.task == "hospital_interop.quality.tasks.pull_feedback"
    assert (task.interval.every, task.interval.period) == (600, "seconds")
    app.loader.import_default_modules()
    assert task.task in app.tasks
    # ops change the interval in the admin; the next migrate leaves it
    task.interval = IntervalSchedule.objects.get_or_create(every=120, period="seconds")[0]
    task.save()
    assert ensure_pull_schedule().interval.every == 120


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_pull_the_findings_on_their_schedule(sim, processes, platform_settings):
    """Real processes: beat starts the periodic pull, a worker runs it against the simulator."""
    (rec,) = [outbox.enqueue(LAB, load_catalogue().interface(LAB).example(551))]
    processes.worker(DELIVERY_SWEEP_SECONDS="1")
    wait_until(lambda: OutboxRecord.objects.get(pk=rec.pk).state == State.DONE, 60, message="delivery")
    sim.raise_findings({"kind": "content", "serviceCode": LAB, "businessKey": rec.business_key})
    task = ensure_pull_schedule()
    task.interval = IntervalSchedule.objects.get_or_create(every=1, period="seconds")[0]
    task.save()
    processes.beat(DELIVERY_SWEEP_SECONDS="1")
    finding = wait_until(
        lambda: QcFinding.objects.filter(record=rec).first(), 60, message="the scheduled pull"
    )
    assert finding.kind == Kind.CONTENT and finding.state == FindingState.OPEN
    wait_until(
        lambda: PullCursor.objects.filter(feed="QC_FEEDBACK_QUERY", pulled_at__isnull=False).exists(), 10
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_ops_answer_a_finding_in_the_browser(sim, inline, live_server, page, make_user, artifacts_dir):
    (rec,) = sent_lab_reports(inline, 541)
    [raised] = sim.raise_findings(
        {
            "kind": "late",
            "serviceCode": LAB,
            "businessKey": rec.business_key,
            "replyInHours": 5,
            "issuer": "WJW",
        }
    )
    inline.pull()
    make_user("ops-qc-web", role="ops")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "ops-qc-web")
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.click("text=数据质量反馈")
    row = page.locator(f"#qc-list tr[data-feedback='{raised['feedbackId']}']")
    assert "卫健委" in row.inner_text() and "超时上传" in row.inner_text()
    assert page.locator("#qc-counts [data-count=due_24h]").inner_text() == "1"
    row.locator("a").first.click()
    assert rec.business_key in page.locator("#qc-finding").inner_text()
    page.check("#reply-form input[value='3']")
    page.click("#reply-form button[type=submit]")
    assert "处理结果为“无法修改”时必须填写处理说明" in page.locator(".messages").inner_text()
    page.check("#reply-form input[value='3']")
    page.fill("#id_note", "LIS 停机期间的报告，已补传，无法追回时效。")
    page.click("#reply-form button[type=submit]")
    assert "已回复" in page.locator(".messages").inner_text()
    page.screenshot(path=str(artifacts_dir / "quality-finding.png"), full_page=True)
    inline.deliver()
    [held] = sim.qc_replies(feedbackId=raised["feedbackId"])
    assert (held["result"], held["handledBy"]) == ("3", "ops-qc-web")
    assert "/ops/quality/" in page.url and rec.business_key not in page.url
