"""The 3.3 detail (LAB_REPORT_DETAIL) and 3.4 PDF (LAB_REPORT_PDF) payloads, built from the spec.

The LIS content (intake.py, hospital codes) is turned into *facts* named after the spec's fields,
through the dictionaries (standard department, doctor and practising-certificate number,
recognition item per LIS sub-item, charge items). :func:`build` then walks the interface's
request fields and keeps what the spec defines, recursing into objects and arrays, and fills a
code's name from its value set when the facts did not name it. A field the spec drops is simply
not sent; a field it adds shows up as a validation error naming it.

``detail(content)`` returns ``(payload, errors)``; errors use the project shape
``{"field", "rule", "message"}`` with the field path of the LIS content (``items[3].itemCode``)
for mapping problems, or of the 3.3 payload for spec violations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from dictionaries import selectors as dicts
from dictionaries.models import ChargeItem, Doctor, LabSubItem, StandardLabItem
from hospital_interop.municipal.envelope import file_fields
from hospital_interop.patients import facts as shared
from mutual_recognition.payloads import build, spec

DETAIL = "LAB_REPORT_DETAIL"
PDF = "LAB_REPORT_PDF"
# The public-data (电子病历共享 2.0.2.0 §3.1.2, §3.2.2) twins of 3.3 and 3.4: the same facts on their own specs
PUBLIC = {DETAIL: "PUB_LAB_REPORT_DETAIL", PDF: "PUB_LAB_REPORT_PDF"}
HR = "HR"
HR_REMARK = "本报告中标注“HR”的项目为北京市医疗机构检验结果互认项目。"


# --------------------------------------------------------------------------- value helpers


def number(text: str) -> float | None:
    """The quantitative value of a result ("6.52" → 6.52; "阴性", "<0.5" → None)."""
    try:
        d = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or abs(d) >= Decimal(10) ** 10:
        return None
    d = d.quantize(Decimal("0.0001")) if d.as_tuple().exponent < -4 else d
    return float(d)


def money(value) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01")))


def report_day(content: dict) -> date:
    """The report's own date (ages are as of it, so re-rendering later gives the same document)."""
    try:
        moment = datetime.fromisoformat(str(content.get("reportedAt")).replace("Z", "+00:00"))
        return timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    except ValueError:
        return date.today()


def patient_facts(p: dict, on: date | None = None) -> dict:
    """The patient object of LIS content (its ``patient``), ages as of ``on``."""
    return shared.patient_facts(
        name=p.get("name"),
        id_type=p.get("idTypeCode") or "01",
        id_no=p.get("idNo", ""),
        sex_code=p.get("sexCode") or "",
        birth_date=p.get("birthDate") or "",
        phone=p.get("phone"),
        on=on,
    )


# --------------------------------------------------------------------------- the mapped report


@dataclass
class MappedItem:
    """One result line with what the dictionaries say about it (used by the payload and the PDF)."""

    no: int
    code: str
    name: str
    result: str
    unit: str
    range: str
    flag: str
    method: str
    remark: str
    standard_code: str = ""
    standard_name: str = ""

    @property
    def recognised(self) -> bool:
        return bool(self.standard_code)


@dataclass
class Mapped:
    """The LIS content resolved through the dictionaries (no spec involved yet)."""

    content: dict
    items: list[MappedItem] = field(default_factory=list)
    charges: list[dict] = field(default_factory=list)
    request_dept: tuple[str, str] = ("", "")
    lab_dept: tuple[str, str] = ("", "")
    request_doctor: tuple[str, str, str] = ("", "", "")  # staff no, name, licence
    test_doctor: tuple[str, str] = ("", "")
    review_doctor: tuple[str, str] = ("", "")
    non_recognitions: list[dict] = field(default_factory=list)
    external_results: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    @property
    def any_recognised(self) -> bool:
        return any(i.recognised for i in self.items)

    @property
    def remark(self) -> str:
        parts = [HR_REMARK] if self.any_recognised else []
        if self.content.get("remark"):
            parts.append(self.content["remark"])
        return " ".join(parts)


class _Lookups:
    """Dictionary answers held in memory until any dictionary row changes (``dictionaries.selectors
    .version()``) or a minute passes: the transfer service maps hundreds of reports a minute, with
    the same departments, doctors and items."""

    TTL = 60.0

    def __init__(self):
        self.version, self.at, self.data = None, 0.0, {}

    def refresh(self) -> None:
        version, now = dicts.version(), time.monotonic()
        if version != self.version or now - self.at > self.TTL:
            self.version, self.at, self.data = version, now, {}

    def get(self, kind: str, key: str, load):
        bucket = self.data.setdefault(kind, {})
        if key not in bucket:
            try:
                bucket[key] = (True, load(key))
            except dicts.Unmapped as exc:
                bucket[key] = (False, exc)
        ok, value = bucket[key]
        if not ok:
            raise value
        return value


_lookups = _Lookups()


def _dept(code: str) -> tuple[str, str]:
    std = dicts.standard_department(code)
    return std.code, std.name


def _doctor(staff_no: str) -> tuple[str, str, str]:
    doc = dicts.doctor(staff_no, need_license=True)
    return doc.staff_no, doc.name, doc.license_no


def _doctor_name(staff_no: str) -> str:
    return Doctor.objects.filter(staff_no=staff_no).values_list("name", flat=True).first() or ""


def _sub_item(code: str) -> tuple | None:
    sub = LabSubItem.objects.select_related("standard", "charge_item").filter(code=code).first()
    if sub is None:
        return None
    std = sub.standard if sub.standard is not None and sub.standard.active else None
    return (
        sub.code,
        sub.name,
        sub.unit,
        std.code if std else "",
        std.name if std else "",
        sub.charge_item.code if sub.charge_item else "",
    )


def _charge(code: str) -> tuple | None:
    item = ChargeItem.objects.filter(code=code).first()
    return (item.code, item.name, item.price) if item else None


def _standard_name(code: str) -> str:
    return StandardLabItem.objects.filter(code=code).values_list("name", flat=True).first() or ""


def _staff(value: dict, where: str, errors: list) -> tuple[str, str]:
    staff_no, name = (value or {}).get("staffNo", ""), (value or {}).get("name", "")
    if not name:
        name = _lookups.get("doctor_name", staff_no, _doctor_name)
        if not name:
            errors.append(
                {
                    "field": f"{where}.name",
                    "rule": "required",
                    "message": f"{where} 工号 {staff_no} 不在医师字典中，且未提供姓名",
                }
            )
    return staff_no, name


def map_content(content: dict) -> Mapped:
    """Resolve hospital codes through the dictionaries; collects every problem, never raises."""
    _lookups.refresh()
    m = Mapped(content=content)
    errors = m.errors
    for attr, key in (("request_dept", "requestDept"), ("lab_dept", "labDept")):
        try:
            setattr(m, attr, _lookups.get("dept", content.get(key, ""), _dept))
        except dicts.Unmapped as exc:
            errors.append(exc.as_error(key))
    try:
        m.request_doctor = _lookups.get("doctor", content.get("requestDoctor", ""), _doctor)
    except dicts.Unmapped as exc:
        errors.append(exc.as_error("requestDoctor"))
    m.test_doctor = _staff(content.get("testDoctor"), "testDoctor", errors)
    m.review_doctor = _staff(content.get("reviewDoctor"), "reviewDoctor", errors)

    subs = {}
    for n, item in enumerate(content.get("items") or [], start=1):
        sub = _lookups.get("sub", item.get("itemCode", ""), _sub_item)
        if sub is None:
            errors.append(
                {
                    "field": f"items[{n - 1}].itemCode",
                    "rule": "mapping.unknown",
                    "message": f"检验项目代码 {item.get('itemCode')} 不在检验项目字典中",
                }
            )
            continue
        code, name, unit, std_code, std_name, _charge_code = sub
        subs[code] = sub
        m.items.append(
            MappedItem(
                no=n,
                code=code,
                name=item.get("itemName") or name,
                result=item.get("result", ""),
                unit=item.get("unit") or unit,
                range=item.get("referenceRange") or "",
                flag=item.get("abnormalFlag") or "N",
                method=item.get("testMethod") or "",
                remark=item.get("remark") or "",
                standard_code=std_code,
                standard_name=std_name,
            )
        )

    charges = content.get("chargeItems")
    if not charges:  # derive from the sub-items' charge items, once each
        codes = dict.fromkeys(sub[5] for sub in subs.values() if sub[5])
        charges = [{"chargeItemCode": c, "quantity": 1} for c in codes]
        if not charges:
            errors.append(
                {
                    "field": "chargeItems",
                    "rule": "required",
                    "message": "未提供收费项明细，检验项目字典中也没有对照的收费项目",
                }
            )
    for i, c in enumerate(charges):
        item = _lookups.get("charge", c.get("chargeItemCode") or "", _charge)
        if item is None:
            errors.append(
                {
                    "field": f"chargeItems[{i}].chargeItemCode",
                    "rule": "mapping.unknown",
                    "message": f"收费项目代码 {c.get('chargeItemCode')} 不在收费项目字典中",
                }
            )
            continue
        code, name, dict_price = item
        qty = Decimal(str(c.get("quantity") or 1))
        price = Decimal(str(c["unitPrice"])) if c.get("unitPrice") not in (None, "") else dict_price
        m.charges.append(
            {
                "chargeItemCode": code,
                "chargeItemName": name,
                "quantity": money(qty),
                "unitPrice": money(price),
                "amount": money(qty * price),
            }
        )

    for r in content.get("nonRecognitions") or []:
        m.non_recognitions.append(
            {**r, "recognitionItemName": _lookups.get("std", r["recognitionItemCode"], _standard_name)}
        )
    for r in content.get("externalResults") or []:
        m.external_results.append(
            {**r, "recognitionItemName": _lookups.get("std", r["recognitionItemCode"], _standard_name)}
        )
    return m


def detail_facts(m: Mapped) -> dict:
    c = m.content
    visit, specimen = c.get("visit") or {}, c.get("specimen") or {}
    facts = {
        **shared.org_facts(),
        "reportId": c["reportId"],
        "applicationId": c.get("applicationId"),
        "reportTitle": c.get("reportTitle"),
        "patient": patient_facts(c.get("patient") or {}, report_day(c)),
        "patientTypeCode": visit.get("patientTypeCode"),
        "visitId": visit.get("visitId"),
        "outpatientNo": visit.get("outpatientNo"),
        "inpatientNo": visit.get("inpatientNo"),
        "requestDeptCode": m.request_dept[0],
        "requestDeptName": m.request_dept[1],
        "requestDoctorId": m.request_doctor[0],
        "requestDoctorName": m.request_doctor[1],
        "requestDoctorLicenseNo": m.request_doctor[2],
        "clinicalDiagnosisCode": c.get("clinicalDiagnosisCode"),
        "clinicalDiagnosisName": c.get("clinicalDiagnosisName"),
        "specimenNo": specimen.get("specimenNo"),
        "specimenTypeCode": specimen.get("typeCode"),
        "sampleDateTime": shared.platform_datetime(specimen.get("sampledAt")),
        "receiveDateTime": shared.platform_datetime(specimen.get("receivedAt")),
        "labDeptCode": m.lab_dept[0],
        "labDeptName": m.lab_dept[1],
        "testDoctorId": m.test_doctor[0],
        "testDoctorName": m.test_doctor[1],
        "reviewDoctorId": m.review_doctor[0],
        "reviewDoctorName": m.review_doctor[1],
        "reportDateTime": shared.platform_datetime(c.get("reportedAt")),
        "reviewDateTime": shared.platform_datetime(c.get("reviewedAt")),
        "recognitionMark": HR if m.any_recognised else None,
        "reportRemark": m.remark,
        "items": [
            {
                "itemNo": i.no,
                "itemCode": i.code,
                "itemName": i.name,
                "resultValue": i.result,
                "quantitativeResult": number(i.result),
                "unit": i.unit,
                "referenceRange": i.range,
                "abnormalFlagCode": i.flag,
                "testMethod": i.method,
                "itemRemark": i.remark,
                "recognitionItemCode": i.standard_code,
                "recognitionItemName": i.standard_name,
                "recognitionMark": HR if i.recognised else None,
            }
            for i in m.items
        ],
        "chargeItems": m.charges,
        "nonRecognitions": [
            {
                "recognitionItemCode": r["recognitionItemCode"],
                "recognitionItemName": r["recognitionItemName"],
                "externalOrgCode": r.get("externalOrgCode"),
                "externalReportId": r.get("externalReportId"),
                "refusalReasonCode": r["refusalReasonCode"],
                "note": r.get("note"),
                "doctorName": r["doctorName"],
                "decisionDateTime": shared.platform_datetime(r["decidedAt"]),
            }
            for r in m.non_recognitions
        ],
        "externalResults": [
            {
                "recognitionItemCode": r["recognitionItemCode"],
                "recognitionItemName": r["recognitionItemName"],
                "externalOrgCode": r["externalOrgCode"],
                "externalOrgName": r["externalOrgName"],
                "externalReportId": r["externalReportId"],
                "resultValue": r["resultValue"],
                "unit": r.get("unit"),
                "externalReportDateTime": shared.platform_datetime(r["externalReportAt"]),
                "doctorName": r["doctorName"],
                "acceptedDateTime": shared.platform_datetime(r["acceptedAt"]),
            }
            for r in m.external_results
        ],
    }
    return facts


def _for(code: str, facts: dict) -> tuple[dict | None, list[dict]]:
    payload = build(spec(code).request.fields, facts)
    errors = spec(code).validate(payload)
    return (None, errors) if errors else (payload, [])


def detail(
    content: dict, mapped: Mapped | None = None, *, code: str = DETAIL
) -> tuple[dict | None, list[dict]]:
    """The 3.3 payload of LIS content (or its public-data twin, ``code=PUBLIC[DETAIL]``), or
    (None, errors): mapping errors first, then spec errors."""
    m = mapped or map_content(content)
    if m.errors:
        return None, m.errors
    return _for(code, detail_facts(m))


def pdf_payload(
    content: dict, file_name: str, pdf_bytes: bytes, *, code: str = PDF
) -> tuple[dict | None, list[dict]]:
    """The 3.4 payload (or its public-data twin): the report's keys, patient and time, and the §6 file fields."""
    facts = {
        **shared.org_facts(),
        "reportId": content["reportId"],
        "patient": patient_facts(content.get("patient") or {}, report_day(content)),
        "reportDateTime": shared.platform_datetime(content.get("reportedAt")),
        **file_fields(file_name, pdf_bytes),
    }
    return _for(code, facts)
