"""Pages for lab and ops staff: platform report lists (by organisation code, by ID number) with the
hospital's reports the platform lacks marked, PDF preview (audited), the transfer monitor, the local
report pages and the external recognised results."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from mutual_recognition.lab import services
from mutual_recognition.models import AuditEntry, Decision, Encounter
from tests.lab.conftest import lis_report

ORG = "12110000400000000X"


@pytest.fixture
def lab_user(client, make_user):
    make_user("lab-li", role="lab", first_name="检验", last_name="李")
    client.login(username="lab-li", password="pw-for-tests-0")
    return client


@pytest.mark.django_db
def test_platform_lists_mark_what_the_platform_lacks_and_preview_pdfs(
    lab_user, lab_dicts, folders, service, sim, inline_delivery
):
    client = lab_user
    held = lis_report(51, name="孙玉兰", reportedAt=f"{date.today():%Y-%m-%d}T09:00:00+08:00")
    lost = lis_report(
        52, name="周桂芳", reportedAt=f"{date.today():%Y-%m-%d}T09:30:00+08:00", patient={**held["patient"]}
    )  # the same patient, a second report never uploaded
    services.approve(held, source="LIS")
    services.archive(held["reportId"])
    service.run_once()
    inline_delivery()
    service.run_once()
    services.approve(lost, source="LIS")

    page = client.post("/lab/platform/", {"kind": "org"})
    assert page.status_code == 200
    result = page.context["result"]
    assert not result.error
    assert held["reportId"] in {r["reportId"] for r in result.rows}
    assert [m["report"].report_id for m in result.missing] == [lost["reportId"]]
    html = page.content.decode()
    assert "本院报告平台未收到" in html and lost["reportId"] in html and "PDF 预览" in html

    page = client.post(
        "/lab/platform/",
        {
            "kind": "id",
            "name": held["patient"]["name"],
            "idNo": held["patient"]["idNo"],
            "origin": "own",
        },
    )
    result = page.context["result"]
    assert not result.error and [r["reportId"] for r in page.context["page"].object_list] == [
        held["reportId"]
    ]
    assert [m["report"].report_id for m in result.missing] == [lost["reportId"]]
    external = client.post(
        "/lab/platform/",
        {
            "kind": "id",
            "name": held["patient"]["name"],
            "idNo": held["patient"]["idNo"],
            "origin": "external",
        },
    )
    assert all(not r["own"] for r in external.context["page"].object_list)

    pdf = client.get("/lab/platform/pdf", {"org": ORG, "report": held["reportId"]})
    assert (
        pdf.status_code == 200
        and pdf["Content-Type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF-")
    )
    entry = AuditEntry.objects.get(report_id=held["reportId"])
    assert entry.action == AuditEntry.Action.VIEW_REPORT and entry.doctor_staff_no == "lab-li"

    bad = client.post("/lab/platform/", {"kind": "id", "name": "x", "idNo": "123"})
    assert "有效的居民身份证号" in bad.content.decode()
    # a name and number put into the URL by hand query nothing: the search is posted
    by_hand = client.get(
        "/lab/platform/",
        {"kind": "id", "go": "1", "name": held["patient"]["name"], "idNo": held["patient"]["idNo"]},
    )
    assert by_hand.status_code == 200 and by_hand.context["result"] is None
    assert held["patient"]["idNo"] not in by_hand.content.decode()


@pytest.mark.django_db
def test_transfer_monitor_report_pages_and_external_results(
    lab_user, lab_dicts, folders, service, sim, platform_settings, make_user
):
    client = lab_user
    body = lis_report(61, name="钱国强")
    services.approve(body, source="LIS")
    archived = services.archive(body["reportId"])
    service.run_once()
    bad = lis_report(62, name="冯秀梅")
    services.approve(bad, source="LIS")
    services.archive(bad["reportId"])
    (folders.drop / f"{bad['reportId']}_v1.json").write_text("not json", "utf-8")
    service.run_once()

    page = client.get("/lab/transfers/")
    html = page.content.decode()
    assert (
        page.status_code == 200
        and "已入队待上传" in html
        and "已隔离" in html
        and "不是有效的 UTF-8 JSON" in html
    )
    assert page.context["counts"]["quarantined"] == 1 and page.context["folder"]["pdfs"] == 1

    lst = client.get(client.post("/lab/", {"q": body["reportId"], "status": ""}).url)
    assert [row["report"].report_id for row in lst.context["rows"]] == [body["reportId"]]
    by_id = client.post(
        "/lab/", {"q": body["patient"]["idNo"], "status": ""}
    )  # an ID number typed in the box
    assert by_id.status_code == 302 and body["patient"]["idNo"] not in by_id.url and "p=" in by_id.url
    assert [row["report"].report_id for row in client.get(by_id.url).context["rows"]] == [body["reportId"]]
    detail = client.get(f"/lab/reports/{body['reportId']}/")
    assert detail.status_code == 200 and "HR" in detail.content.decode()
    pdf = client.get(f"/lab/reports/{body['reportId']}/v1.pdf")
    assert pdf.content == archived.pdf_path.read_bytes()  # rendered again: the same bytes as archived

    enc = Encounter.objects.create(visit_id="V-EXT-1", name="钱国强", id_no=body["patient"]["idNo"])
    Decision.objects.create(
        encounter=enc,
        kind="lab",
        order_id="YZ1",
        order_item_code="GGN",
        order_item_name="肝功能",
        sub_item_code="ALT",
        sub_item_name="丙氨酸氨基转移酶",
        standard_code="JY0021",
        standard_name="丙氨酸氨基转移酶",
        external_org_code="12110000400001234A",
        external_org_name="北京大学人民医院",
        external_report_id="EJY77",
        result={"value": "30", "unit": "U/L", "range": "9-50", "flag": "N"},
        decision="1",
        doctor_staff_no="D1002",
        doctor_name="李秀英",
        dept_code="1101",
        dept_name="内科（肿瘤内科）",
        std_dept_code="19",
        std_dept_name="肿瘤科",
        decided_at=timezone.now(),
    )
    ext = client.post("/lab/external/", {"idNo": body["patient"]["idNo"], "name": "钱国强", "live": "1"})
    html = ext.content.decode()
    assert ext.status_code == 200 and "北京大学人民医院" in html and "EJY77" in html
    assert (
        not ext.context["live_error"] and ext.context["live"]
    )  # the simulator's external reports for the ID

    make_user("doc-x", role="clinician")
    client.logout()
    client.login(username="doc-x", password="pw-for-tests-0")
    assert client.get("/lab/transfers/").status_code == 403


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_lab_staff_pages_in_a_browser(
    live_server, page, make_user, lab_dicts, folders, service, sim, inline_delivery, artifacts_dir
):
    today = f"{date.today():%Y-%m-%d}"
    held = lis_report(71, name="孙玉兰", reportedAt=f"{today}T09:00:00+08:00")
    services.approve(held, source="LIS")
    services.archive(held["reportId"])
    service.run_once()
    inline_delivery()
    service.run_once()
    lost = lis_report(72, name="周桂芳", reportedAt=f"{today}T09:30:00+08:00")
    services.approve(lost, source="LIS")
    services.archive(lost["reportId"])
    (folders.drop / f"{lost['reportId']}_v1.pdf").write_bytes(b"%PDF-1.4 truncated")
    service.run_once()

    make_user("lab-zhou", role="lab", first_name="检验", last_name="周")
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "lab-zhou")
    page.fill("#id_password", "pw-for-tests-0")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.click("a.tile:has-text('检验报告上传')")
    page.click(".subnav >> text=市平台报告查询")
    page.click("text=查询市平台")
    assert page.locator("#missing-count").inner_text() == "1"
    assert lost["reportId"] in page.locator("#missing").inner_text()
    assert "已隔离" in page.locator("#missing").inner_text()
    assert held["reportId"] in page.locator("#platform-rows").inner_text()
    page.screenshot(path=str(artifacts_dir / "lab-platform-reports.png"), full_page=True)

    # by ID number: the name and number are posted, never in the address; so are the other pages
    patient = held["patient"]
    sim.seed(patient["idNo"], name=patient["name"], lab=24, daysAgo=5)
    page.click("text=按证件号查询")
    page.fill("#query input[name=name]", patient["name"])
    page.fill("#query input[name=idNo]", patient["idNo"])
    page.click("text=查询市平台")
    assert page.locator("#platform-rows tbody tr").count() == 20
    assert "第 1 / 2 页" in page.locator(".pager").inner_text()
    page.click(".pager >> text=下一页")
    assert "第 2 / 2 页" in page.locator(".pager").inner_text()
    assert page.locator("#query input[name=idNo]").input_value() == patient["idNo"]
    assert patient["idNo"] not in page.url and "%" not in page.url and "name=" not in page.url
    page.screenshot(path=str(artifacts_dir / "lab-platform-reports-by-id.png"), full_page=True)
    page.click(".subnav >> text=文件传输与日志")
    assert "PDF 文件不完整" in page.locator("#transfers").inner_text()
    page.screenshot(path=str(artifacts_dir / "lab-transfers.png"), full_page=True)
