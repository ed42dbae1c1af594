"""The selectors colleagues build on: hospital codes to standard codes, or a precise Unmapped."""

import pytest
from django.core.exceptions import ValidationError

from dictionaries import demo, selectors
from dictionaries.models import StandardExamItem, StandardLabItem
from dictionaries.selectors import Unmapped

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dictionaries():
    demo.load_all()


def test_department_maps_to_standard_or_says_why_not():
    assert selectors.standard_department("1001").code == "04.04"
    with pytest.raises(Unmapped) as exc:
        selectors.standard_department("1501")
    assert (exc.value.what, exc.value.reason) == ("department", "unmapped")
    assert "1501" in exc.value.message and "国际医疗部" in exc.value.message
    with pytest.raises(Unmapped) as exc:
        selectors.standard_department("9999")
    assert exc.value.reason == "unknown"
    assert exc.value.as_error("requestDeptCode")["field"] == "requestDeptCode"


def test_exam_item_with_body_part_prefers_exact_mapping():
    m = selectors.standard_exam_item("CT9000", "B03")
    assert (m.standard_item.code, m.standard_body_part.code) == ("JC0012", "030")
    m = selectors.standard_exam_item("CT0012")
    assert (m.standard_item.code, m.standard_body_part.code) == ("JC0012", "030")
    with pytest.raises(Unmapped) as exc:
        selectors.standard_exam_item("CT9000", "B07")  # no lumbar mapping for generic CT
    assert exc.value.reason == "unmapped" and "B07" in exc.value.message
    with pytest.raises(Unmapped) as exc:
        selectors.standard_exam_item("PT0001")
    assert exc.value.what == "exam_item" and exc.value.reason == "unmapped"


def test_lab_sub_item_and_charge_item():
    assert selectors.standard_lab_item(sub_item_code="WBC").code == "JY0001"
    assert selectors.standard_lab_item(charge_item_code="250305001").code == "JY0021"
    with pytest.raises(Unmapped) as exc:
        selectors.standard_lab_item(charge_item_code="250101015")
    assert exc.value.reason == "ambiguous"
    assert [i.code for i in selectors.standard_lab_items_for_charge("250101015")] == [
        "JY0001",
        "JY0002",
        "JY0003",
        "JY0004",
    ]
    with pytest.raises(Unmapped) as exc:
        selectors.standard_lab_item(sub_item_code="NEUT%")
    assert exc.value.reason == "unmapped"
    lines = selectors.lab_order_lines("XCG")
    assert [line.sub_item.code for line in lines] == ["WBC", "RBC", "HGB", "PLT", "NEUT%"]
    assert lines[-1].standard is None and lines[0].charge_item.code == "250101015"


def test_doctor_license_is_checked_when_needed():
    assert selectors.doctor("D1001", need_license=True).license_no == "110110000123456"
    with pytest.raises(Unmapped) as exc:
        selectors.doctor("D1006", need_license=True)
    assert exc.value.reason == "incomplete"


def test_standard_codes_follow_the_platform_value_sets():
    item = StandardExamItem(code="JC0012", name="胸部CT", modality_code="CT", valid_days=30)
    with pytest.raises(ValidationError) as exc:
        item.full_clean()
    assert "胸部CT平扫" in str(exc.value)  # the spec's name for JC0012
    with pytest.raises(ValidationError):
        StandardLabItem(code="X001", name="某项目", specimen_type_code="02", valid_days=7).full_clean()


def test_unmapped_report_lists_what_is_missing():
    report = {s["what"]: s for s in selectors.unmapped_report()}
    assert [r["code"] for r in report["department"]["rows"]] == ["1501"]
    assert [r["code"] for r in report["exam_item"]["rows"]] == ["PT0001"]
    assert [r["code"] for r in report["lab_sub_item"]["rows"]] == ["NEUT%"]
    assert [r["code"] for r in report["doctor"]["rows"]] == ["D1006"]


def test_history_records_changes():
    from dictionaries.models import HospitalDepartment, StandardDepartment

    dept = HospitalDepartment.objects.get(code="1501")
    dept.standard = StandardDepartment.objects.get(code="03")
    dept.save()
    latest, previous = dept.history.all()[:2]
    delta = latest.diff_against(previous)
    assert [c.field for c in delta.changes] == ["standard"]
