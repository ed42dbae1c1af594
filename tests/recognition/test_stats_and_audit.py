"""Statistics (rates by department, doctor, item and period; refusal reasons; charges avoided)
and the audit search, as clinicians and ops staff see them."""

import io
import random
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from dictionaries import demo
from mutual_recognition.models import AuditEntry, Decision, Encounter
from mutual_recognition.selectors import StatsFilter, statistics

from .conftest import resident_id

DOCTORS = [
    ("D1001", "王建国", "1001", "胸外科", "04.04", "胸外科专业"),
    ("D1002", "李秀英", "1101", "内科（肿瘤内科）", "19", "肿瘤科"),
    ("D1003", "张伟", "1002", "腹部外科", "04.01", "普通外科专业"),
    ("D1004", "刘芳", "1003", "乳腺外科", "04.01", "普通外科专业"),
]
ITEMS = [
    ("exam", "JC0012", "胸部CT平扫", Decimal("180")),
    ("exam", "JC0301", "甲状腺超声", Decimal("85")),
    ("lab", "JY0021", "丙氨酸氨基转移酶", Decimal("5")),
    ("lab", "JY0001", "白细胞计数", Decimal("0")),
    ("lab", "JY0061", "癌胚抗原", Decimal("40")),
    ("exam", "JC0305", "腹部超声（肝胆胰脾）", Decimal("120")),
]
REASONS = [
    ("3", "对诊疗有重要意义（如手术、输血前）"),
    ("1", "病情变化，已有结果与临床表现不符"),
    ("2", "项目随病程变化快"),
    ("9", "其他（须填写说明）"),
]


def make_history(n: int = 160, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = timezone.localtime()
    # inside the statistics window (the last 30 local days) at any time of day the suite runs
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today_so_far = (now - day_start).total_seconds()
    for i in range(n):
        enc = Encounter.objects.create(
            visit_id=f"VS{seed}{i:05d}", name="患者" + str(i), id_no=resident_id(i + seed * 1000)
        )
        doc = DOCTORS[i % len(DOCTORS)]
        kind, code, name, price = ITEMS[rng.randrange(len(ITEMS))]
        recognized = rng.random() < 0.78
        reason = REASONS[rng.randrange(len(REASONS))] if not recognized else ("", "")
        Decision.objects.create(
            encounter=enc,
            kind=kind,
            order_id=f"YZ{i}",
            order_item_code="X",
            order_item_name=name,
            standard_code=code,
            standard_name=name,
            external_org_code="12110000400001234A",
            external_org_name="北京大学人民医院",
            external_report_id=f"EXR{i:08d}",
            decision="1" if recognized else "2",
            reason_code=reason[0],
            platform_reason_code=reason[0],
            reason_name=reason[1],
            doctor_staff_no=doc[0],
            doctor_name=doc[1],
            dept_code=doc[2],
            dept_name=doc[3],
            std_dept_code=doc[4],
            std_dept_name=doc[5],
            charge_avoided=price if recognized else 0,
            decided_at=day_start
            - timedelta(days=(days_ago := rng.randrange(30)))
            + timedelta(seconds=rng.random() * (8 * 3600 if days_ago else today_so_far)),
        )


@pytest.mark.django_db
def test_statistics_by_department_doctor_item_and_reason():
    make_history(40)
    s = statistics(StatsFilter.last_days(30, timezone.localdate()))
    t = s["totals"]
    assert t["total"] == 40 and t["recognized"] + t["refused"] == 40
    assert t["rate"] == round(100 * t["recognized"] / 40, 1)
    assert t["charge"] == sum(d.charge_avoided for d in Decision.objects.all())
    assert sum(r["total"] for r in s["by_dept"]) == 40 and len(s["by_doctor"]) == 4
    assert sum(r["n"] for r in s["reasons"]) == t["refused"]
    assert sum(p["recognized"] + p["refused"] for p in s["series"]) == 40 and len(s["series"]) == 30
    by_lab = statistics(
        StatsFilter(timezone.localdate() - timedelta(days=29), timezone.localdate(), kind="lab")
    )
    assert {r["kind"] for r in by_lab["by_item"]} == {"lab"}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_statistics_page_and_excel_export(client, page, live_server, make_user, artifacts_dir):
    demo.load_all()
    make_history()
    user = make_user("chief", role="clinician", first_name="主任", last_name="周")
    client.force_login(user)
    xlsx = client.get(reverse("recognition:stats"), {"format": "xlsx"})
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["汇总", "按科室", "按医师", "按项目", "按日期", "不互认原因"]
    assert book["汇总"]["B2"].value == 160

    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.goto(live_server.url + reverse("recognition:stats"))
    assert page.locator(".kpi b").first.inner_text() == "160"
    assert page.locator("svg.chart rect").count() > 30
    assert "对诊疗有重要意义" in page.content()
    page.screenshot(path=str(artifacts_dir / "recognition-stats.png"), full_page=True)


@pytest.mark.django_db
def test_the_excel_export_writes_a_name_that_looks_like_a_formula_as_text(client, make_user):
    """Doctor and department names come from the HIS: one starting with '=' was written by openpyxl
    as a live formula (CWE-1236); it is text with a leading apostrophe now."""
    demo.load_all()
    make_history(n=6)
    formula = '=HYPERLINK("http://evil.example/x","详情")'
    Decision.objects.update(doctor_name=formula, dept_name="+科室")
    client.force_login(make_user("chief", role="clinician"))
    xlsx = client.get(reverse("recognition:stats"), {"format": "xlsx"})
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c for c in cells if c.data_type == "f"]
    values = {c.value for c in cells}
    assert "'" + formula in values and "'+科室" in values
    assert book["汇总"]["B2"].value == 6  # numbers stay numbers


@pytest.mark.django_db
def test_audit_search_masks_patients_and_finds_by_id_number(client, make_user):
    enc = Encounter.objects.create(visit_id="VA1", name="王小明", id_no="11010519700307121X")
    for action, report in (("view_report", "EJY1"), ("view_images", "EXR1"), ("recognized", "EJY1")):
        AuditEntry.objects.create(
            action=action,
            doctor_staff_no="D1001",
            doctor_name="王建国",
            patient_name=enc.name,
            patient_id_masked="110105********121X",
            patient_key=enc.id_key,
            visit_id="VA1",
            report_id=report,
            external_org_name="北京大学人民医院",
        )
    AuditEntry.objects.create(
        action="view_report", doctor_staff_no="D1002", patient_name="李四", patient_key="other"
    )
    client.force_login(make_user("clinician-only", role="clinician"))
    assert client.get(reverse("recognition:audit")).status_code == 403
    client.force_login(make_user("ops1", role="ops"))
    # the ID number is posted; the answer redirects to the same search by the patient's key
    posted = client.post(reverse("recognition:audit"), {"idNo": "11010519700307121x", "action": ""})
    assert posted.status_code == 302 and "11010519700307121" not in posted.url.upper()
    assert posted.url == reverse("recognition:audit") + f"?p={enc.id_key}"
    page = client.get(posted.url).content.decode()
    assert "共 3 条" in page and "王**" in page and "王小明" not in page and "110105********121X" in page
    assert "11010519700307121X" not in page  # not even echoed back into the form
    # another filter posted while the patient filter is in force keeps it
    narrowed = client.post(reverse("recognition:audit"), {"p": enc.id_key, "action": "view_images"})
    assert "共 1 条" in client.get(narrowed.url).content.decode()
    page = client.get(
        reverse("recognition:audit"), {"action": "view_images", "doctor": "D1001"}
    ).content.decode()
    assert "共 1 条" in page and "EXR1" in page
    # an ID number put into the URL by hand searches nothing
    assert (
        "共 4 条" in client.get(reverse("recognition:audit"), {"idNo": "11010519700307121X"}).content.decode()
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_patient_and_audit_searches_by_id_number_in_a_browser_keep_the_number_out_of_the_address(
    live_server, page, make_user, artifacts_dir
):
    make_history(6)
    enc = Encounter.objects.get(visit_id="VS700003")
    decision = enc.decisions.get()
    for action in ("view_report", "recognized"):
        AuditEntry.objects.create(
            action=action,
            doctor_staff_no="D1001",
            doctor_name="王建国",
            patient_name=enc.name,
            patient_id_masked="masked",
            patient_key=enc.id_key,
            visit_id=enc.visit_id,
            report_id=decision.external_report_id,
        )
    AuditEntry.objects.create(action="view_report", doctor_staff_no="D1002", patient_key="other")
    make_user("doc-b", role="clinician", is_staff=False)
    make_user("ops-b", role="ops")

    def login(username):
        page.context.clear_cookies()
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", "pw-for-tests-0")
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")

    login("doc-b")
    page.goto(live_server.url + reverse("recognition:patients"))
    page.fill("#patient-search input[name=idNo]", enc.id_no)
    page.select_option("#patient-search select[name=reason]", "follow-up")  # not doc-b's own visit
    page.click("#patient-search button[type=submit]")
    page.wait_for_url("**/recognition/patients/?p=*")
    assert enc.id_no not in page.url and enc.id_no not in page.content()
    assert f"已互认的外院结果（{1 if decision.recognized else 0}）" in page.content()
    assert enc.id_no[:6] + "********" + enc.id_no[-4:] in page.content()
    page.screenshot(path=str(artifacts_dir / "recognition-patient-by-id.png"), full_page=True)

    login("ops-b")
    page.goto(live_server.url + reverse("recognition:audit"))
    page.fill("#audit-search input[name=idNo]", enc.id_no)
    page.click("#audit-search button[type=submit]")
    page.wait_for_url("**/recognition/audit/?p=*")
    assert enc.id_no not in page.url and "共 2 条" in page.content()
    page.select_option("#audit-search select[name=action]", "view_report")
    page.click("#audit-search button[type=submit]")
    page.wait_for_url("**action=view_report**")
    assert "共 1 条" in page.content() and enc.id_no not in page.url  # the patient filter stays
    page.click("#by-patient a")
    assert "共 2 条" in page.content()  # view_report of both patients
