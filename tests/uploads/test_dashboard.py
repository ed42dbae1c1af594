"""The ops dashboard and record browser, with real rows delivered to the real simulator."""

from __future__ import annotations

import pytest
from django.utils import timezone

from hospital_interop.municipal.specs import load_catalogue
from hospital_interop.uploads import services, tasks
from hospital_interop.uploads.models import OutboxRecord, State


@pytest.fixture
def inline_delivery(platform_settings):
    """Deliver with the worker's own code path, in this process, against the simulator."""
    tasks._client = None
    yield lambda: [tasks.deliver() for _ in range(5)]
    tasks._client = None


@pytest.fixture
def ops_login(make_user):
    def login(page, live_server, username="ops-dash"):
        make_user(username, role="ops", first_name="运维", last_name="赵")
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "pw-for-tests-0")
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")

    return login


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_shows_real_rows_and_redrive_delivers_a_fixed_record(
    sim, inline_delivery, live_server, page, ops_login, artifacts_dir
):
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    good = [services.enqueue("LAB_REPORT_DETAIL", spec.example(seed)) for seed in range(300, 306)]
    bad = services.enqueue("LAB_REPORT_DETAIL", spec.example(399))
    sim.set_faults(reject_keys=[bad.business_key])
    inline_delivery()
    bad.refresh_from_db()
    assert bad.state == State.ATTENTION and bad.last_code == "2001" and bad.last_errors
    assert all(OutboxRecord.objects.get(pk=r.pk).state == State.DONE for r in good)

    ops_login(page, live_server)
    page.goto(live_server.url + "/ops/uploads/")
    row = page.locator("#summary tr[data-interface=LAB_REPORT_DETAIL]")
    cells = row.locator("td").all_inner_texts()
    assert cells[5].strip() == "1"  # needs attention
    assert cells[6].strip() == "6"  # accepted today
    assert "平台接收" in page.locator("svg.chart").inner_html()
    assert bad.last_errors[0]["field"] in page.locator("body").inner_text()  # data-quality table
    page.screenshot(path=str(artifacts_dir / "uploads-dashboard.png"), full_page=True)

    row.locator("a.tag.err").click()  # → the records needing attention
    page.click(f"a[href='/ops/uploads/records/{bad.pk}/']")
    assert "平台反馈的字段错误" in page.content()
    page.fill("#id_fix", '{"reportRemark": "已核对原始结果后重传"}')
    page.click("text=保存修正并重推")
    assert "已保存修正并重推" in page.locator(".messages").inner_text()
    page.screenshot(path=str(artifacts_dir / "uploads-record.png"), full_page=True)

    sim.set_faults()  # the platform accepts the corrected record
    inline_delivery()
    bad.refresh_from_db()
    assert bad.state == State.DONE
    assert (
        sim.record("LAB_REPORT_DETAIL", bad.business_key)["payload"]["reportRemark"] == "已核对原始结果后重传"
    )
    page.reload()
    assert "已接收" in page.locator("h1").inner_text()


@pytest.mark.django_db
def test_record_browser_filters_paginates_and_exports(client, make_user):
    spec = load_catalogue().interface("OP_REGISTRATION")
    records = [services.enqueue("OP_REGISTRATION", spec.example(seed)) for seed in range(60)]
    make_user("ops-list", role="ops")
    client.login(username="ops-list", password="pw-for-tests-0")
    first = client.get("/ops/uploads/records/", {"interface": "OP_REGISTRATION"})
    assert first.status_code == 200
    assert len(first.context["rows"]) == 50 and first.context["has_more"]
    second = client.get(
        "/ops/uploads/records/", {"interface": "OP_REGISTRATION", "before": first.context["next_token"]}
    )
    assert len(second.context["rows"]) == 10 and not second.context["has_more"]
    seen = {r.pk for r in first.context["rows"]} | {r.pk for r in second.context["rows"]}
    assert seen == {r.pk for r in records}

    target = records[7]
    id_no = target.payload["patient"]["idNo"]
    redirected = client.post("/ops/uploads/records/", {"patient_id": id_no})
    assert (
        redirected.status_code == 302 and id_no not in redirected["Location"]
    )  # the form is posted: IDs stay out of URLs and logs
    assert "csrfmiddlewaretoken" not in redirected["Location"]
    by_hand = client.get("/ops/uploads/records/", {"patient_id": id_no})
    assert by_hand.status_code == 302 and by_hand["Location"] == redirected["Location"]
    by_patient = client.get(redirected["Location"])
    assert [r.pk for r in by_patient.context["rows"]] == [target.pk]
    assert id_no not in by_patient.content.decode()
    by_key = client.get("/ops/uploads/records/", {"key": target.payload["registrationId"]})
    assert [r.pk for r in by_key.context["rows"]] == [target.pk]

    bad_dates = client.get("/ops/uploads/records/", {"date_from": "2026-12-02", "date_to": "2026-12-01"})
    assert "开始日期不能晚于结束日期" in bad_dates.content.decode()

    export = client.get("/ops/uploads/records/export.csv", {"interface": "OP_REGISTRATION"})
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0].lstrip("\ufeff").startswith("编号,接口,主键") and len(lines) == 61


@pytest.mark.django_db
def test_clinicians_cannot_see_uploads_and_payload_needs_its_permission(client, make_user):
    spec = load_catalogue().interface("OP_REGISTRATION")
    record = services.enqueue("OP_REGISTRATION", spec.example(1))
    make_user("doc-x", role="clinician")
    client.login(username="doc-x", password="pw-for-tests-0")
    assert client.get("/ops/uploads/").status_code == 403
    assert client.get(f"/ops/uploads/records/{record.pk}/").status_code == 403
    client.logout()
    make_user("ops-y", role="ops")
    client.login(username="ops-y", password="pw-for-tests-0")
    text = client.get(f"/ops/uploads/records/{record.pk}/").content.decode()
    assert record.payload["registrationId"] in text  # ops hold view_decrypted_payload


@pytest.mark.django_db
def test_metrics_exposes_outbox_counts(client):
    spec = load_catalogue().interface("OP_REGISTRATION")
    services.enqueue("OP_REGISTRATION", spec.example(1))
    body = client.get("/metrics").content.decode()
    assert 'interop_outbox_records{interface="OP_REGISTRATION",state="pending"} 1' in body
    assert 'interop_outbox_oldest_pending_seconds{interface="OP_REGISTRATION"}' in body


@pytest.mark.django_db
def test_the_record_browser_counts_pages_and_jumps_to_one(client, make_user):
    """Page count and jump: 120 rows are 3 pages; page 3 holds the 20 oldest; the count stops at
    the cap so it costs the same on a huge table."""
    from hospital_interop.uploads import selectors

    now = timezone.now()
    OutboxRecord.objects.bulk_create(
        OutboxRecord(
            interface="OP_REGISTRATION",
            document="emr_outpatient",
            spec_version="1",
            business_key=f"12110000400000000X|{'K' * 60}{i:05d}",
            version=1,
            payload={},
            state=State.DONE,
            event_at=now,
            deadline_at=now,
            next_attempt_at=now,
        )
        for i in range(120)
    )
    make_user("ops-pages", role="ops")
    client.login(username="ops-pages", password="pw-for-tests-0")
    first = client.get("/ops/uploads/records/")
    text = first.content.decode()
    assert "第 1 页 / 共 3 页（120 条）" in text and 'name="p"' in text
    assert 'class="mono key" title="12110000400000000X|KKKK' in text  # full key on hover
    third = client.get("/ops/uploads/records/", {"p": "3"})
    # enqueued_at is stamped at insert (the same instant for all): newest id first, so page 3 holds 19..0
    assert [r.business_key[-5:] for r in third.context["rows"]] == [f"{i:05d}" for i in range(19, -1, -1)]
    assert "第 3 页 / 共 3 页" in third.content.decode()
    assert client.get("/ops/uploads/records/", {"p": "x"}).context["page_no"] == 1
    assert selectors.count_records(selectors.RecordFilter()) == 120
