"""Mapping spreadsheets: a file with a bad row imports nothing and names the row."""

import io

import openpyxl
import pytest
from django.urls import reverse

from dictionaries import demo, services
from dictionaries.models import ExamItemMapping, HospitalDepartment

pytestmark = pytest.mark.django_db

HEADERS = ["院内医嘱项目代码", "院内部位代码", "标准检查项目代码", "标准部位代码"]


def xlsx(rows, headers=HEADERS) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def dictionaries():
    demo.load_all()


GOOD = [
    ["CT9000", "B06", "JC0041", "060"],
    ["CT9000", "B07", "JC0051", "070"],
    ["MR0121", "", "JC0121", "070"],
]


def test_a_bad_row_is_reported_and_nothing_is_imported():
    before = list(ExamItemMapping.objects.values_list("pk", "standard_item__code"))
    rows = [*GOOD[:2], ["CT9000", "B01", "JC9999", "010"], GOOD[2]]  # row 3: unknown standard code
    report = services.import_file(ExamItemMapping, xlsx(rows), "xlsx")
    assert not report.ok and not report.imported
    assert [p.row for p in report.problems] == [3]
    assert "JC9999 不存在" in " ".join(report.problems[0].messages)
    assert "第 3 行" in report.summary() and "整个文件未导入" in report.summary()
    assert list(ExamItemMapping.objects.values_list("pk", "standard_item__code")) == before


def test_a_clean_file_imports_every_row():
    report = services.import_file(ExamItemMapping, xlsx(GOOD), "xlsx")
    assert report.ok and report.imported and report.total == 3
    assert report.new == 2 and report.updated + report.unchanged == 1
    assert (
        ExamItemMapping.objects.get(order_item__code="CT9000", body_part__code="B07").standard_item.code
        == "JC0051"
    )


def test_csv_with_a_code_outside_the_value_set_is_rejected():
    csv = "院内科室代码,院内科室名称,标准科室代码\n1501,国际医疗部,03\n1601,日间病房,99.99.99.99\n".encode()
    report = services.import_file(HospitalDepartment, csv, "csv")
    assert [p.row for p in report.problems] == [2]
    assert HospitalDepartment.objects.get(code="1501").standard is None  # row 1 was not imported either


def test_admin_import_page_says_nothing_was_imported(client, make_user):
    user = make_user("labstaff", role="lab", is_staff=True)
    client.force_login(user)
    url = reverse("admin:dictionaries_examitemmapping_import")
    page = client.get(url)
    assert page.status_code == 200 and "任何一行有误，整个文件都不会导入" in page.content.decode()
    upload = io.BytesIO(xlsx([GOOD[0], ["CT9000", "B01", "JC9999", "010"]]))
    upload.name = "mapping.xlsx"
    response = client.post(url, {"resource": "0", "format": "0", "import_file": upload})
    text = response.content.decode()
    assert response.status_code == 200
    assert "未导入任何一行" in text and "JC9999 不存在" in text
    assert not ExamItemMapping.objects.filter(body_part__code="B06").exists()


def test_admin_export_is_an_excel_file_with_chinese_headers(client, make_user):
    client.force_login(make_user("opsstaff", role="ops", is_staff=True))
    response = client.post(
        reverse("admin:dictionaries_standardlabitem_export"),
        {
            "format": "0",
            "resource": "0",
            **{
                f"standardlabitemresource_{f}": "on"
                for f in ("code", "name", "specimen_type_code", "unit", "valid_days", "active")
            },
        },
    )
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in sheet[1]][:2] == ["代码", "名称"]
    assert sheet.max_row == 1 + len([i for p in demo.STANDARD_LAB_PANELS for i in p[3]])


def test_unmapped_report_page(client, make_user):
    client.force_login(make_user("labstaff2", role="lab"))
    page = client.get(reverse("dictionaries:unmapped")).content.decode()
    assert "国际医疗部" in page and "全身PET-CT" in page
    xlsx_response = client.get(reverse("dictionaries:unmapped"), {"format": "xlsx"})
    assert xlsx_response["Content-Type"].startswith("application/vnd.openxmlformats")


FORMULA = '=HYPERLINK("http://evil.example/x","详情")'


def _text_cells(content: bytes) -> list:
    """Every non-empty cell of every sheet, as openpyxl reads it (a formula has data_type 'f')."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def test_a_name_that_looks_like_a_formula_is_exported_as_text_and_imported_back_unchanged(client, make_user):
    """A code name from another system starting with '=' was written by openpyxl as a live formula
    (CWE-1236). It goes out with a leading apostrophe and comes back without it."""
    HospitalDepartment.objects.create(code="D9901", name=FORMULA, active=True)
    HospitalDepartment.objects.create(code="D9902", name="-30%", active=True)
    client.force_login(make_user("opsstaff", role="ops", is_staff=True))
    response = client.post(
        reverse("admin:dictionaries_hospitaldepartment_export"),
        {
            "format": "0",
            "resource": "0",
            **{f"hospitaldepartmentresource_{f}": "on" for f in ("code", "name")},
        },
    )
    cells = _text_cells(response.content)
    assert not [c for c in cells if c.data_type == "f"]
    assert "'" + FORMULA in [c.value for c in cells] and "'-30%" in [c.value for c in cells]

    HospitalDepartment.objects.filter(code__in=["D9901", "D9902"]).update(name="改过")
    report = services.import_file(HospitalDepartment, response.content, "xlsx")
    assert report.imported and not report.problems
    assert HospitalDepartment.objects.get(code="D9901").name == FORMULA
    assert HospitalDepartment.objects.get(code="D9902").name == "-30%"


def test_the_unmapped_report_writes_a_formula_as_text(client, make_user):
    HospitalDepartment.objects.create(code="D9903", name=FORMULA, active=True)
    client.force_login(make_user("labstaff3", role="lab"))
    cells = _text_cells(client.get(reverse("dictionaries:unmapped"), {"format": "xlsx"}).content)
    assert not [c for c in cells if c.data_type == "f"] and "'" + FORMULA in [c.value for c in cells]


def test_a_nul_in_an_imported_csv_is_a_chinese_row_error_and_nothing_is_imported():
    """A CSV can carry a NUL, PostgreSQL cannot store one: the dry run reported the database's
    English error ("A string literal cannot contain NUL"); now the row's field says why."""
    content = "院内科室代码,院内科室名称,标准科室代码,启用\nD77,内科,,是\nD78,内\x00科,,是\n".encode()
    report = services.import_file(HospitalDepartment, content, "csv")
    assert not report.imported and not HospitalDepartment.objects.filter(code__in=["D77", "D78"]).exists()
    (problem,) = report.problems
    assert problem.row == 2 and problem.messages == ["院内科室名称：含有不允许的字符（空字符或孤立代理项）"]
