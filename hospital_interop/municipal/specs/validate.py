"""Payload validation: the format rules and the compiler that turns field specs into checks.

Each interface compiles its request (and response) fields once, when the catalogue is loaded,
into a tree of small closures (:func:`_compile_object`): one per field, chosen by the field's
type, with everything the check needs bound at compile time, so validating a payload costs about
as much as parsing its JSON (``benchmarks/specs_validate.py``). A check appends errors
``{"field", "rule", "message"}`` (see :func:`hospital_interop.errors.field_error`) to the list
it is given and never raises.

The named string formats of the specs (``format: resident-id | sm3-hex | timestamp-ms |
dicom-uid``) are :data:`FORMATS`; :func:`resident_id_ok` is the resident ID rule on its own.

This module imports nothing else of the package at run time; :mod:`.loader` builds the
:class:`~.loader.FieldSpec` objects it compiles.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hospital_interop.errors import BAD_CHARACTER, field_error
from hospital_interop.municipal.gm import sm3_hex

if TYPE_CHECKING:
    from .loader import FieldSpec

Errors = list[dict[str, str]]
Check = Callable[[Any, dict, str, Errors], None]  # (value, the object holding it, path, errors)


# --------------------------------------------------------------------------- formats


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_check_digit(first17: str) -> str:
    """The GB 11643 (MOD 11-2) check character of the first 17 digits of a resident ID."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return True


def _resident_id_problem(s: str) -> tuple[str, str, str] | None:
    if len(s) != 18 or not s[:17].isdigit() or not s[:17].isascii() or s[17] not in "0123456789X":
        return (
            "format",
            "居民身份证号码应为18位（前17位数字，末位数字或大写X）",
            "resident ID must be 17 digits and a digit or X",
        )
    if not _valid_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
        return ("format", "居民身份证号码中的出生日期无效", "birth date inside the resident ID is invalid")
    if _id_check_digit(s[:17]) != s[17]:
        return ("checksum", "居民身份证号码校验位错误", "resident ID check digit is wrong (GB 11643)")
    return None


def resident_id_ok(s: str) -> bool:
    """True for an 18-character resident ID with valid birth date and GB 11643 (MOD 11-2) check digit."""
    return isinstance(s, str) and _resident_id_problem(s) is None


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _sm3_problem(s: str):
    if not _HEX64.match(s):
        return ("format", "应为64位十六进制SM3摘要", "expected 64 hex characters (SM3)")
    return None


def _timestamp_ms_problem(s: str):
    if len(s) != 17 or not s.isdigit() or not s.isascii() or not _datetime_ok(s[:14]):
        return ("format", "应为yyyyMMddHHmmssSSS格式的17位时间戳", "expected yyyyMMddHHmmssSSS")
    return None


def _uid_problem(s: str):
    if len(s) > 64 or not _UID.match(s):
        return ("format", "DICOM UID格式错误", "not a DICOM UID (digits and dots, max 64)")
    return None


# format name -> rule: None when the string is fine, else (rule, 中文说明, English)
FORMATS: dict[str, Callable[[str], tuple[str, str, str] | None]] = {
    "resident-id": _resident_id_problem,
    "sm3-hex": _sm3_problem,
    "timestamp-ms": _timestamp_ms_problem,
    "dicom-uid": _uid_problem,
}


def _date_ok(s: str) -> bool:
    return len(s) == 8 and s.isdigit() and s.isascii() and _valid_date(int(s[:4]), int(s[4:6]), int(s[6:]))


def _datetime_ok(s: str) -> bool:
    return (
        len(s) == 14
        and s.isdigit()
        and s.isascii()
        and _valid_date(int(s[:4]), int(s[4:6]), int(s[6:8]))
        and int(s[8:10]) < 24
        and int(s[10:12]) < 60
        and int(s[12:14]) < 60
    )


# --------------------------------------------------------------------------- the compiler


_TYPE_ZH = {
    "string": "字符串",
    "integer": "整数",
    "decimal": "数值",
    "date": "日期（yyyyMMdd）",
    "datetime": "日期时间（yyyyMMddHHmmss）",
    "boolean": "布尔值",
    "code": "代码（字符串）",
    "object": "对象",
    "array": "数组",
    "file": "Base64文件内容",
}


def _type_error(f: FieldSpec, path: str, expected: str | None = None) -> dict[str, str]:
    expected = expected or f.type
    return field_error(
        path, "type", f"{f.title}应为{_TYPE_ZH.get(expected, expected)}", f"expected {expected}"
    )


def _too_long(f: FieldSpec, path: str, n: int) -> dict[str, str]:
    unit = "位" if f.type == "integer" else "个字符"
    return field_error(path, "length", f"{f.title}长度不能超过{n}{unit}", f"longer than {n}")


def _condition(cond: dict[str, tuple]) -> Callable[[dict], bool]:
    """A predicate over the object holding a field: every sibling named has one of its values
    (same type too: 1 is not "1", True is not 1)."""
    items = tuple(cond.items())

    def holds(obj: dict) -> bool:
        for k, values in items:
            v = obj.get(k)
            if not any(v == x and type(v) is type(x) for x in values):
                return False
        return True

    return holds


def _compile_object(fields: dict[str, FieldSpec]) -> Callable[[dict, str, Errors], None]:
    """The check of an object's fields: presence (required, requiredWhen), each value, and no
    field the spec does not define. ``check(obj, prefix, errors)``; prefix ends with "." or is ""."""
    entries = tuple(
        (f.name, _compile_value(f), f.required, _condition(f.required_when) if f.required_when else None, f)
        for f in fields.values()
    )
    allowed = frozenset(fields)

    def check(obj: dict, prefix: str, errors: Errors) -> None:
        for name, chk, required, required_when, f in entries:
            v = obj.get(name)
            if v is None or v == "":
                if required or (required_when is not None and required_when(obj)):
                    errors.append(
                        field_error(prefix + name, "required", f"{f.title}为必填项", "required field missing")
                    )
                continue
            chk(v, obj, prefix + name, errors)
        for k in obj:
            if k not in allowed:
                errors.append(
                    field_error(
                        f"{prefix}{k}",
                        "unknown",
                        "接口规范未定义该字段",
                        "field not defined by the interface spec",
                    )
                )

    return check


def _compile_value(f: FieldSpec) -> Check:
    """The check of one present (not null, not "") value of field ``f``, by its type."""
    return _COMPILERS[f.type](f)


def _string_check(f: FieldSpec) -> Check:
    length = f.length
    fmt = FORMATS.get(f.format) if f.format else None
    when = _condition(f.when) if f.when else None
    pattern = f.pattern

    def check_string(v, parent, path, errors):
        if type(v) is not str:
            errors.append(_type_error(f, path))
            return
        if BAD_CHARACTER.search(v):
            errors.append(
                field_error(
                    path,
                    "character",
                    f"{f.title}含有不允许的字符（空字符或孤立代理项）",
                    "contains U+0000 or a lone surrogate",
                )
            )
            return
        if length is not None and len(v) > length:
            errors.append(_too_long(f, path, length))
            return
        if pattern is not None and pattern.fullmatch(v) is None:
            errors.append(
                field_error(path, "format", f"{f.title}格式错误", f"does not match {pattern.pattern}")
            )
        if fmt is not None and (when is None or when(parent)):
            problem = fmt(v)
            if problem is not None:
                errors.append(field_error(path, problem[0], f"{f.title}：{problem[1]}", problem[2]))

    return check_string


def _code_check(f: FieldSpec) -> Check:
    """A code of the field's value set; with ``nameField``, the sibling name must be the code's
    name (or one of its aliases)."""
    length = f.length
    vs = f.value_set
    names = {c: vs.names(c) for c in vs.codes}
    open_pattern = vs.pattern if vs.subset else None
    name_field = f.name_field
    own = len(f.name)

    def check_code(v, parent, path, errors):
        if type(v) is not str:
            errors.append(_type_error(f, path))
            return
        if length is not None and len(v) > length:
            errors.append(_too_long(f, path, length))
            return
        accepted = names.get(v)
        if accepted is None:
            if open_pattern is None or open_pattern.fullmatch(v) is None:
                errors.append(
                    field_error(
                        path,
                        "valueSet",
                        f"{f.title}“{v}”不在值域“{vs.title}”中",
                        f"code not in value set {vs.id}",
                    )
                )
            return
        if name_field is not None:
            given = parent.get(name_field)
            if (
                type(given) is str and given != "" and given not in accepted
            ):  # non-strings fail their own type check
                errors.append(
                    field_error(
                        path[:-own] + name_field,
                        "nameMatch",
                        f"名称“{given}”与{f.title}“{v}”对应的名称“{vs.codes[v]}”不符",
                        "name does not match the code",
                    )
                )

    return check_code


def _integer_check(f: FieldSpec) -> Check:
    length = f.length

    def check_integer(v, parent, path, errors):
        if type(v) is not int:
            errors.append(_type_error(f, path))
        elif length is not None and len(str(abs(v))) > length:
            errors.append(_too_long(f, path, length))

    return check_integer


def _decimal_check(f: FieldSpec) -> Check:
    """A JSON number within ``precision: [p, s]``: at most p - s integer and s fraction digits."""
    p, s = f.precision
    max_int = p - s

    def check_decimal(v, parent, path, errors):
        tv = type(v)
        if tv is int:
            int_digits, frac_digits = len(str(abs(v))), 0
        elif tv is float and v == v and v not in (float("inf"), float("-inf")):
            text = repr(abs(v))
            if "e" in text:
                text = format(Decimal(text), "f")
            head, _, tail = text.partition(".")
            int_digits, frac_digits = len(head.lstrip("0")), len(tail.rstrip("0"))
        else:
            errors.append(_type_error(f, path))
            return
        if int_digits > max_int or frac_digits > s:
            errors.append(
                field_error(
                    path,
                    "precision",
                    f"{f.title}超出精度N..{p},{s}（整数部分至多{max_int}位，小数至多{s}位）",
                    f"exceeds precision {p},{s}",
                )
            )

    return check_decimal


def _date_check(f: FieldSpec) -> Check:
    ok = _date_ok if f.type == "date" else _datetime_ok
    shape = "yyyyMMdd" if f.type == "date" else "yyyyMMddHHmmss"

    def check_date(v, parent, path, errors):
        if type(v) is not str:
            errors.append(_type_error(f, path))
        elif not ok(v):
            errors.append(
                field_error(path, "format", f"{f.title}应为有效的{shape}", f"expected a valid {shape}")
            )

    return check_date


def _boolean_check(f: FieldSpec) -> Check:
    """JSON true/false, or "T"/"F" in documents with ``booleanEncoding: TF``."""
    if f.boolean_encoding == "TF":

        def check_tf(v, parent, path, errors):
            if v not in ("T", "F") or type(v) is not str:
                errors.append(field_error(path, "type", f"{f.title}应为T或F", "expected T or F"))

        return check_tf

    def check_bool(v, parent, path, errors):
        if type(v) is not bool:
            errors.append(field_error(path, "type", f"{f.title}应为true或false", "expected true or false"))

    return check_bool


def _object_check(f: FieldSpec) -> Check:
    inner = _compile_object(f.fields)

    def check_object(v, parent, path, errors):
        if type(v) is not dict:
            errors.append(_type_error(f, path))
        else:
            inner(v, path + ".", errors)

    return check_object


def _array_check(f: FieldSpec) -> Check:
    item_check = _compile_value(f.items)
    min_items, max_items = f.min_items, f.max_items
    item_type = f.items.type

    def check_array(v, parent, path, errors):
        if type(v) is not list:
            errors.append(_type_error(f, path))
            return
        if len(v) < min_items:
            errors.append(
                field_error(
                    path, "minItems", f"{f.title}至少需要{min_items}项", f"at least {min_items} items"
                )
            )
        if max_items is not None and len(v) > max_items:
            errors.append(
                field_error(path, "length", f"{f.title}至多{max_items}项", f"at most {max_items} items")
            )
        for i, item in enumerate(v):
            if item is None:
                errors.append(
                    field_error(
                        f"{path}[{i}]",
                        "type",
                        f"{f.title}的元素不能为空",
                        f"item is null, expected {item_type}",
                    )
                )
            else:
                item_check(item, v, f"{path}[{i}]", errors)

    return check_array


def _file_check(f: FieldSpec) -> Check:
    """Base64 content within the document's size limit; the ``sizeField`` and ``hashField``
    siblings, when present and well-formed, must match the decoded bytes."""
    max_bytes = f.max_file_bytes
    size_field, hash_field = f.size_field, f.hash_field
    own = len(f.name)

    def check_file(v, parent, path, errors):
        if type(v) is not str:
            errors.append(_type_error(f, path))
            return
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            errors.append(field_error(path, "format", f"{f.title}不是有效的Base64", "not valid Base64"))
            return
        if len(raw) > max_bytes:
            errors.append(
                field_error(
                    path, "length", f"文件超过{max_bytes}字节上限", f"file larger than {max_bytes} bytes"
                )
            )
        base = path[:-own]
        if size_field is not None:
            size = parent.get(size_field)
            if type(size) is int and size != len(raw):
                errors.append(
                    field_error(
                        base + size_field,
                        "checksum",
                        f"文件大小{size}与内容实际大小{len(raw)}不符",
                        "file size does not match the content",
                    )
                )
        if hash_field is not None:
            digest = parent.get(hash_field)
            if type(digest) is str and _HEX64.match(digest) and digest.lower() != sm3_hex(raw):
                errors.append(
                    field_error(
                        base + hash_field,
                        "checksum",
                        "文件SM3摘要与内容不符",
                        "SM3 digest does not match the content",
                    )
                )

    return check_file


# field type -> the compiler of its check (the loader admits exactly these types)
_COMPILERS: dict[str, Callable[[FieldSpec], Check]] = {
    "string": _string_check,
    "code": _code_check,
    "integer": _integer_check,
    "decimal": _decimal_check,
    "date": _date_check,
    "datetime": _date_check,
    "boolean": _boolean_check,
    "object": _object_check,
    "array": _array_check,
    "file": _file_check,
}
