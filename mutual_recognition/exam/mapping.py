"""An approved report from RIS/PACS → the platform payloads of the exam interfaces (V3.5 §1.1).

The intake format of a report IS the payload of ``EXAM_RESULT_SUBMIT`` as its spec defines it
(field names, types, lengths, value sets), with these differences, all listed in the constants
below:

* hospital codes where the platform wants standard ones: the department fields carry the
  hospital's department codes and ``bodyPartCode`` the hospital's body part code; the server
  maps them through the dictionaries (standard code *and* name) together with the exam item
  (``examItemCode`` → the recognition item and the standard body part);
* fields the server fills: ``orgCode``/``orgName`` (defaults), the name field of every code
  (from its value set, when left out), the recognition item, the recognition mark and the
  void flag;
* two intake-only fields: ``pdf`` (``{"fileName", "fileContent": Base64}``) and
  ``imageFolder`` (a folder with the study's DICOM files, for the image sync).

The PDF, void and daily-summary payloads are projected from the same facts onto their own
specs' field lists, so no field list is spelled here.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from dictionaries.selectors import Unmapped, standard_department, standard_exam_item
from hospital_interop.errors import field_error
from hospital_interop.municipal.envelope import file_fields
from hospital_interop.municipal.specs import FieldSpec, InterfaceSpec, load_catalogue

RESULT, PDF, VOID, DAILY = "EXAM_RESULT_SUBMIT", "EXAM_REPORT_PDF", "EXAM_REPORT_VOID", "EXAM_DAILY_SUMMARY"

DEFAULTS = {"orgCode": lambda: settings.PLATFORM["ORG_CODE"], "orgName": lambda: settings.HOSPITAL_NAME}
DEPARTMENT_FIELDS = ("requestDeptCode", "execDeptCode")  # hospital department code → DEPT_STD
SUMMARY_DEPARTMENT = "execDeptCode"  # the daily summary counts a report under its executing department
EXAM_ITEM_FIELD = "examItemCode"  # hospital exam order item → recognition item (+ standard body part)
BODY_PART_FIELD = "bodyPartCode"  # hospital body part in, standard body part out
RECOGNITION_ITEM_FIELD = "recognitionItemCode"
RECOGNITION_MARK = ("recognitionMark", "HR")  # a report of a recognition item carries the HR mark
SERVER_VALUES = {"voidFlag": "0"}
STUDY_UID_FIELD = "studyInstanceUid"
ACCESSION_FIELD = "accessionNo"
PDF_FIELD, IMAGE_FOLDER_FIELD = "pdf", "imageFolder"
PDF_NAME, PDF_CONTENT = "fileName", "fileContent"
VOID_DEFAULT_TIME = "voidDateTime"
VOID_REASON_FIELD = "voidReason"
DATETIME_FORMAT = "%Y%m%d%H%M%S"
DAILY_COUNT_FIELDS = ("reportCount", "studyCount")  # reports uploaded that day, of them with images


def spec(code: str) -> InterfaceSpec:
    return load_catalogue().interface(code)


def _name_field(code_field: str) -> str:
    return spec(RESULT).fields[code_field].name_field


def server_filled() -> set[str]:
    """Result fields the RIS must not send: the server derives them."""
    return {RECOGNITION_ITEM_FIELD, _name_field(RECOGNITION_ITEM_FIELD), RECOGNITION_MARK[0], *SERVER_VALUES}


def intake_optional() -> set[str]:
    """Result fields that are required on the platform but may be left out of the intake."""
    return {*DEFAULTS, *(_name_field(f) for f in (*DEPARTMENT_FIELDS, BODY_PART_FIELD)), BODY_PART_FIELD}


def fill_names(fields: dict[str, FieldSpec], obj: dict) -> None:
    """A code's name field left out is filled with its value set's name (recursively)."""
    for name, f in fields.items():
        value = obj.get(name)
        if f.type == "object" and isinstance(value, dict) and f.fields:
            fill_names(f.fields, value)
        elif f.type == "array" and isinstance(value, list) and f.items is not None and f.items.fields:
            for item in value:
                if isinstance(item, dict):
                    fill_names(f.items.fields, item)
        elif (
            f.type == "code"
            and f.value_set is not None
            and f.name_field
            and isinstance(value, str)
            and obj.get(f.name_field) in (None, "")
        ):
            label = f.value_set.name_of(value)
            if label:
                obj[f.name_field] = label


@dataclass
class Prepared:
    """One approved report, mapped. ``errors`` reject the intake (400); ``mapping_errors`` hold it."""

    result: dict = field(default_factory=dict)
    pdf_payload: dict | None = None
    pdf_name: str = ""
    pdf_bytes: bytes = b""
    image_folder: str = ""
    errors: list[dict] = field(default_factory=list)
    mapping_errors: list[dict] = field(default_factory=list)
    dept_std: tuple[str, str] = ("", "")
    exam_item: str = ""

    @property
    def report_id(self) -> str:
        return str(self.result.get("reportId") or "")


def content_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def stored_content(body: dict) -> dict:
    """What is kept of the intake body: everything but the PDF's bytes."""
    content = copy.deepcopy(body)
    pdf = content.get(PDF_FIELD)
    if isinstance(pdf, dict):
        content[PDF_FIELD] = {k: v for k, v in pdf.items() if k != PDF_CONTENT}
    return content


def _map_codes(payload: dict, prepared: Prepared) -> set[str]:
    """Hospital → standard codes in place; returns the fields whose mapping failed (and their names)."""
    failed: set[str] = set()
    for code_field in DEPARTMENT_FIELDS:
        code = payload.get(code_field)
        if not isinstance(code, str) or not code:
            continue
        try:
            std = standard_department(code)
        except Unmapped as exc:
            prepared.mapping_errors.append(exc.as_error(code_field))
            failed |= {code_field, _name_field(code_field)}
            continue
        payload[code_field], payload[_name_field(code_field)] = std.code, std.name
        if code_field == SUMMARY_DEPARTMENT:
            prepared.dept_std = (std.code, std.name)
    item, part = payload.get(EXAM_ITEM_FIELD), payload.get(BODY_PART_FIELD)
    if isinstance(item, str) and item:
        mapped_fields = {
            BODY_PART_FIELD,
            _name_field(BODY_PART_FIELD),
            RECOGNITION_ITEM_FIELD,
            _name_field(RECOGNITION_ITEM_FIELD),
            RECOGNITION_MARK[0],
        }
        try:
            m = standard_exam_item(item, part if isinstance(part, str) and part else None)
            if m.standard_body_part is None:
                raise Unmapped(
                    "body_part",
                    part or item,
                    "incomplete",
                    f"院内检查医嘱项目 {m.order_item.code} {m.order_item.name} 的对照未指定标准检查部位",
                )
        except Unmapped as exc:
            prepared.mapping_errors.append(
                exc.as_error(BODY_PART_FIELD if exc.what == "body_part" else EXAM_ITEM_FIELD)
            )
            failed |= mapped_fields
        else:
            payload[RECOGNITION_ITEM_FIELD] = m.standard_item.code
            payload[_name_field(RECOGNITION_ITEM_FIELD)] = m.standard_item.name
            payload[RECOGNITION_MARK[0]] = RECOGNITION_MARK[1]
            payload[BODY_PART_FIELD] = m.standard_body_part.code
            payload[_name_field(BODY_PART_FIELD)] = m.standard_body_part.name
            prepared.exam_item = (
                f"{m.order_item.code} {m.order_item.name} → {m.standard_item.code} {m.standard_item.name}"
            )
    return failed


def _decode_pdf(raw, prepared: Prepared) -> None:
    if not isinstance(raw, dict):
        prepared.errors.append(
            field_error(PDF_FIELD, "required", '缺少报告 PDF：pdf 应为 {"fileName", "fileContent"}')
        )
        return
    unknown = sorted(set(raw) - {PDF_NAME, PDF_CONTENT})
    prepared.errors += [field_error(f"{PDF_FIELD}.{k}", "unknown", f"未定义的字段 {k}") for k in unknown]
    name, content = raw.get(PDF_NAME), raw.get(PDF_CONTENT)
    if not isinstance(name, str) or not name.strip():
        prepared.errors.append(field_error(f"{PDF_FIELD}.{PDF_NAME}", "required", "缺少 PDF 文件名"))
    if not isinstance(content, str) or not content:
        prepared.errors.append(
            field_error(f"{PDF_FIELD}.{PDF_CONTENT}", "required", "缺少 PDF 内容（Base64）")
        )
        return
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        prepared.errors.append(
            field_error(f"{PDF_FIELD}.{PDF_CONTENT}", "base64", "PDF 内容不是合法的 Base64")
        )
        return
    if not data.startswith(b"%PDF"):
        prepared.errors.append(
            field_error(f"{PDF_FIELD}.{PDF_CONTENT}", "format", "文件内容不是 PDF（应以 %PDF 开头）")
        )
        return
    prepared.pdf_name, prepared.pdf_bytes = (name or "").strip(), data


def pdf_payload(result: dict, pdf_name: str, pdf_bytes: bytes) -> dict:
    """EXAM_REPORT_PDF: the PDF spec's fields, taken from the report's facts and the file (§6)."""
    facts = {**result, **file_fields(pdf_name, pdf_bytes)}
    return {name: facts[name] for name in spec(PDF).fields if name in facts}


def prepare(body) -> Prepared:
    prepared = Prepared()
    if not isinstance(body, dict):
        prepared.errors.append(field_error("", "type", "报告应为 JSON 对象"))
        return prepared
    payload = copy.deepcopy({k: v for k, v in body.items() if k not in (PDF_FIELD, IMAGE_FOLDER_FIELD)})
    for name in sorted(server_filled() & set(payload)):
        prepared.errors.append(
            field_error(name, "serverFilled", f"{name} 由本服务根据字典对照填写，请勿提交")
        )
        payload.pop(name)
    for name, default in DEFAULTS.items():
        if payload.get(name) in (None, ""):
            payload[name] = default()
    failed = _map_codes(payload, prepared)
    result_spec = spec(RESULT)
    fill_names(result_spec.fields, payload)
    payload.update(SERVER_VALUES)
    prepared.result = payload
    prepared.errors += [e for e in result_spec.validate(payload) if e["field"] not in failed]
    folder = body.get(IMAGE_FOLDER_FIELD)
    if folder not in (None, ""):
        if not isinstance(folder, str):
            prepared.errors.append(
                field_error(IMAGE_FOLDER_FIELD, "type", "imageFolder 应为字符串（目录路径）")
            )
        else:
            prepared.image_folder = folder
    _decode_pdf(body.get(PDF_FIELD), prepared)
    if prepared.pdf_bytes:
        prepared.pdf_payload = pdf_payload(payload, prepared.pdf_name, prepared.pdf_bytes)
        flagged = {e["field"] for e in prepared.errors}
        for e in spec(PDF).validate(prepared.pdf_payload):
            name = e["field"]
            if name in flagged or name.split(".")[0] in failed:
                continue
            if name in (PDF_NAME, PDF_CONTENT) or name not in result_spec.fields:
                e = {**e, "field": f"{PDF_FIELD}.{name}"}
            prepared.errors.append(e)
    return prepared


def now_text(at: datetime | None = None) -> str:
    return timezone.localtime(at or timezone.now()).strftime(DATETIME_FORMAT)


def void_payload(report_id: str, body) -> tuple[dict, list[dict]]:
    """EXAM_REPORT_VOID from a withdrawal: the void spec's fields from the body, the org defaults
    and the report number; the void time defaults to now."""
    if not isinstance(body, dict):
        return {}, [field_error("", "type", "请求体应为 JSON 对象")]
    void_spec = spec(VOID)
    payload = {name: default() for name, default in DEFAULTS.items()}
    payload.update({k: v for k, v in body.items()})
    payload[void_spec.key[-1]] = report_id
    payload.setdefault(VOID_DEFAULT_TIME, now_text())
    fill_names(void_spec.fields, payload)
    return payload, void_spec.validate(payload)


def daily_payload(
    stat_date: str, dept_code: str, dept_name: str, report_count: int, study_count: int
) -> dict:
    """EXAM_DAILY_SUMMARY for one department and day (its key: orgCode, statDate, deptCode)."""
    daily = spec(DAILY)
    date_field, dept_field = daily.key[1:]
    payload = {name: default() for name, default in DEFAULTS.items()}
    payload.update(
        {date_field: stat_date, dept_field: dept_code, daily.fields[dept_field].name_field: dept_name}
    )
    payload.update(zip(DAILY_COUNT_FIELDS, (report_count, study_count), strict=True))
    return payload
