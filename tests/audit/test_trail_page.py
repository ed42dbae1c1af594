"""The 审计日志 page of the security officer (安全审计员): in Chromium, filtering by an ID number
typed into the (POSTed) form, paging and the CSV export; every other role, the administrator
included, is refused; the admin shows the trail read-only to the officer alone."""

from __future__ import annotations

import csv
import io

import pytest

from hospital_interop.audit import services
from hospital_interop.audit.context import Actor
from hospital_interop.audit.models import Action, ActorType, AuditRecord
from hospital_interop.patients.models import id_key
from tests.recognition.conftest import resident_id

PASSWORD = "pw-for-tests-0"


def accesses(id_no: str, n: int, *, username: str = "ops-zhao", ip: str = "10.1.1.1") -> None:
    services.record_many(
        [
            services.Event(Action.VIEW, "uploads.OutboxRecord", str(1000 + i), patient=id_key("01", id_no))
            for i in range(n)
        ],
        actor=Actor(ActorType.USER, username, 3, "运维", ip, "uploads:record"),
    )


def log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_officer_finds_a_patients_accesses_by_id_number_pages_and_exports(
    live_server, page, make_user, artifacts_dir
):
    watched, other = resident_id(1201), resident_id(1202)
    accesses(watched, 55)
    accesses(other, 3, username="doc-wang", ip="10.2.2.2")
    make_user("auditor-qian", role="security", first_name="审计", last_name="钱")
    log_in(page, live_server, "auditor-qian")
    page.click("text=审计日志")  # the home page leads the officer there
    assert page.locator("h1").inner_text() == "审计日志"

    page.fill("#id_id_no", watched)
    page.click("button:has-text('查询')")
    page.wait_for_selector("#patient-filter")
    digest = id_key("01", watched)
    # 55 accesses to this patient and the officer's own search for them, newest first
    assert "共 56 条" in page.locator("body").inner_text()
    first_page = page.locator("#trail tbody tr")
    assert first_page.count() == 50
    assert set(first_page.locator("td:nth-child(9)").evaluate_all("cells => cells.map(c => c.title)")) == {
        digest
    }
    assert "auditor-qian" in first_page.first.inner_text()  # the search itself, at the top
    assert watched not in page.content() and watched not in page.url  # the ID number went no further
    page.screenshot(path=str(artifacts_dir / "audit-trail.png"), full_page=True)

    page.click("button:has-text('下一页')")
    page.wait_for_selector("text=第 2 / 2 页")
    assert page.locator("#trail tbody tr").count() == 7  # 57 now: the second page's search is recorded too
    assert watched not in page.url

    with page.expect_download() as download:
        page.click("button:has-text('导出 CSV')")
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["序号", "时间", "主体类型"]
    assert {r[10] for r in rows[1:]} == {digest} and len(rows) - 1 == 58
    assert watched not in text and other not in text

    searches = AuditRecord.objects.filter(username="auditor-qian").order_by("seq")
    assert [e.action for e in searches] == [Action.SEARCH, Action.SEARCH, Action.SEARCH, Action.EXPORT]
    assert {e.patient for e in searches[1:]} == {digest}  # who looked at whose accesses, by digest


@pytest.mark.django_db
def test_an_invalid_id_number_is_refused_with_a_clear_message(client, make_user):
    make_user("auditor-sun", role="security")
    client.login(username="auditor-sun", password=PASSWORD)
    page = client.post("/audit/", {"id_no": "110105197003071210", "id_type": "01"})
    assert page.status_code == 200
    assert "请输入有效的居民身份证号" in page.content.decode()
    assert page.context["page"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["clinician", "lab", "ops", None])
def test_every_other_role_gets_403_on_the_audit_log(client, make_user, role):
    make_user(f"user-{role}", role=role)
    client.login(username=f"user-{role}", password=PASSWORD)
    assert client.get("/audit/").status_code == 403
    assert client.post("/audit/", {"export": "csv"}).status_code == 403


@pytest.mark.django_db
def test_the_administrator_is_refused_too_and_anonymous_users_are_sent_to_log_in(client, make_user):
    make_user("root-admin", is_staff=True, is_superuser=True)
    client.login(username="root-admin", password=PASSWORD)
    assert client.get("/audit/").status_code == 403  # separation of duties: admin ≠ auditor
    assert client.get("/admin/audit/auditrecord/").status_code == 403
    assert "审计日志" not in client.get("/").content.decode()
    client.logout()
    response = client.get("/audit/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_admin_shows_the_trail_read_only_to_the_officer(client, make_user):
    accesses(resident_id(1301), 2)
    entry = AuditRecord.objects.order_by("seq").first()
    make_user("auditor-li", role="security", is_staff=True)
    client.login(username="auditor-li", password=PASSWORD)
    listing = client.get("/admin/audit/auditrecord/")
    assert listing.status_code == 200 and "ops-zhao" in listing.content.decode()
    detail = client.get(f"/admin/audit/auditrecord/{entry.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.get("/admin/audit/auditrecord/add/").status_code == 403
    assert client.post(f"/admin/audit/auditrecord/{entry.pk}/change/", {"username": "x"}).status_code == 403
    assert client.post(f"/admin/audit/auditrecord/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.username == "ops-zhao" and AuditRecord.objects.count() == 2
