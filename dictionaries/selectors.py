"""Reads of the dictionaries: hospital codes → standard codes, or a precise ``Unmapped`` error.

Every selector raises :class:`Unmapped` naming what is missing (unknown hospital code, no
mapping yet, or a mapping to a disabled standard item), so an upload or a prompt can report
"院内科室 0401 未对照标准科室" instead of a generic failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Q

from hospital_interop import cachesafe

from .models import (
    ChargeItem,
    Doctor,
    ExamItemMapping,
    ExamOrderItem,
    HospitalBodyPart,
    HospitalCode,
    HospitalDepartment,
    LabChargeMapping,
    LabOrder,
    LabOrderItem,
    LabSubItem,
    RefusalReason,
    StandardBodyPart,
    StandardDepartment,
    StandardExamItem,
    StandardLabItem,
)

VERSION_KEY = "dictionaries:version"


class Unmapped(LookupError):
    """A hospital code has no usable standard mapping.

    ``what``: department | exam_item | body_part | lab_sub_item | charge_item | lab_order | doctor;
    ``code``: the hospital code asked for; ``reason``: unknown | unmapped | inactive | ambiguous |
    incomplete; ``message``: Chinese, for pages and API errors.
    """

    def __init__(self, what: str, code: str, reason: str, message: str):
        self.what, self.code, self.reason, self.message = what, code, reason, message
        super().__init__(message)

    def as_error(self, field: str = "") -> dict:
        return {"field": field or self.what, "rule": f"mapping.{self.reason}", "message": self.message}


def version() -> int:
    """Changes whenever any dictionary row is saved or deleted (see signals.py)."""
    return cachesafe.cached(lambda: cache.get(VERSION_KEY), what="dictionaries version")[0] or 0


# --------------------------------------------------------------------------- departments, doctors


def standard_department(hospital_dept_code: str) -> StandardDepartment:
    dept = HospitalDepartment.objects.select_related("standard").filter(code=hospital_dept_code).first()
    if dept is None:
        raise Unmapped(
            "department", hospital_dept_code, "unknown", f"院内科室代码 {hospital_dept_code} 不存在"
        )
    if dept.standard is None:
        raise Unmapped(
            "department", hospital_dept_code, "unmapped", f"院内科室 {dept.code} {dept.name} 未对照标准科室"
        )
    if not dept.standard.active:
        raise Unmapped(
            "department",
            hospital_dept_code,
            "inactive",
            f"院内科室 {dept.code} {dept.name} 对照的标准科室 {dept.standard} 已停用",
        )
    return dept.standard


def doctor(staff_no: str, *, need_license: bool = False) -> Doctor:
    doc = Doctor.objects.select_related("department__standard").filter(staff_no=staff_no).first()
    if doc is None:
        raise Unmapped("doctor", staff_no, "unknown", f"医师工号 {staff_no} 不存在")
    if need_license and not doc.license_no:
        raise Unmapped(
            "doctor", staff_no, "incomplete", f"医师 {doc.staff_no} {doc.name} 未维护执业资格证书号"
        )
    return doc


# --------------------------------------------------------------------------- hospital codes of value sets

# The dictionaries a spec field's ``hospitalCodes`` may name, with the Chinese name staff know them by
# (the admin's table name): where to add the missing mapping.
HOSPITAL_DICTIONARIES = {"department": "院内科室（含标准科室对照）", "valueSet": "院内代码对照（值域）"}


def standard_code(dictionary: str, value_set: str, hospital_code: str) -> tuple[str, str]:
    """A hospital code of a spec value set → (standard code, standard name), through the
    dictionary a spec field names (``department`` or ``valueSet``); ``Unmapped`` otherwise."""
    if dictionary == "department":
        std = standard_department(hospital_code)
        return std.code, std.name
    if dictionary != "valueSet":
        raise ValueError(f"unknown hospital code dictionary {dictionary!r}")
    from hospital_interop.municipal.specs import load_catalogue

    title = load_catalogue().value_set(value_set).title
    row = HospitalCode.objects.filter(value_set=value_set, code=hospital_code).first()
    if row is None:
        raise Unmapped(
            "hospital_code", hospital_code, "unknown", f"院内{title} {hospital_code} 未在院内代码对照中维护"
        )
    if not row.standard_code:
        raise Unmapped(
            "hospital_code",
            hospital_code,
            "unmapped",
            f"院内{title} {row.code} {row.name}".rstrip() + " 未对照标准代码",
        )
    if not row.active:
        raise Unmapped(
            "hospital_code", hospital_code, "inactive", f"院内{title} {row.code} {row.name} 的对照已停用"
        )
    return row.standard_code, row.standard_name


# --------------------------------------------------------------------------- exams


@dataclass(frozen=True)
class ExamMapping:
    order_item: ExamOrderItem
    body_part: HospitalBodyPart | None
    standard_item: StandardExamItem
    standard_body_part: StandardBodyPart | None


def standard_exam_item(order_item_code: str, body_part_code: str | None = None) -> ExamMapping:
    """Exam order item (+ hospital body part) → standard exam item and standard body part.

    A mapping for the exact body part wins over the item's "any body part" mapping. The standard
    body part is the mapping's, else the hospital body part's standard, else the standard item's.
    """
    item = ExamOrderItem.objects.filter(code=order_item_code).first()
    if item is None:
        raise Unmapped("exam_item", order_item_code, "unknown", f"院内检查医嘱项目 {order_item_code} 不存在")
    part = None
    if body_part_code:
        part = HospitalBodyPart.objects.select_related("standard").filter(code=body_part_code).first()
        if part is None:
            raise Unmapped("body_part", body_part_code, "unknown", f"院内检查部位 {body_part_code} 不存在")
    mappings = ExamItemMapping.objects.select_related(
        "standard_item__body_part", "standard_body_part"
    ).filter(order_item=item)
    mapping = None
    if part is not None:
        mapping = mappings.filter(body_part=part).first()
    mapping = mapping or mappings.filter(body_part__isnull=True).first()
    if mapping is None:
        where = f"（部位 {part.code} {part.name}）" if part else ""
        raise Unmapped(
            "exam_item",
            order_item_code,
            "unmapped",
            f"院内检查医嘱项目 {item.code} {item.name}{where} 未对照标准检查项目",
        )
    if not mapping.standard_item.active:
        raise Unmapped(
            "exam_item",
            order_item_code,
            "inactive",
            f"院内检查医嘱项目 {item.code} {item.name} 对照的标准项目 {mapping.standard_item} 已停用",
        )
    std_part = (
        mapping.standard_body_part or (part.standard if part else None) or mapping.standard_item.body_part
    )
    return ExamMapping(item, part, mapping.standard_item, std_part)


def standard_body_part(hospital_body_part_code: str) -> StandardBodyPart:
    part = HospitalBodyPart.objects.select_related("standard").filter(code=hospital_body_part_code).first()
    if part is None:
        raise Unmapped(
            "body_part", hospital_body_part_code, "unknown", f"院内检查部位 {hospital_body_part_code} 不存在"
        )
    if part.standard is None:
        raise Unmapped(
            "body_part",
            hospital_body_part_code,
            "unmapped",
            f"院内检查部位 {part.code} {part.name} 未对照标准部位",
        )
    return part.standard


# --------------------------------------------------------------------------- labs


def standard_lab_item(
    sub_item_code: str | None = None, charge_item_code: str | None = None
) -> StandardLabItem:
    """Lab sub-item (preferred) or charge item → the standard lab item (互认项目).

    A charge item that covers several standard items (a panel's 血细胞分析) raises
    ``Unmapped(reason="ambiguous")``: ask by sub-item, or use :func:`standard_lab_items_for_charge`.
    """
    if not sub_item_code and not charge_item_code:
        raise ValueError("standard_lab_item needs sub_item_code or charge_item_code")
    if sub_item_code:
        sub = LabSubItem.objects.select_related("standard").filter(code=sub_item_code).first()
        if sub is None:
            raise Unmapped("lab_sub_item", sub_item_code, "unknown", f"检验子项 {sub_item_code} 不存在")
        if sub.standard is None:
            raise Unmapped(
                "lab_sub_item",
                sub_item_code,
                "unmapped",
                f"检验子项 {sub.code} {sub.name} 未对照标准检验项目",
            )
        if not sub.standard.active:
            raise Unmapped(
                "lab_sub_item",
                sub_item_code,
                "inactive",
                f"检验子项 {sub.code} {sub.name} 对照的标准项目 {sub.standard} 已停用",
            )
        return sub.standard
    items = standard_lab_items_for_charge(charge_item_code)
    if len(items) > 1:
        raise Unmapped(
            "charge_item",
            charge_item_code,
            "ambiguous",
            f"收费项目 {charge_item_code} 对照了 {len(items)} 个标准检验项目，请按检验子项查询",
        )
    return items[0]


def standard_lab_items_for_charge(charge_item_code: str) -> list[StandardLabItem]:
    charge = ChargeItem.objects.filter(code=charge_item_code).first()
    if charge is None:
        raise Unmapped("charge_item", charge_item_code, "unknown", f"收费项目 {charge_item_code} 不存在")
    items = [
        m.standard_item
        for m in LabChargeMapping.objects.select_related("standard_item").filter(
            charge_item=charge, standard_item__active=True
        )
    ]
    if not items:
        raise Unmapped(
            "charge_item",
            charge_item_code,
            "unmapped",
            f"收费项目 {charge.code} {charge.name} 未对照标准检验项目",
        )
    return items


@dataclass(frozen=True)
class LabPanelLine:
    sub_item: LabSubItem
    standard: StandardLabItem | None  # None: this sub-item is not a recognition item
    charge_item: ChargeItem | None


def lab_order_lines(order_code: str) -> list[LabPanelLine]:
    """The sub-items of a lab order (panel) in order, each with its standard item and charge item."""
    order = LabOrder.objects.filter(code=order_code).first()
    if order is None:
        raise Unmapped("lab_order", order_code, "unknown", f"检验医嘱 {order_code} 不存在")
    lines = LabOrderItem.objects.select_related("sub_item__standard", "sub_item__charge_item").filter(
        order=order
    )
    out = [
        LabPanelLine(
            li.sub_item,
            li.sub_item.standard if li.sub_item.standard and li.sub_item.standard.active else None,
            li.sub_item.charge_item,
        )
        for li in lines
    ]
    if not out:
        raise Unmapped(
            "lab_order", order_code, "incomplete", f"检验医嘱 {order.code} {order.name} 未维护检验子项"
        )
    return out


def refusal_reasons() -> list[RefusalReason]:
    return list(RefusalReason.objects.filter(active=True))


# --------------------------------------------------------------------------- completeness report


# Other apps add sections to the report (the EMR intake: codes its held records wait for);
# each source returns sections of the same shape ({title, what, count, rows, [headers]}).
UNMAPPED_SOURCES: list = []


def register_unmapped_source(source) -> None:
    if source not in UNMAPPED_SOURCES:
        UNMAPPED_SOURCES.append(source)


def unmapped_report() -> list[dict]:
    """Hospital items still lacking a standard mapping, one section per kind (for the report page)."""
    exam_items = ExamOrderItem.objects.filter(active=True).annotate(n=Count("mappings")).filter(n=0)
    lab_order_empty = LabOrder.objects.filter(active=True).annotate(n=Count("order_items")).filter(n=0)
    lab_charges = (
        ChargeItem.objects.filter(active=True, lab_sub_items__isnull=False)
        .annotate(n=Count("lab_mappings"))
        .filter(n=0)
        .distinct()
    )
    sections = [
        (
            "院内科室未对照标准科室",
            "department",
            HospitalDepartment.objects.filter(active=True).filter(
                Q(standard__isnull=True) | Q(standard__active=False)
            ),
        ),
        ("检查医嘱项目未对照标准检查项目", "exam_item", exam_items),
        (
            "院内检查部位未对照标准部位",
            "body_part",
            HospitalBodyPart.objects.filter(active=True, standard__isnull=True),
        ),
        (
            "检验子项未对照标准检验项目",
            "lab_sub_item",
            LabSubItem.objects.filter(active=True, standard__isnull=True),
        ),
        ("检验收费项目未对照标准检验项目", "charge_item", lab_charges),
        ("检验医嘱未维护检验子项", "lab_order", lab_order_empty),
        ("医师未维护执业资格证书号", "doctor", Doctor.objects.filter(active=True, license_no="")),
    ]
    out = []
    for title, what, qs in sections:
        rows = [{"code": getattr(o, "code", None) or o.staff_no, "name": o.name} for o in qs[:500]]
        out.append({"title": title, "what": what, "count": len(rows), "rows": rows})
    codes = HospitalCode.objects.filter(active=True, standard_code="")[:500]
    rows = [{"code": f"{c.value_set} {c.code}", "name": c.name} for c in codes]
    out.append({"title": "院内代码未对照标准代码", "what": "hospital_code", "count": len(rows), "rows": rows})
    for source in UNMAPPED_SOURCES:
        out.extend(source())
    return out
