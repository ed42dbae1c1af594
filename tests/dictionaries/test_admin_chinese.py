"""Issue 18: the dictionaries' admin import, export and history pages are Chinese throughout, and
an import's refusals (row, column, reason) are on the page, not behind a badge — in headless
Chromium. The project's translations (locale/) replace the libraries' missing or garbled strings;
the templates under templates/dictionaries/admin/ the parts that are not translatable."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dictionaries import demo
from dictionaries.models import HospitalDepartment, StandardDepartment

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PASSWORD = "pw-for-tests-0"
USERNAME = "lab-dict"
# what the pages showed before (issue 18), and any other English word: none may appear
BANNED = ("某些行验数据证失败", "Select all", "CHANGES", "Changes", "None", "Deleted", "pk=", "Historical")
ALLOWED_WORDS = {"xlsx", "csv", "Excel"}


def english_words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]{3,}", text)) - ALLOWED_WORDS


def assert_chinese(page, what: str) -> None:
    text = page.inner_text("body").replace(USERNAME, "")  # a user name is data, not page text
    assert [b for b in BANNED if b in text] == [], what
    assert english_words(text) == set(), what


def _po_entries(path: Path) -> dict:
    """msgid → msgstr of a .po file (plural entries: the singular msgid → msgstr[0])."""
    entries, key, current = {}, None, {}
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[0\])?) "(.*)"$', line)
        if match:
            key = match.group(1)
            current[key] = match.group(2)
        elif line.startswith('"') and key:
            current[key] += line[1:-1]
        elif not line.strip() and current:
            msgid = current.get("msgid", "")
            if msgid:
                entries[msgid] = current.get("msgstr", current.get("msgstr[0]", ""))
            current, key = {}, None
    return {k.replace('\\"', '"'): v.replace('\\"', '"') for k, v in entries.items()}


def test_the_committed_mo_is_the_po_compiled():
    """`manage.py compilemessages` was run after the last edit of the .po (Django reads the .mo)."""
    with (LOCALE / "django.mo").open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    compiled = {(k[0] if isinstance(k, tuple) else k): v for k, v in catalog.items() if k and k != ""}
    assert compiled == _po_entries(LOCALE / "django.po")


def test_the_project_catalogue_wins_over_the_libraries(settings):
    from django.utils import translation

    with translation.override("zh-hans"):
        assert translation.gettext("Some rows failed to validate") == "以下行校验未通过"
        assert translation.gettext("Select all") == "全选"
        assert translation.gettext("Model name") == "模型名称"


BAD_CSV = (
    "院内科室代码,院内科室名称,标准科室代码\n"
    "1501,国际医疗部,03\n"
    "1601,,99.99.99.99\n"
    "1602,日间病房,04.04\n"
    "1603,特需门诊,99\n"
).encode()
GOOD_CSV = "院内科室代码,院内科室名称,标准科室代码\n1501,国际医疗部,03\n".encode()


def upload(page, url: str, name: str, content: bytes) -> None:
    page.goto(url)
    page.select_option("#id_format", label="csv")
    page.set_input_files("#id_import_file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    with page.expect_navigation():
        page.click("input[type=submit]")


@pytest.mark.browser
def test_import_export_and_history_pages_are_chinese(live_server, page, make_user, artifacts_dir):
    demo.load_all()
    make_user(USERNAME, role="lab", is_staff=True, first_name="字典", last_name="李")
    assert HospitalDepartment.objects.get(code="1501").standard is None
    base = live_server.url
    page.goto(base + "/accounts/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    admin = base + "/admin/dictionaries/hospitaldepartment/"

    # a bad file: every refused cell with its row, column and reason, visible as is
    upload(page, admin + "import/", "科室.csv", BAD_CSV)
    expect(page.locator(".errornote")).to_contain_text("2 行校验未通过")
    problems = page.locator("#import-problems tbody tr")
    expect(problems).to_have_count(3)
    for i, (row, line, column, reason) in enumerate(
        [
            ("第 2 行", "3", "院内科室名称", "此字段不能为空。"),
            ("第 2 行", "3", "标准科室代码", "标准科室代码 99.99.99.99 不存在"),
            ("第 4 行", "5", "标准科室代码", "标准科室代码 99 不存在"),
        ]
    ):
        cells = problems.nth(i).locator("td")
        expect(cells.nth(0)).to_have_text(row)
        expect(cells.nth(1)).to_have_text(line)
        expect(cells.nth(2)).to_have_text(column)
        expect(cells.nth(3)).to_have_text(reason)
        expect(cells.nth(3)).to_be_visible()
    expect(problems.nth(0).locator(".problem-content")).to_contain_text("院内科室代码=1601")
    assert_chinese(page, "import refused")
    page.screenshot(path=str(artifacts_dir / "admin-dictionary-import-refused.png"), full_page=True)
    assert not HospitalDepartment.objects.filter(code__in=["1602"]).exists()

    # a clean file: preview, confirm, the Chinese summary
    upload(page, admin + "import/", "科室.csv", GOOD_CSV)
    expect(page.locator("table.import-preview")).to_contain_text("国际医疗部")
    assert_chinese(page, "import preview")
    with page.expect_navigation():
        page.click("input[name=confirm]")
    expect(page.locator(".messagelist")).to_contain_text("导入完成（院内科室")
    expect(page.locator(".messagelist")).to_contain_text("更新 1 条")
    assert_chinese(page, "import finished")
    department = HospitalDepartment.objects.get(code="1501")
    assert department.standard == StandardDepartment.objects.get(code="03")

    # export: the columns by their Chinese headers, 全选 works under the CSP
    page.goto(admin + "export/")
    labels = page.locator(".selectable-field-export-row label:not([for=select-all-toggle])")
    expect(labels).to_have_text(["院内科室代码", "院内科室名称", "标准科室代码", "启用"])
    boxes = page.locator(".selectable-field-export-row input[type=checkbox]:not(.select-toggle)")
    page.locator("input.select-toggle").uncheck()
    assert [boxes.nth(i).is_checked() for i in range(boxes.count())] == [False] * 4
    page.locator("input.select-toggle").check()
    assert [boxes.nth(i).is_checked() for i in range(boxes.count())] == [True] * 4
    assert_chinese(page, "export")
    page.screenshot(path=str(artifacts_dir / "admin-dictionary-export.png"), full_page=True)

    # history: who changed what, the empty reference as （空）, a change outside the admin named so
    department.name = "国际医疗部（新址）"
    department.save()  # no request: the history has no user
    page.goto(f"{admin}{department.pk}/history/")
    rows = page.locator("#change-history tbody tr")
    expect(rows.first.locator(".history-user")).to_have_text("系统（非后台页面修改）")
    expect(rows.first.locator(".history-changes")).to_contain_text("名称：国际医疗部 → 国际医疗部（新址）")
    imported = rows.filter(has_text=USERNAME)
    expect(imported).to_have_count(1)
    expect(imported.locator(".history-changes")).to_contain_text("标准科室：（空） → 03")
    assert_chinese(page, "history")
    page.screenshot(path=str(artifacts_dir / "admin-dictionary-history.png"), full_page=True)
    rows.first.locator("td a").first.click()
    expect(page.locator(".breadcrumbs")).to_contain_text("院内科室")
    assert_chinese(page, "history version")
