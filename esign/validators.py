"""Field checks shared by the forms, the services and the CA simulator (pure Python, no Django)."""

from __future__ import annotations

import re
from datetime import date

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_STAFF_NO = re.compile(r"^[A-Za-z0-9]{2,20}$")
_NAME = re.compile(r"^[\u4e00-\u9fff·A-Za-z ]{2,30}$")


def id_number_error(value: str) -> tuple[str, str] | None:
    """(rule, Chinese message) if ``value`` is not a valid 18-digit resident ID (GB 11643), else None."""
    v = (value or "").strip().upper()
    if not v:
        return "required", "请输入身份证号。"
    if not re.fullmatch(r"\d{17}[\dX]", v):
        return "format", "身份证号应为 18 位：前 17 位为数字，最后一位为数字或 X。"
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return "birth_date", "身份证号中的出生日期无效。"
    if born > date.today() or born.year < 1900:
        return "birth_date", "身份证号中的出生日期无效。"
    expected = _ID_CHECK[sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True)) % 11]
    if v[17] != expected:
        return "checksum", "身份证号校验位不正确，请核对后重新输入。"
    return None


def normalize_id_number(value: str) -> str:
    return (value or "").strip().upper()


def mobile_error(value: str) -> tuple[str, str] | None:
    v = (value or "").strip()
    if not v:
        return "required", "请输入手机号。"
    if not _MOBILE.fullmatch(v):
        return "format", "手机号应为 11 位数字，以 13–19 开头。"
    return None


def staff_no_error(value: str) -> tuple[str, str] | None:
    v = (value or "").strip()
    if not v:
        return "required", "请输入工号。"
    if not _STAFF_NO.fullmatch(v):
        return "format", "工号应为 2–20 位字母或数字。"
    return None


def name_error(value: str) -> tuple[str, str] | None:
    v = (value or "").strip()
    if not v:
        return "required", "请输入姓名。"
    if not _NAME.fullmatch(v):
        return "format", "姓名应为 2–30 个汉字或字母。"
    return None


def mask_id_number(value: str) -> str:
    return value[:6] + "*" * 8 + value[-4:] if len(value) == 18 else value
