"""Strict JSON for machine APIs: what a hospital system sends is either exactly JSON we can store,
or refused with the path of the first problem.

``loads(raw, top=...)`` parses UTF-8 bytes and raises :class:`JsonRefused` (``field``, ``rule``,
``message``) for:

=========================  ===========  ===================================================
input                      rule         why
=========================  ===========  ===================================================
invalid UTF-8              ``encoding`` the body is not text in the declared charset
not JSON                   ``json``     syntax error, with line and column
``NaN``/``Infinity``       ``number``   not JSON (RFC 8259), and no database stores them
an integer beyond ±2^53    ``number``   cannot round-trip through JavaScript or a float
a float that overflows     ``number``   ``1e400`` would become ``inf``
NUL (U+0000)               ``nul``      PostgreSQL text cannot hold it; C strings cut at it
a lone surrogate           ``surrogate`` ``"\\ud800"``: not a character, not encodable as UTF-8
a duplicate key            ``duplicate`` the last would silently win (``idNo`` twice)
nesting deeper than 64     ``depth``    no record is that deep; 100,000 levels crash a parser
a wrong top-level type     ``type``     an object (or, for bulk, an array) is expected
=========================  ===========  ===================================================

Keys are checked like values. Paths read like the field errors of the specs:
``patient.name``, ``items[2].result``; ``""`` is the whole body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hospital_interop.errors import BAD_CHARACTER

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER: every caller can read it back


@dataclass
class JsonRefused(ValueError):
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '(body)'}: {self.message}"

    def as_error(self) -> dict:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class _Marker:
    """A value json could parse but we refuse; reported with its path by the walk."""

    def __init__(self, rule: str, message: str):
        self.rule, self.message = rule, message


class _Object(dict):
    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen, dups = set(), []
        for key, _ in pairs:
            if key in seen:
                dups.append(key)
            seen.add(key)
        obj.duplicates = tuple(dups)
    return obj


def _int(text: str):
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        return _Marker("number", f"整数 {text[:24]} 超出范围（绝对值至多 {MAX_SAFE_INTEGER}）")
    return value


def _float(text: str):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Marker("number", f"数值 {text[:24]} 超出范围")
    return value


def _constant(text: str):
    return _Marker("number", f"{text} 不是 JSON 数值")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_text(text: str, path: str) -> None:
    bad = BAD_CHARACTER.search(text)
    if bad is None:
        return
    if bad.group() == "\x00":
        raise JsonRefused(path, "nul", "不能包含空字符（U+0000）")
    raise JsonRefused(path, "surrogate", "含有无效的 Unicode 字符（孤立的代理项）")


def _walk(value, path: str, depth: int) -> None:
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, _Marker):
        raise JsonRefused(path, value.rule, value.message)
    elif isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise JsonRefused(path, "depth", f"嵌套层数超过 {MAX_DEPTH}")
        if isinstance(value, _Object) and value.duplicates:
            key = value.duplicates[0]
            raise JsonRefused(_join(path, key), "duplicate", f"字段 {key} 重复出现")
        for key, item in value.items():
            _check_text(key, _join(path, "（字段名）"))
            _walk(item, _join(path, key), depth + 1)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            raise JsonRefused(path, "depth", f"嵌套层数超过 {MAX_DEPTH}")
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", depth + 1)


def _plain(value):
    """The checked value with plain dicts (the duplicate-tracking subclass stays internal)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


TOPS = {"object": (dict,), "array": (list,), "any": (dict, list, str, int, float, bool, type(None))}
TOP_NAMES = {"object": "JSON 对象", "array": "JSON 数组", "any": "JSON 值"}


def loads(raw: bytes | str, *, top: str = "object"):
    """Parse and check one JSON document; JsonRefused names the first problem and where it is."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused(
                "", "encoding", f"请求体不是有效的 UTF-8 文本（第 {exc.start + 1} 字节）"
            ) from None
    else:
        text = raw
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(
            text, object_pairs_hook=_pairs, parse_int=_int, parse_float=_float, parse_constant=_constant
        )
    except RecursionError:
        raise JsonRefused("", "depth", f"嵌套层数超过 {MAX_DEPTH}") from None
    except json.JSONDecodeError as exc:
        raise JsonRefused(
            "", "json", f"不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列，{_reason(exc.msg)}"
        ) from None
    except ValueError:  # an integer with more digits than Python converts (sys.int_info)
        raise JsonRefused("", "number", "数值位数过多，超出范围") from None
    _walk(value, "", 1)
    if not isinstance(value, TOPS[top]):
        raise JsonRefused("", "type", f"请求体应为 {TOP_NAMES[top]}")
    return _plain(value)


_REASONS = {
    "Expecting value": "缺少值",
    "Expecting property name enclosed in double quotes": "字段名应使用双引号",
    "Expecting ':' delimiter": "缺少冒号",
    "Expecting ',' delimiter": "缺少逗号",
    "Extra data": "结尾有多余内容",
    "Unterminated string starting at": "字符串没有结束",
    "Invalid control character at": "字符串中有控制字符",
    "Invalid \\escape": "无效的转义",
    "Invalid \\uXXXX escape": "无效的 \\u 转义",
}


def _reason(msg: str) -> str:
    return _REASONS.get(msg, msg)
