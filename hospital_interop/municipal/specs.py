"""The interface catalogue as data: loader, payload validator and example generator.

Specs are data. Every municipal interface's document, version, path, key fields and payload
schema live in ``specs/<document>/<version>.yaml``; code never spells a field name of the
municipal payload. A new document version is a new YAML file (and a value set correction is a
data change too).

Layout of the spec folder::

    specs/_common/value_sets.yaml     value sets shared by all documents
    specs/_common/fields.yaml         reusable field groups (patient, doctor, file, ...)
    specs/<document>/<version>.yaml   one file per document and version

Document file::

    document: lab                     # must equal the folder name
    version: "3.0.2.0"                # must equal the file name (quoted: YAML would read a float)
    title: 检查检验结果互认-检验互认接口文档
    profile: {signType: SM2, ...}     # envelope knobs, handed to Profile.from_dict()
    booleanEncoding: json             # json (true/false, the default) or TF ("T"/"F" per WS 363)
    valueSets: {...}                  # optional: sets added or redefined for this version only
    groups: {...}                     # optional: field groups local to this document
    defaults: {response: {...}}       # optional: response of uploads that do not define one
    interfaces:
      - code: LAB_REPORT_DETAIL       # service code, unique in the catalogue
        section: "3.3"                # section of the municipal document
        name: 检验报告明细上报/变更
        path: /lab/report/detail
        kind: upload                  # upload | void | daily | query | security
        envelope: sealed              # sealed (default) or plain (not encrypted, not signed)
        key: [orgCode, reportId]      # primary key: required top-level request fields
        parents:                      # ordering: the platform answers 2002 until a parent exists
          - {interface: OP_VISIT, match: {visitId: visitId}}   # child field -> parent field;
                                      # orgCode is implied; match must cover the parent's key
        voids: []                     # kind void: the interfaces whose records it voids
        note: free text
        request: {...fields...}
        response: {...fields...}      # data returned (required for query and security kinds)

Field definition (``fieldName: {...}``; names are readable camelCase)::

    title: 中文名                      type: string|integer|decimal|date|datetime|boolean|code|
                                            object|array|file
    length: N            max characters (string, code) or digits (integer)
    precision: [p, s]    decimal: at most p digits, s of them after the point (N..p,s)
    required: true       (default false); absent, null and "" count as missing
    requiredWhen: {siblingField: value or [values]}   required only under that condition
    valueSet: SET_ID     code: the code must be in the set (subset sets: or match its pattern)
    nameField: xxxName   code: the sibling field carrying the name; it must match the code
    format: resident-id | sm3-hex | timestamp-ms | dicom-uid   (string)
    when: {siblingField: value}   the format applies only then (idNo: when idTypeCode is "01")
    pattern: regex       string: full match required (rule "format")
    fields: {...}        object: its fields (``type`` may be left out)
    items: {...}         array: the definition of one item; minItems / maxItems
    sizeField / hashField   file: sibling fields that must equal the decoded size / SM3 hex
    de: DE02.01.039.00   metadata: the WS 363 data element
    binds: visit         string: an identifier that belongs to ONE patient (visit | stay | order |
                         application | labReport | examReport); the outbox refuses a payload that
                         names it with another patient than it was first stored with
    note: free text;  example: hint for the example generator (see specs/_common/fields.yaml)

Wire conventions: date = yyyyMMdd (D8); datetime = yyyyMMddHHmmss (14 digits); decimals and
integers are JSON numbers; codes are JSON strings; booleans are JSON true/false unless the
document says ``booleanEncoding: TF``; files are Base64 strings (platform-protocol.md §6).

A ``$use`` key (also ``$use2``, ``$use3``, ...) inside a field mapping splices field groups in;
see specs/_common/fields.yaml. Validation errors are dictionaries
``{"field": "items[2].resultValue", "rule": ..., "message": "中文说明 (English)"}`` with rule one of
required, type, length, precision, valueSet, nameMatch, format, checksum, minItems, unknown.
The platform is strict: fields the spec does not define are errors at every level.

Public API: :func:`load_catalogue`, :class:`Catalogue`, :class:`InterfaceSpec`,
:class:`FieldSpec`, :class:`ValueSet`, :class:`SpecError`, :func:`resident_id_ok`, and the
renderers used by ``manage.py specs``: :func:`catalogue_table`, :func:`field_tree`,
:func:`check_payload_file`, :func:`example_json`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import functools
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from hospital_interop.errors import field_error
from hospital_interop.municipal.profile import Profile

__all__ = [
    "SPEC_ROOT",
    "Catalogue",
    "DocumentSpec",
    "FieldSpec",
    "InterfaceSpec",
    "Parent",
    "SpecError",
    "ValueSet",
    "catalogue_table",
    "check_payload_file",
    "example_json",
    "field_tree",
    "identity_errors",
    "load_catalogue",
    "resident_id_ok",
]

SPEC_ROOT = Path(__file__).with_name("specs")
COMMON_DIR = "_common"

TYPES = ("string", "integer", "decimal", "date", "datetime", "boolean", "code", "object", "array", "file")
KINDS = ("upload", "void", "daily", "query", "security")
ENVELOPES = ("sealed", "plain")
FIELD_ATTRS = frozenset({
    "title", "type", "length", "precision", "required", "requiredWhen", "valueSet", "nameField", "de",
    "format", "when", "pattern", "fields", "items", "minItems", "maxItems", "sizeField", "hashField",
    "note", "example", "binds",
})
BIND_KINDS = ("visit", "stay", "order", "application", "labReport", "examReport")
DOCUMENT_ATTRS = frozenset({
    "document", "version", "title", "profile", "booleanEncoding", "valueSets", "groups", "defaults",
    "interfaces", "note",
})
INTERFACE_ATTRS = frozenset({
    "code", "section", "name", "path", "kind", "envelope", "key", "parents", "voids", "note", "request",
    "response",
})
VALUE_SET_ATTRS = frozenset({"title", "source", "subset", "pattern", "codes"})
DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024
_USE_KEY = re.compile(r"^\$use[0-9]*$")
_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SpecError(ValueError):
    """A spec file is malformed; names the file and the path inside it."""

    def __init__(self, file: Path | str, where: str, message: str):
        self.file = str(file)
        self.where = where
        self.detail = message
        super().__init__(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")


# --------------------------------------------------------------------------- YAML reading


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


class _DuplicateKey(Exception):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    result = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise _DuplicateKey(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(file: Path) -> Any:
    try:
        with file.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)
    except _DuplicateKey as exc:
        raise SpecError(file, "", str(exc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"not valid YAML: {exc}") from None


# --------------------------------------------------------------------------- value sets


@dataclass(frozen=True)
class ValueSet:
    id: str
    title: str
    codes: dict[str, str]  # code -> name
    source: str = ""
    subset: bool = False  # True: not the complete list; unlisted codes matching `pattern` pass
    pattern: re.Pattern | None = None
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code -> other accepted names

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def name_of(self, code: str) -> str | None:
        return self.codes.get(code)

    def accepts(self, code: str) -> bool:
        return code in self.codes or bool(self.subset and self.pattern and self.pattern.fullmatch(code))

    def names(self, code: str) -> frozenset[str]:
        return frozenset((self.codes[code], *self.aliases.get(code, ())))


def _parse_value_sets(raw: Any, file: Path, where: str) -> dict[str, ValueSet]:
    if not isinstance(raw, dict):
        raise SpecError(file, where, "value sets must be a mapping SET_ID -> {title, codes}")
    sets = {}
    for set_id, body in raw.items():
        here = f"{where}.{set_id}" if where else str(set_id)
        if not isinstance(set_id, str) or not _CODE.match(set_id):
            raise SpecError(file, here, "value set ids are UPPER_SNAKE_CASE strings")
        if not isinstance(body, dict):
            raise SpecError(file, here, "a value set is a mapping with title and codes")
        unknown = set(body) - VALUE_SET_ATTRS
        if unknown:
            raise SpecError(file, here, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {sorted(VALUE_SET_ATTRS)})")
        if not isinstance(body.get("title"), str):
            raise SpecError(file, here, "title missing")
        codes_raw = body.get("codes")
        if not isinstance(codes_raw, dict) or not codes_raw:
            raise SpecError(file, here, "codes missing or empty")
        codes, aliases = {}, {}
        for code, name in codes_raw.items():
            if not isinstance(code, str):
                raise SpecError(file, f"{here}.codes.{code}", "codes must be quoted strings")
            if isinstance(name, dict):
                if not isinstance(name.get("name"), str) or set(name) - {"name", "aliases"}:
                    raise SpecError(file, f"{here}.codes.{code}", "use {name: ..., aliases: [...]}")
                aliases[code] = tuple(str(a) for a in name.get("aliases", ()))
                name = name["name"]
            if not isinstance(name, str):
                raise SpecError(file, f"{here}.codes.{code}", "the name of a code is a string")
            codes[code] = name
        subset = body.get("subset", False)
        pattern = None
        if body.get("pattern") is not None:
            try:
                pattern = re.compile(body["pattern"])
            except (re.error, TypeError) as exc:
                raise SpecError(file, f"{here}.pattern", f"bad regular expression: {exc}") from None
        if subset and pattern is None:
            raise SpecError(file, here, "a subset value set needs a pattern for the codes it does not list")
        if pattern is not None:
            for code in codes:
                if not pattern.fullmatch(code):
                    raise SpecError(file, f"{here}.codes.{code}", "code does not match the set's pattern")
        sets[set_id] = ValueSet(set_id, body["title"], codes, str(body.get("source", "")), bool(subset),
                                pattern, aliases)
    return sets


# --------------------------------------------------------------------------- formats


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _id_check_digit(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return True


def _resident_id_problem(s: str) -> tuple[str, str, str] | None:
    if len(s) != 18 or not s[:17].isdigit() or not s[:17].isascii() or s[17] not in "0123456789X":
        return ("format", "居民身份证号码应为18位（前17位数字，末位数字或大写X）",
                "resident ID must be 17 digits and a digit or X")
    if not _valid_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
        return ("format", "居民身份证号码中的出生日期无效", "birth date inside the resident ID is invalid")
    if _id_check_digit(s[:17]) != s[17]:
        return ("checksum", "居民身份证号码校验位错误", "resident ID check digit is wrong (GB 11643)")
    return None


def resident_id_ok(s: str) -> bool:
    """True for an 18-character resident ID with valid birth date and GB 11643 (MOD 11-2) check digit."""
    return isinstance(s, str) and _resident_id_problem(s) is None


def identity_errors(patient: dict, prefix: str = "patient") -> list[dict[str, str]]:
    """The platform's rules for a patient's identity fields, for intakes whose own formats carry
    them (HIS events and prompts, LIS reports): ID type in ID_TYPE, a 身份证 (type 01) with its
    birth date and GB 11643 check digit, sex in SEX, birth date a real calendar date (yyyyMMdd).
    Absent fields are the caller's to require; errors name ``prefix.field``."""
    catalogue, errors = load_catalogue(), []
    id_type, id_no = patient.get("idTypeCode") or "01", patient.get("idNo")
    if id_type not in catalogue.value_set("ID_TYPE"):
        errors.append(field_error(f"{prefix}.idTypeCode", "valueSet", f"证件类别代码 {id_type} 不在值域 ID_TYPE 中",
                           "not in value set ID_TYPE"))
    elif id_type == "01" and isinstance(id_no, str) and id_no and (problem := _resident_id_problem(id_no.upper())):
        errors.append(field_error(f"{prefix}.idNo", *problem))
    sex = patient.get("sexCode")
    if sex and sex not in catalogue.value_set("SEX"):
        errors.append(field_error(f"{prefix}.sexCode", "valueSet", f"性别代码 {sex} 不在值域 SEX 中", "not in value set SEX"))
    birth = patient.get("birthDate")
    if birth and not (isinstance(birth, str) and _date_ok(birth)):
        errors.append(field_error(f"{prefix}.birthDate", "format", "出生日期应为有效日期 yyyyMMdd", "expected a real date yyyyMMdd"))
    return errors


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
        len(s) == 14 and s.isdigit() and s.isascii()
        and _valid_date(int(s[:4]), int(s[4:6]), int(s[6:8]))
        and int(s[8:10]) < 24 and int(s[10:12]) < 60 and int(s[12:14]) < 60
    )


def sm3_hex(data: bytes) -> str:
    try:
        return hashlib.new("sm3", data).hexdigest()
    except ValueError:  # OpenSSL without SM3 in hashlib: cryptography carries its own
        from cryptography.hazmat.primitives import hashes

        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize().hex()


# --------------------------------------------------------------------------- field specs


@dataclass
class FieldSpec:
    name: str
    title: str
    type: str
    length: int | None = None
    precision: tuple[int, int] | None = None
    required: bool = False
    required_when: dict[str, tuple] | None = None
    value_set: ValueSet | None = None
    name_field: str | None = None
    de: str | None = None
    format: str | None = None
    when: dict[str, tuple] | None = None
    pattern: re.Pattern | None = None
    fields: dict[str, FieldSpec] | None = None
    items: FieldSpec | None = None
    min_items: int = 0
    max_items: int | None = None
    size_field: str | None = None
    hash_field: str | None = None
    note: str | None = None
    example: Any = None
    binds: str | None = None  # the namespace of a patient-owned identifier (BIND_KINDS)
    max_file_bytes: int = field(default=DEFAULT_MAX_FILE_BYTES, repr=False)  # from the document's profile
    boolean_encoding: str = field(default="json", repr=False)  # the document's booleanEncoding

    def walk(self, prefix: str = ""):
        """Yield (path, FieldSpec) for every field below this one, depth first, in order."""
        if self.fields:
            for f in self.fields.values():
                path = f"{prefix}{f.name}"
                yield path, f
                yield from f.walk(path + ".")
        elif self.items is not None:
            yield from self.items.walk(prefix[:-1] + "[]." if prefix else "[].")

    def type_label(self) -> str:
        if self.type == "decimal" and self.precision:
            return f"decimal({self.precision[0]},{self.precision[1]})"
        if self.length:
            return f"{self.type}({self.length})"
        if self.type == "array" and self.items is not None:
            return f"array<{self.items.type}>"
        return self.type


class _Context:
    """What building fields of one document needs: file, groups, value sets, conventions."""

    def __init__(self, file: Path, groups: dict, value_sets: dict[str, ValueSet], boolean_encoding: str,
                 max_file_bytes: int):
        self.file = file
        self.groups = groups  # name -> (origin file, raw)
        self.value_sets = value_sets
        self.boolean_encoding = boolean_encoding
        self.max_file_bytes = max_file_bytes

    def fail(self, where: str, message: str):
        raise SpecError(self.file, where, message)


def _substitute(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PARAM.sub(lambda m: params.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {_substitute(k, params): _substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params) for v in value]
    return value


def _expand(raw: Any, where: str, ctx: _Context, stack: tuple[str, ...] = ()) -> dict[str, dict]:
    """Resolve `$use` keys: return an ordered mapping field name -> raw field definition."""
    if not isinstance(raw, dict):
        ctx.fail(where, "expected a mapping of field name -> field definition")
    out: dict[str, dict] = {}
    explicit: set[str] = set()
    for key, value in raw.items():
        if isinstance(key, str) and _USE_KEY.match(key):
            uses = value if isinstance(value, list) else ctx.fail(f"{where}.{key}", "$use takes a list of groups")
            for n, use in enumerate(uses):
                here = f"{where}.{key}[{n}]"
                if isinstance(use, str):
                    use = {"group": use}
                if not isinstance(use, dict) or not isinstance(use.get("group"), str):
                    ctx.fail(here, "a group reference is a name or {group: name, param: value, ...}")
                name = use["group"]
                if name not in ctx.groups:
                    ctx.fail(here, f"unknown field group {name!r} (known: {sorted(ctx.groups)})")
                if name in stack:
                    ctx.fail(here, f"field group {name!r} includes itself")
                group = ctx.groups[name]
                params_default = {}
                body = group
                if isinstance(group, dict) and set(group) == {"params", "fields"}:
                    params_default, body = group["params"] or {}, group["fields"]
                options = {k: v for k, v in use.items() if k not in ("group", "required", "examples")}
                unknown = set(options) - set(params_default)
                if unknown:
                    ctx.fail(here, f"group {name!r} has no parameter {sorted(unknown)[0]!r}"
                                   f" (parameters: {sorted(params_default)})")
                params = {**{k: str(v) for k, v in params_default.items()}, **{k: str(v) for k, v in options.items()}}
                body = _substitute(body, params)
                leftover = _PARAM.search(json.dumps(body, ensure_ascii=False))
                if leftover:
                    ctx.fail(here, f"placeholder {leftover.group(0)} of group {name!r} has no value")
                expanded = _expand(body, f"{here}({name})", ctx, (*stack, name))
                required = use.get("required")
                if required is not None and not isinstance(required, bool):
                    ctx.fail(f"{here}.required", "required is true or false")
                examples = use.get("examples") or {}
                if not isinstance(examples, dict) or set(examples) - set(expanded):
                    ctx.fail(f"{here}.examples", f"examples maps fields of group {name!r} to example hints")
                for fname, fdef in expanded.items():
                    if fname in out and fname in explicit:
                        ctx.fail(here, f"group {name!r} redefines field {fname!r} defined before it")
                    if required is False and isinstance(fdef, dict):
                        fdef = {**fdef, "required": False}
                    if fname in examples and isinstance(fdef, dict):
                        fdef = {**fdef, "example": examples[fname]}
                    out[fname] = fdef
        else:
            out[key] = value
            explicit.add(key)
    return out


def _cond(raw: Any, where: str, ctx: _Context, siblings: dict) -> dict[str, tuple]:
    if not isinstance(raw, dict) or not raw:
        ctx.fail(where, "a condition is a mapping siblingField: value (or [values])")
    out = {}
    for k, v in raw.items():
        if k not in siblings:
            ctx.fail(where, f"condition names {k!r}, which is not a field of the same object")
        out[k] = tuple(v) if isinstance(v, list) else (v,)
    return out


def _build_object(raw_fields: Any, where: str, ctx: _Context) -> dict[str, FieldSpec]:
    expanded = _expand(raw_fields, where, ctx)
    fields = {name: _build_field(name, fdef, f"{where}.{name}", ctx) for name, fdef in expanded.items()}
    # Sibling references are checked once the whole object is known.
    for name, f in fields.items():
        here = f"{where}.{name}"
        raw = expanded[name]
        if f.name_field is not None:
            other = fields.get(f.name_field)
            if other is None or other.type != "string":
                ctx.fail(here, f"nameField {f.name_field!r} must be a string field of the same object")
        if "requiredWhen" in raw:
            f.required_when = _cond(raw["requiredWhen"], f"{here}.requiredWhen", ctx, fields)
        if "when" in raw:
            f.when = _cond(raw["when"], f"{here}.when", ctx, fields)
        for attr in ("size_field", "hash_field"):
            ref = getattr(f, attr)
            if ref is not None and ref not in fields:
                ctx.fail(here, f"{attr} {ref!r} is not a field of the same object")
    return fields


def _positive_int(value: Any, where: str, ctx: _Context, what: str) -> int:
    if type(value) is not int or value < 0:
        ctx.fail(where, f"{what} must be a non-negative integer")
    return value


_HINT = re.compile(r"^@(t([+-][0-9]+[dhm])*|persona\.[A-Za-z]+|person|staffId|licenseNo|uid|i)$")
PERSONA_ATTRS = frozenset({
    "name", "sexCode", "birthDate", "idNo", "phone", "ageYears", "address", "postcode", "contactName",
    "province", "city", "county", "street", "healthCardNo",
})


def _check_example(value: Any, where: str, ctx: _Context):
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, str) and v.startswith("@"):
            if not _HINT.match(v) or (v.startswith("@persona.") and v[9:] not in PERSONA_ATTRS):
                ctx.fail(where, f"unknown example generator {v!r}")


def _build_field(name: str, raw: Any, where: str, ctx: _Context, *, item: bool = False) -> FieldSpec:
    if not item and (not isinstance(name, str) or not _NAME.match(name)):
        ctx.fail(where, f"field name {name!r} must be camelCase (letters and digits, lower-case first)")
    if not isinstance(raw, dict):
        ctx.fail(where, "a field definition is a mapping {title, type, ...}")
    unknown = set(raw) - FIELD_ATTRS
    if unknown:
        ctx.fail(where, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(FIELD_ATTRS))})")
    ftype = raw.get("type", "object" if "fields" in raw else None)
    if ftype not in TYPES:
        ctx.fail(where, f"type {ftype!r} is not one of {', '.join(TYPES)}")
    title = raw.get("title")
    if title is None and not item:
        ctx.fail(where, "title missing")
    if title is not None and not isinstance(title, str):
        ctx.fail(where, "title must be a string")
    f = FieldSpec(name=name, title=title or "", type=ftype)
    if "required" in raw:
        if not isinstance(raw["required"], bool):
            ctx.fail(f"{where}.required", "required is true or false")
        f.required = raw["required"]
    if item and (f.required or "requiredWhen" in raw):
        ctx.fail(where, "array items cannot be required: use minItems on the array")

    def only(attr: str, *types: str):
        if attr in raw and ftype not in types:
            ctx.fail(f"{where}.{attr}", f"{attr} applies to {'/'.join(types)} fields, not {ftype}")

    only("length", "string", "code", "integer")
    only("precision", "decimal")
    only("valueSet", "code")
    only("nameField", "code")
    only("format", "string")
    only("when", "string")
    only("pattern", "string")
    only("fields", "object")
    only("items", "array")
    only("minItems", "array")
    only("maxItems", "array")
    only("sizeField", "file")
    only("hashField", "file")
    only("binds", "string")
    if "binds" in raw:
        if raw["binds"] not in BIND_KINDS:
            ctx.fail(f"{where}.binds", f"binds is one of {', '.join(BIND_KINDS)}")
        f.binds = raw["binds"]
    if "length" in raw:
        f.length = _positive_int(raw["length"], f"{where}.length", ctx, "length")
    if ftype == "decimal":
        p = raw.get("precision")
        if (not isinstance(p, list) or len(p) != 2 or not all(type(x) is int for x in p)
                or not 0 <= p[1] <= p[0] or p[0] == 0):
            ctx.fail(f"{where}.precision", "decimal fields need precision: [digits, decimals]")
        f.precision = (p[0], p[1])
    if ftype == "code":
        set_id = raw.get("valueSet")
        if set_id is None:
            ctx.fail(where, "code fields need a valueSet")
        if set_id not in ctx.value_sets:
            ctx.fail(f"{where}.valueSet", f"unknown value set {set_id!r}")
        f.value_set = ctx.value_sets[set_id]
        f.name_field = raw.get("nameField")
        if item and f.name_field:
            ctx.fail(where, "array items of type code cannot have a nameField")
    if "format" in raw:
        if raw["format"] not in FORMATS:
            ctx.fail(f"{where}.format", f"unknown format {raw['format']!r} (known: {', '.join(FORMATS)})")
        f.format = raw["format"]
    if "when" in raw and "format" not in raw:
        ctx.fail(f"{where}.when", "when restricts a format; use requiredWhen for conditional presence")
    if "pattern" in raw:
        try:
            f.pattern = re.compile(raw["pattern"])
        except (re.error, TypeError) as exc:
            ctx.fail(f"{where}.pattern", f"bad regular expression: {exc}")
    if ftype == "object":
        if "fields" not in raw:
            ctx.fail(where, "object fields need fields")
        f.fields = _build_object(raw["fields"], f"{where}.fields", ctx)
    if ftype == "array":
        if not isinstance(raw.get("items"), dict):
            ctx.fail(where, "array fields need items: {field definition of one item}")
        f.items = _build_field(f"{name}[]", raw["items"], f"{where}.items", ctx, item=True)
        if not f.items.title:
            f.items.title = f.title
        f.min_items = _positive_int(raw.get("minItems", 0), f"{where}.minItems", ctx, "minItems")
        if "maxItems" in raw:
            f.max_items = _positive_int(raw["maxItems"], f"{where}.maxItems", ctx, "maxItems")
    if ftype == "file":
        f.size_field = raw.get("sizeField")
        f.hash_field = raw.get("hashField")
    f.de = raw.get("de")
    f.note = raw.get("note")
    if "example" in raw:
        _check_example(raw["example"], f"{where}.example", ctx)
        f.example = raw["example"]
    f.max_file_bytes = ctx.max_file_bytes
    f.boolean_encoding = ctx.boolean_encoding
    return f


# --------------------------------------------------------------------------- validation


_TYPE_ZH = {
    "string": "字符串", "integer": "整数", "decimal": "数值", "date": "日期（yyyyMMdd）",
    "datetime": "日期时间（yyyyMMddHHmmss）", "boolean": "布尔值", "code": "代码（字符串）",
    "object": "对象", "array": "数组", "file": "Base64文件内容",
}

Errors = list[dict[str, str]]
Check = Callable[[Any, dict, str, Errors], None]


def _type_error(f: FieldSpec, path: str, expected: str | None = None) -> dict[str, str]:
    expected = expected or f.type
    return field_error(path, "type", f"{f.title}应为{_TYPE_ZH.get(expected, expected)}", f"expected {expected}")


def _condition(cond: dict[str, tuple]) -> Callable[[dict], bool]:
    items = tuple(cond.items())

    def holds(obj: dict) -> bool:
        for k, values in items:
            v = obj.get(k)
            if not any(v == x and type(v) is type(x) for x in values):
                return False
        return True

    return holds


def _compile_object(fields: dict[str, FieldSpec]) -> Callable[[dict, str, Errors], None]:
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
                    errors.append(field_error(prefix + name, "required", f"{f.title}为必填项", "required field missing"))
                continue
            chk(v, obj, prefix + name, errors)
        for k in obj:
            if k not in allowed:
                errors.append(field_error(f"{prefix}{k}", "unknown", "接口规范未定义该字段", "field not defined by the interface spec"))

    return check


def _compile_value(f: FieldSpec) -> Check:
    t = f.type
    length = f.length

    def too_long(path: str, n: int) -> dict[str, str]:
        unit = "位" if t == "integer" else "个字符"
        return field_error(path, "length", f"{f.title}长度不能超过{n}{unit}", f"longer than {n}")

    if t == "string":
        fmt = FORMATS.get(f.format) if f.format else None
        when = _condition(f.when) if f.when else None
        pattern = f.pattern

        def check_string(v, parent, path, errors):
            if type(v) is not str:
                errors.append(_type_error(f, path))
                return
            if length is not None and len(v) > length:
                errors.append(too_long(path, length))
                return
            if pattern is not None and pattern.fullmatch(v) is None:
                errors.append(field_error(path, "format", f"{f.title}格式错误", f"does not match {pattern.pattern}"))
            if fmt is not None and (when is None or when(parent)):
                problem = fmt(v)
                if problem is not None:
                    errors.append(field_error(path, problem[0], f"{f.title}：{problem[1]}", problem[2]))

        return check_string

    if t == "code":
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
                errors.append(too_long(path, length))
                return
            accepted = names.get(v)
            if accepted is None:
                if open_pattern is None or open_pattern.fullmatch(v) is None:
                    errors.append(field_error(path, "valueSet", f"{f.title}“{v}”不在值域“{vs.title}”中",
                                       f"code not in value set {vs.id}"))
                return
            if name_field is not None:
                given = parent.get(name_field)
                if type(given) is str and given != "" and given not in accepted:  # non-strings fail their own type check
                    errors.append(field_error(path[:-own] + name_field, "nameMatch",
                                       f"名称“{given}”与{f.title}“{v}”对应的名称“{vs.codes[v]}”不符",
                                       "name does not match the code"))

        return check_code

    if t == "integer":

        def check_integer(v, parent, path, errors):
            if type(v) is not int:
                errors.append(_type_error(f, path))
            elif length is not None and len(str(abs(v))) > length:
                errors.append(too_long(path, length))

        return check_integer

    if t == "decimal":
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
                errors.append(field_error(path, "precision",
                                   f"{f.title}超出精度N..{p},{s}（整数部分至多{max_int}位，小数至多{s}位）",
                                   f"exceeds precision {p},{s}"))

        return check_decimal

    if t in ("date", "datetime"):
        ok = _date_ok if t == "date" else _datetime_ok
        shape = "yyyyMMdd" if t == "date" else "yyyyMMddHHmmss"

        def check_date(v, parent, path, errors):
            if type(v) is not str:
                errors.append(_type_error(f, path))
            elif not ok(v):
                errors.append(field_error(path, "format", f"{f.title}应为有效的{shape}", f"expected a valid {shape}"))

        return check_date

    if t == "boolean":
        if f.boolean_encoding == "TF":

            def check_tf(v, parent, path, errors):
                if v not in ("T", "F") or type(v) is not str:
                    errors.append(field_error(path, "type", f"{f.title}应为T或F", "expected T or F"))

            return check_tf

        def check_bool(v, parent, path, errors):
            if type(v) is not bool:
                errors.append(field_error(path, "type", f"{f.title}应为true或false", "expected true or false"))

        return check_bool

    if t == "object":
        inner = _compile_object(f.fields)

        def check_object(v, parent, path, errors):
            if type(v) is not dict:
                errors.append(_type_error(f, path))
            else:
                inner(v, path + ".", errors)

        return check_object

    if t == "array":
        item_check = _compile_value(f.items)
        min_items, max_items = f.min_items, f.max_items
        item_type = f.items.type

        def check_array(v, parent, path, errors):
            if type(v) is not list:
                errors.append(_type_error(f, path))
                return
            if len(v) < min_items:
                errors.append(field_error(path, "minItems", f"{f.title}至少需要{min_items}项", f"at least {min_items} items"))
            if max_items is not None and len(v) > max_items:
                errors.append(field_error(path, "length", f"{f.title}至多{max_items}项", f"at most {max_items} items"))
            for i, item in enumerate(v):
                if item is None:
                    errors.append(field_error(f"{path}[{i}]", "type", f"{f.title}的元素不能为空", f"item is null, expected {item_type}"))
                else:
                    item_check(item, v, f"{path}[{i}]", errors)

        return check_array

    if t == "file":
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
                errors.append(field_error(path, "length", f"文件超过{max_bytes}字节上限", f"file larger than {max_bytes} bytes"))
            base = path[:-own]
            if size_field is not None:
                size = parent.get(size_field)
                if type(size) is int and size != len(raw):
                    errors.append(field_error(base + size_field, "checksum", f"文件大小{size}与内容实际大小{len(raw)}不符",
                                       "file size does not match the content"))
            if hash_field is not None:
                digest = parent.get(hash_field)
                if type(digest) is str and _HEX64.match(digest) and digest.lower() != sm3_hex(raw):
                    errors.append(field_error(base + hash_field, "checksum", "文件SM3摘要与内容不符",
                                       "SM3 digest does not match the content"))

        return check_file

    raise AssertionError(t)  # pragma: no cover - TYPES is closed


# --------------------------------------------------------------------------- example generation


_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
_GIVEN_M = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志文博"
_GIVEN_F = "芳娜敏静丽艳娟霞秀英玲婷雪慧莹晶颖琳洁倩红梅琴云丹萍燕蓉佳悦欣怡雅璐"
_REGIONS = (  # (GB/T 2260 code, province, city, county, postcode, street)
    ("110101", "北京市", "市辖区", "东城区", "100010", "东华门街道南池子大街{n}号"),
    ("110102", "北京市", "市辖区", "西城区", "100032", "金融街街道丰盛胡同{n}号"),
    ("110105", "北京市", "市辖区", "朝阳区", "100021", "潘家园街道潘家园南里{n}号楼"),
    ("110106", "北京市", "市辖区", "丰台区", "100071", "丰台街道东安街{n}号院"),
    ("110108", "北京市", "市辖区", "海淀区", "100080", "中关村街道中关村南大街{n}号"),
    ("110112", "北京市", "市辖区", "通州区", "101100", "新华街道新华南路{n}号"),
    ("110114", "北京市", "市辖区", "昌平区", "102200", "城北街道西环路{n}号"),
    ("130104", "河北省", "石家庄市", "桥西区", "050051", "东里街道中华南大街{n}号"),
    ("370102", "山东省", "济南市", "历下区", "250011", "泉城路街道泉城路{n}号"),
)
_EPOCH = dt.datetime(2026, 1, 5, 8, 0)


def _person_name(rng: random.Random, male: bool | None = None) -> str:
    if male is None:
        male = rng.random() < 0.5
    pool = _GIVEN_M if male else _GIVEN_F
    given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(_SURNAMES) + given


@dataclass(frozen=True)
class Persona:
    """A synthetic patient, the same for one seed in every interface."""

    name: str
    sexCode: str
    birthDate: str
    idNo: str
    phone: str
    ageYears: int
    province: str
    city: str
    county: str
    street: str
    postcode: str
    address: str
    contactName: str
    healthCardNo: str


def _base_time(seed: int) -> dt.datetime:
    minutes = (seed * 7919) % (300 * 24 * 60)
    moment = _EPOCH + dt.timedelta(minutes=minutes)
    return moment.replace(hour=8 + moment.hour % 10)


@functools.lru_cache(maxsize=4096)
def persona(seed: int) -> Persona:
    rng = random.Random(f"persona:{seed}")
    male = rng.random() < 0.5
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 70))
    region = rng.choice(_REGIONS)
    seq = rng.randint(0, 499) * 2 + (1 if male else 0)
    first17 = f"{region[0]}{birth:%Y%m%d}{seq:03d}"
    id_no = first17 + _id_check_digit(first17)
    base = _base_time(seed).date()
    age = base.year - birth.year - ((base.month, base.day) < (birth.month, birth.day))
    street = region[5].format(n=rng.randint(1, 188))
    return Persona(
        name=_person_name(rng, male), sexCode="1" if male else "2", birthDate=f"{birth:%Y%m%d}", idNo=id_no,
        phone=f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}", ageYears=age,
        province=region[1], city=region[2], county=region[3], street=street, postcode=region[4],
        address=f"{region[1]}{region[3] if region[2] == '市辖区' else region[2] + region[3]}{street}",
        contactName=_person_name(rng), healthCardNo=f"BJ{rng.randint(0, 10**16 - 1):016d}",
    )


def _demo_pdf(text: str) -> bytes:
    """A small, well-formed one-page PDF (ASCII text) for example payloads."""
    content = f"BT /F1 14 Tf 72 760 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


_OFFSET = re.compile(r"([+-])([0-9]+)([dhm])")


class _Generator:
    def __init__(self, spec: InterfaceSpec, seed: int):
        self.spec = spec
        self.seed = seed
        self.rng = random.Random(f"{spec.code}:{seed}")
        self.persona = persona(seed)
        self.base = _base_time(seed)

    def object(self, fields: dict[str, FieldSpec], partial: dict | None, index: int) -> dict:
        # One pick per object for every list of examples in it: lists of equal length written in
        # the same order (item codes, item names, units ...) stay consistent with each other.
        pick = self.rng.randrange(720720)  # divisible by 1..16
        out: dict[str, Any] = {}
        for f in fields.values():
            if partial is not None and f.name in partial:
                out[f.name] = copy.deepcopy(partial[f.name])
            elif partial is None or f.required or f.required_when or f.example is not None:
                out[f.name] = self.value(f, index, pick)
        given = partial or {}
        for f in fields.values():
            if f.required_when and f.name not in given and not _condition(f.required_when)(out):
                out.pop(f.name, None)  # a conditional field whose condition does not hold
            code = out.get(f.name)
            if f.type == "code" and f.name_field and f.name_field not in given and code in f.value_set:
                out[f.name_field] = f.value_set.codes[code]
            if f.type == "file" and isinstance(out.get(f.name), str):
                raw = base64.b64decode(out[f.name])
                if f.size_field:
                    out[f.size_field] = len(raw)
                if f.hash_field:
                    out[f.hash_field] = sm3_hex(raw)
        return out

    def value(self, f: FieldSpec, index: int, pick: int) -> Any:
        example = f.example
        if f.type == "object":
            return self.object(f.fields, example if isinstance(example, dict) else None, index)
        if f.type == "array":
            return self.array(f)
        if isinstance(example, list):
            example = example[pick % len(example)]
        if example is not None:
            return self.resolve(example, f, index)
        return self.default(f, index)

    def array(self, f: FieldSpec) -> list:
        example = f.example
        low = max(f.min_items, 1)
        if isinstance(example, list) and example:
            count = self.rng.randint(min(low, len(example)), len(example))
            picks = sorted(self.rng.sample(range(len(example)), count))
            chosen = [example[i] for i in picks]
        else:
            chosen = [None] * self.rng.randint(low, low + 1)
        if f.max_items is not None:
            chosen = chosen[: f.max_items]
        item = f.items
        out = []
        for i, partial in enumerate(chosen):
            if item.type == "object":
                out.append(self.object(item.fields, partial if isinstance(partial, dict) else None, i))
            elif partial is not None:
                out.append(self.resolve(partial, item, i))
            else:
                out.append(self.default(item, i))
        return out

    def resolve(self, example: Any, f: FieldSpec, index: int) -> Any:
        if not isinstance(example, str):
            return example
        if example.startswith("@"):
            return self.hint(example[1:], f, index)
        if "{" in example:
            return example.format(seed=self.seed, i=index)
        return example

    def hint(self, hint: str, f: FieldSpec, index: int) -> Any:
        if hint == "i":
            return index + 1
        if hint.startswith("persona."):
            return getattr(self.persona, hint[8:])
        if hint == "person":
            return _person_name(self.rng)
        if hint == "staffId":
            return f"D{self.rng.randint(10000, 99999)}"
        if hint == "licenseNo":
            return f"{self.rng.randint(10**14, 10**15 - 1)}"
        if hint == "uid":
            return f"1.2.156.112605.2026.{self.seed}.{index}"
        moment = self.base  # "t" with optional offsets
        for sign, amount, unit in _OFFSET.findall(hint):
            delta = dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: int(amount)})
            moment = moment + delta if sign == "+" else moment - delta
        return self.moment(moment, f)

    @staticmethod
    def moment(moment: dt.datetime, f: FieldSpec) -> str:
        if f.type == "date":
            return f"{moment:%Y%m%d}"
        if f.format == "timestamp-ms":
            return f"{moment:%Y%m%d%H%M%S}000"
        return f"{moment:%Y%m%d%H%M%S}"

    def default(self, f: FieldSpec, index: int) -> Any:
        rng = self.rng
        t = f.type
        if t == "code":
            codes = [c for c in f.value_set.codes if f.length is None or len(c) <= f.length]
            return rng.choice(codes)
        if t == "integer":
            top = 10 ** f.length - 1 if f.length else 999
            return rng.randint(1, min(top, 99))
        if t == "decimal":
            p, s = f.precision
            top = min(10 ** (p - s) - 1, 999)
            value = round(rng.uniform(1, top), s)
            return int(value) if s == 0 else value
        if t in ("date", "datetime"):
            return self.moment(self.base, f)
        if t == "boolean":
            flag = rng.random() < 0.5
            return ("T" if flag else "F") if f.boolean_encoding == "TF" else flag
        if t == "file":
            return base64.b64encode(_demo_pdf(f"{self.spec.code} example {self.seed}")).decode("ascii")
        if f.format == "resident-id":
            return self.persona.idNo
        if f.format == "sm3-hex":
            return sm3_hex(f"{self.seed}".encode())
        if f.format is not None:
            return self.resolve("@uid" if f.format == "dicom-uid" else "@t", f, index)
        limit = f.length or 64
        if limit <= 32:  # an identifier
            return f"X{self.seed:010d}"[-limit:]
        return f"{f.title}（示例{self.seed}）"[:limit]


# --------------------------------------------------------------------------- interfaces


@dataclass(frozen=True)
class Parent:
    """An ordering dependency: this record needs the parent record accepted first."""

    interface: str
    match: dict[str, str]  # child field -> parent field (orgCode implied)


class InterfaceSpec:
    """One municipal interface of one document version."""

    def __init__(self, *, code, document, version, section, name, path, kind, envelope, key, parents, voids,
                 note, request: FieldSpec, response: FieldSpec | None, profile: Profile, profile_data: dict,
                 file: Path):
        self.code: str = code
        self.document: str = document
        self.version: str = version
        self.section: str = section
        self.name: str = name
        self.path: str = path
        self.kind: str = kind
        self.envelope: str = envelope
        self.key: tuple[str, ...] = tuple(key)
        self.parents: tuple[Parent, ...] = tuple(parents)
        self.voids: tuple[str, ...] = tuple(voids)
        self.note: str | None = note
        self.request = request
        self.response = response
        self.profile = profile
        self.profile_data = profile_data
        self.file = file
        self._parent_key_fields: dict[str, tuple[str, ...]] = {}  # filled in by the Catalogue
        self._check_request = _compile_object(request.fields)
        self._check_response = _compile_object(response.fields) if response is not None else None

    def __repr__(self) -> str:
        return f"<InterfaceSpec {self.code} {self.document} {self.version} {self.path}>"

    @property
    def fields(self) -> dict[str, FieldSpec]:
        return self.request.fields

    def field_count(self) -> int:
        return sum(1 for _ in self.request.walk())

    def key_of(self, payload: dict) -> tuple:
        """The primary key values (主键) of a request payload, in key order."""
        return tuple(payload.get(k) for k in self.key)

    def parent_keys_of(self, payload: dict, org_field: str = "orgCode") -> list[tuple[str, tuple]]:
        """For each parent: (parent service code, parent key tuple) this payload depends on."""
        out = []
        for parent in self.parents:
            values = {org_field: payload.get(org_field)}
            values.update({pf: payload.get(cf) for cf, pf in parent.match.items()})
            parent_key = self._parent_key_fields[parent.interface]
            out.append((parent.interface, tuple(values.get(k) for k in parent_key)))
        return out

    def bound_refs(self, payload: dict) -> list[tuple[str, str, str]]:
        """(kind, value, field path) of every patient-owned identifier (``binds``) the payload names."""
        out: list[tuple[str, str, str]] = []

        def visit(fields: dict[str, FieldSpec], data: Any, prefix: str) -> None:
            if not isinstance(data, dict):
                return
            for name, f in fields.items():
                value, path = data.get(name), f"{prefix}{name}"
                if f.binds and isinstance(value, str) and value:
                    out.append((f.binds, value, path))
                elif f.fields and isinstance(value, dict):
                    visit(f.fields, value, path + ".")
                elif f.items is not None and isinstance(value, list):
                    for i, v in enumerate(value):
                        if f.items.binds and isinstance(v, str) and v:
                            out.append((f.items.binds, v, f"{path}[{i}]"))
                        elif f.items.fields:
                            visit(f.items.fields, v, f"{path}[{i}].")

        visit(self.request.fields, payload, "")
        return out

    def validate(self, payload: Any) -> Errors:
        """Every problem of a request payload; an empty list means valid."""
        return self._validate(payload, self._check_request)

    def validate_response(self, data: Any) -> Errors:
        """Every problem of the `data` the platform answers with (for queries: the result)."""
        if self._check_response is None:
            return [] if data in (None, {}) else [field_error("", "unknown", "该接口无应答数据", "no response data defined")]
        return self._validate(data, self._check_response)

    @staticmethod
    def _validate(payload: Any, check) -> Errors:
        if type(payload) is not dict:
            return [field_error("", "type", "报文应为JSON对象", "payload must be a JSON object")]
        errors: Errors = []
        check(payload, "", errors)
        return errors

    def example(self, seed: int = 0, **overrides: Any) -> dict:
        """A valid, realistic request payload, deterministic per seed.

        Records of different interfaces made with the same seed belong together: same patient,
        same encounter ids (visitId, inpatientId, registrationId ...) and consistent times, so
        seeding parents and children with one seed satisfies the ordering rules. Keyword
        overrides replace top-level fields; None removes one.
        """
        payload = _Generator(self, seed).object(self.request.fields, None, 0)
        return _apply(payload, overrides)

    def response_example(self, seed: int = 0, **overrides: Any) -> dict:
        if self.response is None:
            return {}
        return _apply(_Generator(self, seed).object(self.response.fields, None, 0), overrides)

    def invalid_example(self, seed: int = 0, expected: bool = False):
        """A payload with a few known violations (required, unknown, valueSet, length).

        With expected=True returns (payload, [(field, rule), ...]) naming the violations.
        """
        payload = self.example(seed)
        fields = self.request.fields
        name_fields = {f.name_field for f in fields.values() if f.name_field}
        used: set[str] = set(self.key)
        violations: list[tuple[str, str]] = []

        def first(predicate):
            for f in fields.values():
                if f.name not in used and predicate(f):
                    used.add(f.name)
                    return f
            return None

        missing = first(lambda f: f.required and f.type not in ("object", "array"))
        if missing is None:
            missing = first(lambda f: f.required)
        if missing is not None:
            payload.pop(missing.name, None)
            violations.append((missing.name, "required"))
        bad_code = first(lambda f: f.type == "code" and f.name in payload)
        if bad_code is not None:
            payload[bad_code.name] = "~"
            violations.append((bad_code.name, "valueSet"))
        long_text = first(lambda f: f.type == "string" and f.length and f.name in payload and not f.format
                          and not f.pattern and f.name not in name_fields)
        if long_text is not None:
            payload[long_text.name] = "长" * (long_text.length + 1)
            violations.append((long_text.name, "length"))
        for path, f in self.request.walk():  # a resident ID inside an object: wrong check digit
            if f.format != "resident-id" or "[]" in path:
                continue
            *parents, leaf = path.split(".")
            holder = payload
            for part in parents:
                holder = holder.get(part) if isinstance(holder, dict) else None
            if isinstance(holder, dict) and isinstance(holder.get(leaf), str) and resident_id_ok(holder[leaf]):
                good = holder[leaf]
                holder[leaf] = good[:17] + _ID_CHECK[(_ID_CHECK.index(good[17]) + 1) % 11]
                violations.append((path, "checksum"))
                break
        array = first(lambda f: f.type == "array" and f.items.type == "object" and payload.get(f.name))
        if array is not None:
            item_field = next((g for g in array.items.fields.values()
                               if g.required and g.type not in ("object", "array")), None)
            if item_field is not None:
                payload[array.name][0].pop(item_field.name, None)
                violations.append((f"{array.name}[0].{item_field.name}", "required"))
        payload["unexpectedField"] = "x"
        violations.append(("unexpectedField", "unknown"))
        return (payload, violations) if expected else payload


def _apply(payload: dict, overrides: dict) -> dict:
    for k, v in overrides.items():
        if v is None:
            payload.pop(k, None)
        else:
            payload[k] = v
    return payload


# --------------------------------------------------------------------------- documents and catalogue


@dataclass
class DocumentSpec:
    document: str
    version: str
    title: str
    profile: Profile
    profile_data: dict
    file: Path
    interfaces: tuple[InterfaceSpec, ...]
    value_sets: dict[str, ValueSet]
    boolean_encoding: str = "json"

    @property
    def version_tuple(self) -> tuple:
        return _version_tuple(self.version)


def _version_tuple(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", version))


def _load_document(file: Path, common_sets: dict[str, ValueSet], common_groups: dict) -> DocumentSpec:
    raw = _read_yaml(file)
    if not isinstance(raw, dict):
        raise SpecError(file, "", "a document spec is a mapping (document, version, interfaces ...)")
    unknown = set(raw) - DOCUMENT_ATTRS
    if unknown:
        raise SpecError(file, sorted(unknown)[0], f"unknown attribute (allowed: {', '.join(sorted(DOCUMENT_ATTRS))})")
    for attr in ("document", "version", "title", "profile", "interfaces"):
        if attr not in raw:
            raise SpecError(file, attr, "missing")
    document, version = raw["document"], raw["version"]
    if not isinstance(version, str):
        raise SpecError(file, "version", "quote the version: YAML reads 3.5 as a number")
    if document != file.parent.name or version != file.stem:
        raise SpecError(file, "document", f"{document}/{version} does not match the file's place "
                                          f"{file.parent.name}/{file.stem}.yaml")
    encoding = raw.get("booleanEncoding", "json")
    if encoding not in ("json", "TF"):
        raise SpecError(file, "booleanEncoding", "json or TF")
    value_sets = dict(common_sets)
    if "valueSets" in raw:
        value_sets.update(_parse_value_sets(raw["valueSets"], file, "valueSets"))
    groups = dict(common_groups)
    local_groups = raw.get("groups") or {}
    if not isinstance(local_groups, dict):
        raise SpecError(file, "groups", "a mapping group name -> fields")
    groups.update(local_groups)
    profile_data = raw["profile"]
    if not isinstance(profile_data, dict):
        raise SpecError(file, "profile", "a mapping of envelope settings")
    try:
        profile = Profile.from_dict(profile_data)
    except (TypeError, ValueError, KeyError) as exc:
        raise SpecError(file, "profile", f"rejected by Profile: {exc}") from None
    ctx = _Context(file, groups, value_sets, encoding, profile.max_file_bytes)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict) or set(defaults) - {"response"}:
        raise SpecError(file, "defaults", "only defaults.response is supported")
    interfaces_raw = raw["interfaces"]
    if not isinstance(interfaces_raw, list) or not interfaces_raw:
        raise SpecError(file, "interfaces", "a non-empty list")
    interfaces = []
    for n, item in enumerate(interfaces_raw):
        where = f"interfaces[{n}]"
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            where += f"({item['code']})"
        interfaces.append(_build_interface(item, where, ctx, document, version, profile, profile_data, defaults))
    seen_codes, seen_paths = {}, {}
    for spec in interfaces:
        if spec.code in seen_codes:
            raise SpecError(file, spec.code, "service code defined twice")
        if spec.path in seen_paths:
            raise SpecError(file, spec.code, f"path {spec.path} already used by {seen_paths[spec.path]}")
        seen_codes[spec.code] = spec
        seen_paths[spec.path] = spec.code
    return DocumentSpec(document, version, raw["title"], profile, profile_data, file, tuple(interfaces), value_sets,
                        encoding)


def _build_interface(raw: Any, where: str, ctx: _Context, document: str, version: str, profile: Profile,
                     profile_data: dict, defaults: dict) -> InterfaceSpec:
    if not isinstance(raw, dict):
        ctx.fail(where, "an interface is a mapping (code, path, kind, key, request ...)")
    unknown = set(raw) - INTERFACE_ATTRS
    if unknown:
        ctx.fail(where, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(INTERFACE_ATTRS))})")
    for attr in ("code", "section", "name", "path", "kind", "key", "request"):
        if attr not in raw:
            ctx.fail(where, f"{attr} missing")
    code = raw["code"]
    if not isinstance(code, str) or not _CODE.match(code):
        ctx.fail(f"{where}.code", "service codes are UPPER_SNAKE_CASE")
    if not isinstance(raw["section"], str):
        ctx.fail(f"{where}.section", "quote the section: YAML reads 1.1 as a number")
    if not isinstance(raw["path"], str) or not raw["path"].startswith("/"):
        ctx.fail(f"{where}.path", "a path starts with /")
    kind = raw["kind"]
    if kind not in KINDS:
        ctx.fail(f"{where}.kind", f"kind {kind!r} is not one of {', '.join(KINDS)}")
    envelope = raw.get("envelope", "sealed")
    if envelope not in ENVELOPES:
        ctx.fail(f"{where}.envelope", f"envelope is one of {', '.join(ENVELOPES)}")
    request = FieldSpec(name="", title=raw["name"], type="object", required=True,
                        fields=_build_object(raw["request"], f"{where}.request", ctx))
    response_raw = raw.get("response")
    if response_raw is None and kind in ("upload", "void", "daily"):
        response_raw = defaults.get("response")
    if response_raw is None and kind in ("query", "security"):
        ctx.fail(where, f"a {kind} interface needs a response")
    response = None
    if response_raw is not None:
        response = FieldSpec(name="", title=raw["name"], type="object", required=True,
                             fields=_build_object(response_raw, f"{where}.response", ctx))
    key = raw["key"]
    if not isinstance(key, list):
        ctx.fail(f"{where}.key", "a list of request field names")
    for k in key:
        f = request.fields.get(k)
        if f is None:
            ctx.fail(f"{where}.key", f"key field {k!r} is not a top-level request field")
        if not f.required or f.type in ("object", "array", "file"):
            ctx.fail(f"{where}.key", f"key field {k!r} must be a required scalar field")
    parents = []
    for n, p in enumerate(raw.get("parents") or []):
        here = f"{where}.parents[{n}]"
        if not isinstance(p, dict) or set(p) != {"interface", "match"} or not isinstance(p["match"], dict):
            ctx.fail(here, "a parent is {interface: CODE, match: {childField: parentField}}")
        for child_field in p["match"]:
            if child_field not in request.fields:
                ctx.fail(here, f"match field {child_field!r} is not a top-level request field")
        parents.append(Parent(p["interface"], dict(p["match"])))
    voids = raw.get("voids") or []
    if not isinstance(voids, list):
        ctx.fail(f"{where}.voids", "a list of service codes")
    if kind == "void" and not voids:
        ctx.fail(f"{where}.voids", "a void interface names the interfaces whose records it voids")
    if voids and kind != "void":
        ctx.fail(f"{where}.voids", "only kind void voids records")
    return InterfaceSpec(
        code=code, document=document, version=version, section=raw["section"], name=raw["name"],
        path=raw["path"], kind=kind, envelope=envelope, key=key, parents=parents, voids=voids,
        note=raw.get("note"), request=request, response=response, profile=profile, profile_data=profile_data,
        file=ctx.file,
    )


class Catalogue:
    """Every loaded document version; the current version of each document answers lookups."""

    def __init__(self, documents: list[DocumentSpec], value_sets: dict[str, ValueSet], pins: dict[str, str]):
        self.documents = sorted(documents, key=lambda d: (d.document, d.version_tuple))
        self._value_sets = value_sets
        by_doc: dict[str, list[DocumentSpec]] = {}
        for d in self.documents:
            by_doc.setdefault(d.document, []).append(d)
        self.current: dict[str, DocumentSpec] = {}
        for name, versions in by_doc.items():
            pinned = pins.get(name)
            if pinned is None:
                self.current[name] = versions[-1]
            else:
                match = [d for d in versions if d.version == pinned]
                if not match:
                    raise SpecError(SPEC_ROOT / name, "", f"pinned version {pinned} of {name} has no spec file")
                self.current[name] = match[0]
        unknown_pins = set(pins) - set(by_doc)
        if unknown_pins:
            raise SpecError(SPEC_ROOT, "", f"pinned document {sorted(unknown_pins)[0]!r} has no spec folder")
        self.interfaces: list[InterfaceSpec] = [s for d in self.current.values() for s in d.interfaces]
        self._by_code: dict[str, InterfaceSpec] = {}
        self._by_path: dict[str, InterfaceSpec] = {}
        for spec in self.interfaces:
            other = self._by_code.get(spec.code) or self._by_path.get(spec.path)
            if other is not None:
                raise SpecError(spec.file, spec.code, f"service code or path also used in {other.file}")
            self._by_code[spec.code] = spec
            self._by_path[spec.path] = spec
        for d in self.documents:
            self._link(d)

    def _link(self, d: DocumentSpec) -> None:
        local = {s.code: s for s in d.interfaces}
        for spec in d.interfaces:
            spec._parent_key_fields = {}
            for parent in spec.parents:
                target = local.get(parent.interface) or self._by_code.get(parent.interface)
                if target is None:
                    raise SpecError(d.file, f"{spec.code}.parents", f"unknown interface {parent.interface!r}")
                for parent_field in parent.match.values():
                    if parent_field not in target.request.fields:
                        raise SpecError(d.file, f"{spec.code}.parents",
                                        f"{parent.interface} has no request field {parent_field!r}")
                covered = {"orgCode", *parent.match.values()}
                if set(target.key) - covered:
                    raise SpecError(d.file, f"{spec.code}.parents",
                                    f"match must cover the key of {parent.interface} {list(target.key)}")
                spec._parent_key_fields[parent.interface] = target.key
            for code in spec.voids:
                target = local.get(code) or self._by_code.get(code)
                if target is None:
                    raise SpecError(d.file, f"{spec.code}.voids", f"unknown interface {code!r}")
                if target.key != spec.key:
                    raise SpecError(d.file, f"{spec.code}.voids", f"{code} has key {list(target.key)}, "
                                                                  f"the void names {list(spec.key)}")

    def document(self, name: str, version: str | None = None) -> DocumentSpec:
        if version is None:
            if name not in self.current:
                raise KeyError(f"no interface document {name!r}")
            return self.current[name]
        for d in self.documents:
            if d.document == name and d.version == version:
                return d
        raise KeyError(f"no spec for {name} version {version}")

    def interface(self, code: str, version: str | None = None) -> InterfaceSpec:
        if version is None:
            try:
                return self._by_code[code]
            except KeyError:
                raise KeyError(f"unknown service code {code!r}") from None
        for d in self.documents:
            if d.version == version:
                for spec in d.interfaces:
                    if spec.code == code:
                        return spec
        raise KeyError(f"unknown service code {code!r} in version {version}")

    def by_path(self, path: str) -> InterfaceSpec:
        try:
            return self._by_path[path]
        except KeyError:
            raise KeyError(f"no interface at path {path!r}") from None

    def value_set(self, set_id: str, document: str | None = None) -> ValueSet:
        sets = self.current[document].value_sets if document else self._value_sets
        try:
            return sets[set_id]
        except KeyError:
            raise KeyError(f"unknown value set {set_id!r}") from None

    @property
    def value_sets(self) -> dict[str, ValueSet]:
        return dict(self._value_sets)


def _load(root: str, pins: tuple[tuple[str, str], ...]) -> Catalogue:
    base = Path(root)
    common = base / COMMON_DIR
    sets_file = common / "value_sets.yaml"
    if not sets_file.exists():
        raise SpecError(sets_file, "", "missing: the shared value sets")
    value_sets = _parse_value_sets(_read_yaml(sets_file), sets_file, "")
    groups: dict = {}
    fields_file = common / "fields.yaml"
    if fields_file.exists():
        groups = _read_yaml(fields_file) or {}
        if not isinstance(groups, dict):
            raise SpecError(fields_file, "", "a mapping group name -> fields")
        # Build each group once with its default parameters, so that a broken group is reported
        # against its own file even if no document uses it yet.
        ctx = _Context(fields_file, groups, value_sets, "json", DEFAULT_MAX_FILE_BYTES)
        for name in groups:
            _build_object({"$use": [name]}, name, ctx)
    documents = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        for file in sorted(folder.glob("*.yaml")):
            documents.append(_load_document(file, value_sets, groups))
    if not documents:
        raise SpecError(base, "", "no interface documents found")
    return Catalogue(documents, value_sets, dict(pins))


_load_cached = functools.lru_cache(maxsize=8)(_load)


def load_catalogue(root: str | Path | None = None, pins: dict[str, str] | None = None) -> Catalogue:
    """Load, check and compile every spec under `root` (default: the package's specs folder).

    Cached per (root, pins). `pins` selects a document version other than the newest, e.g.
    ``{"lab": "3.0.2.0"}`` while a new version's file is already in place. Raises SpecError
    naming the file and the path inside it for any malformed spec.
    """
    resolved = str(Path(root).resolve()) if root is not None else str(SPEC_ROOT)
    return _load_cached(resolved, tuple(sorted((pins or {}).items())))


load_catalogue.cache_clear = _load_cached.cache_clear  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- renderers (manage.py specs)


def catalogue_table(catalogue: Catalogue | None = None) -> str:
    catalogue = catalogue or load_catalogue()
    header = ("document", "version", "section", "code", "kind", "path", "key", "fields")
    rows = [header]
    for d in catalogue.current.values():
        for s in d.interfaces:
            rows.append((s.document, s.version, s.section, s.code, s.kind, s.path, ",".join(s.key) or "-",
                         str(s.field_count())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cond_text(cond: dict[str, tuple]) -> str:
    return ", ".join(f"{k}={'|'.join(json.dumps(v, ensure_ascii=False) for v in values)}"
                     for k, values in cond.items())


def _tree_lines(fields: dict[str, FieldSpec], depth: int) -> list[str]:
    lines = []
    for f in fields.values():
        flags = "必填" if f.required else ("条件必填" if f.required_when else "可选")
        extra = []
        if f.value_set is not None:
            extra.append(f"值域 {f.value_set.id}" + ("（子集）" if f.value_set.subset else ""))
        if f.name_field:
            extra.append(f"名称字段 {f.name_field}")
        if f.format:
            extra.append(f"格式 {f.format}" + (f" 当 {_cond_text(f.when)}" if f.when else ""))
        if f.required_when:
            extra.append(f"当 {_cond_text(f.required_when)} 时必填")
        if f.min_items:
            extra.append(f"至少{f.min_items}项")
        if f.de:
            extra.append(f.de)
        lines.append(f"{'  ' * depth}{f.name}  {f.title}  {f.type_label()}  {flags}"
                     + (f"  [{'; '.join(extra)}]" if extra else ""))
        if f.fields:
            lines.extend(_tree_lines(f.fields, depth + 1))
        elif f.items is not None and f.items.fields:
            lines.extend(_tree_lines(f.items.fields, depth + 1))
    return lines


def field_tree(spec: InterfaceSpec) -> str:
    head = [
        f"{spec.code}  {spec.name}",
        f"文档 {spec.document} {spec.version} §{spec.section}  路径 {spec.path}  类型 {spec.kind}"
        f"  主键 {', '.join(spec.key) or '-'}",
    ]
    if spec.parents:
        head.append("前置 " + "; ".join(f"{p.interface} {p.match}" for p in spec.parents))
    if spec.voids:
        head.append("作废 " + ", ".join(spec.voids))
    lines = [*head, "", "请求 request:", *_tree_lines(spec.request.fields, 1)]
    if spec.response is not None:
        lines += ["", "应答 response:", *_tree_lines(spec.response.fields, 1)]
    return "\n".join(lines)


def format_errors(errors: Errors) -> str:
    if not errors:
        return ""
    width = max(len(e["field"]) for e in errors)
    rule_width = max(len(e["rule"]) for e in errors)
    return "\n".join(f"{e['field'].ljust(width)}  {e['rule'].ljust(rule_width)}  {e['message']}" for e in errors)


def check_payload_file(file: str | Path, code: str, catalogue: Catalogue | None = None) -> tuple[int, str]:
    """Validate a JSON payload file against an interface: (exit status, text to print)."""
    catalogue = catalogue or load_catalogue()
    spec = catalogue.interface(code)
    try:
        payload = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return 1, f"无法读取JSON文件 (cannot read JSON): {exc}"
    errors = spec.validate(payload)
    if errors:
        return 1, format_errors(errors) + f"\n\n{len(errors)} 处错误 (errors) — {spec.code}"
    return 0, f"校验通过 (valid) — {spec.code}"


def example_json(code: str, seed: int = 0, catalogue: Catalogue | None = None, response: bool = False) -> str:
    catalogue = catalogue or load_catalogue()
    spec = catalogue.interface(code)
    data = spec.response_example(seed) if response else spec.example(seed)
    return json.dumps(data, ensure_ascii=False, indent=2)
