"""Spec files to a :class:`Catalogue`: YAML reading, ``$use`` groups, the linter, the spec classes.

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
    hospitalCodes:                    # optional: code fields that also accept a hospital code,
      DEPT_STD: department            #   by value set -> the dictionary that maps it (院内科室);
      ICD10: valueSet                 #   valueSet: 院内代码对照 of that set. A field may override
                                      #   with its own hospitalCodes (a dictionary, or false)
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
    hospitalCodes: valueSet   code: this field also accepts a hospital code mapped through that
                         dictionary (department | valueSet), or false; default: the document's
                         hospitalCodes entry for the field's value set. Only intakes that map
                         hospital codes (the EMR intake) read it; the platform sees standard codes
    binds: visit         string: an identifier that belongs to ONE patient (visit | stay | order |
                         application | labReport | examReport); the outbox refuses a payload that
                         names it with another patient than it was first stored with
    note: free text;  example: hint for the example generator (see specs/_common/fields.yaml)

Wire conventions: date = yyyyMMdd (D8); datetime = yyyyMMddHHmmss (14 digits); decimals and
integers are JSON numbers; codes are JSON strings; booleans are JSON true/false unless the
document says ``booleanEncoding: TF``; files are Base64 strings (platform-protocol.md §6).

A ``$use`` key (also ``$use2``, ``$use3``, ...) inside a field mapping splices field groups in;
see specs/_common/fields.yaml.

Every problem of a spec file is a :class:`SpecError` naming the file and the place inside it,
raised when the catalogue loads (at start-up), never while a payload is validated. Loading
compiles each interface's payload checks once (:mod:`.validate`); example payloads come from
:mod:`.examples`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hospital_interop.errors import field_error
from hospital_interop.municipal.profile import Profile

from . import examples
from .validate import FORMATS, Errors, _compile_object

SPEC_ROOT = Path(__file__).parent  # this package's folder holds the YAML
COMMON_DIR = "_common"

TYPES = ("string", "integer", "decimal", "date", "datetime", "boolean", "code", "object", "array", "file")
KINDS = ("upload", "void", "daily", "query", "security")
ENVELOPES = ("sealed", "plain")
FIELD_ATTRS = frozenset(
    {
        "title",
        "type",
        "length",
        "precision",
        "required",
        "requiredWhen",
        "valueSet",
        "nameField",
        "de",
        "format",
        "when",
        "pattern",
        "fields",
        "items",
        "minItems",
        "maxItems",
        "sizeField",
        "hashField",
        "note",
        "example",
        "binds",
        "hospitalCodes",
    }
)
BIND_KINDS = ("visit", "stay", "order", "application", "labReport", "examReport")
DOCUMENT_ATTRS = frozenset(
    {
        "document",
        "version",
        "title",
        "profile",
        "booleanEncoding",
        "valueSets",
        "groups",
        "defaults",
        "interfaces",
        "note",
        "hospitalCodes",
    }
)
INTERFACE_ATTRS = frozenset(
    {
        "code",
        "section",
        "name",
        "path",
        "kind",
        "envelope",
        "key",
        "parents",
        "voids",
        "note",
        "request",
        "response",
    }
)
# Dictionaries a hospital code can be mapped through (the dictionaries app) and the value sets each
# can give: ``department`` is 院内科室 → 标准科室 (DEPT_STD only); ``valueSet`` is 院内代码对照, one
# table of hospital code → standard code per value set (any set).
HOSPITAL_DICTIONARIES: dict[str, tuple[str, ...] | None] = {"department": ("DEPT_STD",), "valueSet": None}
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
            raise SpecError(
                file, here, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {sorted(VALUE_SET_ATTRS)})"
            )
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
        sets[set_id] = ValueSet(
            set_id, body["title"], codes, str(body.get("source", "")), bool(subset), pattern, aliases
        )
    return sets


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
    hospital_codes: str | None = None  # code: the dictionary a hospital code is mapped through
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

    def __init__(
        self,
        file: Path,
        groups: dict,
        value_sets: dict[str, ValueSet],
        boolean_encoding: str,
        max_file_bytes: int,
        hospital_codes: dict[str, str] | None = None,
    ):
        self.file = file
        self.hospital_codes = hospital_codes or {}  # value set id -> dictionary (the document's rule)
        self.groups = groups  # name -> raw definition (a field mapping, or {params, fields})
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
    """Resolve `$use` keys: return an ordered mapping field name -> raw field definition.

    ``stack`` holds the groups being expanded around this mapping (a group may not include itself).
    """
    if not isinstance(raw, dict):
        ctx.fail(where, "expected a mapping of field name -> field definition")
    out: dict[str, dict] = {}
    explicit: set[str] = set()
    for key, value in raw.items():
        if isinstance(key, str) and _USE_KEY.match(key):
            uses = (
                value
                if isinstance(value, list)
                else ctx.fail(f"{where}.{key}", "$use takes a list of groups")
            )
            for n, use in enumerate(uses):
                here = f"{where}.{key}[{n}]"
                name, fields = _use_group(use, here, ctx, stack)
                for fname, fdef in fields.items():
                    if fname in out and fname in explicit:
                        ctx.fail(here, f"group {name!r} redefines field {fname!r} defined before it")
                    out[fname] = fdef
        else:
            out[key] = value
            explicit.add(key)
    return out


def _use_group(use: Any, here: str, ctx: _Context, stack: tuple[str, ...]) -> tuple[str, dict[str, dict]]:
    """One group reference of a `$use` list: (group name, its expanded fields) with the use
    site's parameters filled in, ``required: false`` and ``examples`` applied."""
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
        ctx.fail(
            here,
            f"group {name!r} has no parameter {sorted(unknown)[0]!r} (parameters: {sorted(params_default)})",
        )
    params = {**{k: str(v) for k, v in params_default.items()}, **{k: str(v) for k, v in options.items()}}
    body = _substitute(body, params)
    leftover = _PARAM.search(json.dumps(body, ensure_ascii=False))
    if leftover:
        ctx.fail(here, f"placeholder {leftover.group(0)} of group {name!r} has no value")
    expanded = _expand(body, f"{here}({name})", ctx, (*stack, name))
    required = use.get("required")
    if required is not None and not isinstance(required, bool):
        ctx.fail(f"{here}.required", "required is true or false")
    hints = use.get("examples") or {}
    if not isinstance(hints, dict) or set(hints) - set(expanded):
        ctx.fail(f"{here}.examples", f"examples maps fields of group {name!r} to example hints")
    fields = {}
    for fname, fdef in expanded.items():
        if required is False and isinstance(fdef, dict):
            fdef = {**fdef, "required": False}
        if fname in hints and isinstance(fdef, dict):
            fdef = {**fdef, "example": hints[fname]}
        fields[fname] = fdef
    return name, fields


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


def _check_example(value: Any, where: str, ctx: _Context):
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, str) and v.startswith("@") and not examples.hint_ok(v):
            ctx.fail(where, f"unknown example generator {v!r}")


def _build_field(name: str, raw: Any, where: str, ctx: _Context, *, item: bool = False) -> FieldSpec:
    """One field definition, linted, as a FieldSpec (``item``: the definition of an array's items).

    The first problem found fails the load (SpecError); the checks run in the order of the steps
    below, so a definition with several problems always reports the same one.
    """
    f = _field_head(name, raw, where, ctx, item)
    for attr, types in _ATTR_TYPES.items():
        if attr in raw and f.type not in types:
            ctx.fail(f"{where}.{attr}", f"{attr} applies to {'/'.join(types)} fields, not {f.type}")
    _read_scalar_rules(f, raw, where, ctx)
    read_type_rules = _TYPE_RULES.get(f.type)
    if read_type_rules is not None:
        read_type_rules(f, raw, where, ctx, item)
    f.de = raw.get("de")
    f.note = raw.get("note")
    if "example" in raw:
        _check_example(raw["example"], f"{where}.example", ctx)
        f.example = raw["example"]
    f.max_file_bytes = ctx.max_file_bytes
    f.boolean_encoding = ctx.boolean_encoding
    return f


# attribute -> the field types it applies to
_ATTR_TYPES: dict[str, tuple[str, ...]] = {
    "length": ("string", "code", "integer"),
    "precision": ("decimal",),
    "valueSet": ("code",),
    "nameField": ("code",),
    "format": ("string",),
    "when": ("string",),
    "pattern": ("string",),
    "fields": ("object",),
    "items": ("array",),
    "minItems": ("array",),
    "maxItems": ("array",),
    "sizeField": ("file",),
    "hashField": ("file",),
    "binds": ("string",),
    "hospitalCodes": ("code",),
}


def _field_head(name: Any, raw: Any, where: str, ctx: _Context, item: bool) -> FieldSpec:
    """Name, shape, known attributes, type, title and required: the FieldSpec to fill in."""
    if not item and (not isinstance(name, str) or not _NAME.match(name)):
        ctx.fail(where, f"field name {name!r} must be camelCase (letters and digits, lower-case first)")
    if not isinstance(raw, dict):
        ctx.fail(where, "a field definition is a mapping {title, type, ...}")
    unknown = set(raw) - FIELD_ATTRS
    if unknown:
        ctx.fail(
            where, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(FIELD_ATTRS))})"
        )
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
    return f


def _read_scalar_rules(f: FieldSpec, raw: dict, where: str, ctx: _Context) -> None:
    """binds, length, format (and its when), pattern: the rules of string-like fields."""
    if "binds" in raw:
        if raw["binds"] not in BIND_KINDS:
            ctx.fail(f"{where}.binds", f"binds is one of {', '.join(BIND_KINDS)}")
        f.binds = raw["binds"]
    if "length" in raw:
        f.length = _positive_int(raw["length"], f"{where}.length", ctx, "length")
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


def _read_decimal(f: FieldSpec, raw: dict, where: str, ctx: _Context, item: bool) -> None:
    p = raw.get("precision")
    if (
        not isinstance(p, list)
        or len(p) != 2
        or not all(type(x) is int for x in p)
        or not 0 <= p[1] <= p[0]
        or p[0] == 0
    ):
        ctx.fail(f"{where}.precision", "decimal fields need precision: [digits, decimals]")
    f.precision = (p[0], p[1])


def _read_code(f: FieldSpec, raw: dict, where: str, ctx: _Context, item: bool) -> None:
    set_id = raw.get("valueSet")
    if set_id is None:
        ctx.fail(where, "code fields need a valueSet")
    if set_id not in ctx.value_sets:
        ctx.fail(f"{where}.valueSet", f"unknown value set {set_id!r}")
    f.value_set = ctx.value_sets[set_id]
    f.name_field = raw.get("nameField")
    if item and f.name_field:
        ctx.fail(where, "array items of type code cannot have a nameField")
    dictionary = raw.get("hospitalCodes", ctx.hospital_codes.get(set_id))
    if dictionary is not None and dictionary is not False:
        _check_hospital_dictionary(dictionary, set_id, f"{where}.hospitalCodes", ctx)
        f.hospital_codes = dictionary


def _check_hospital_dictionary(dictionary: Any, set_id: str, where: str, ctx: _Context) -> None:
    if dictionary not in HOSPITAL_DICTIONARIES:
        ctx.fail(where, f"hospitalCodes is one of {', '.join(HOSPITAL_DICTIONARIES)} (or false)")
    allowed = HOSPITAL_DICTIONARIES[dictionary]
    if allowed is not None and set_id not in allowed:
        ctx.fail(where, f"dictionary {dictionary!r} maps to {', '.join(allowed)} only, not {set_id}")


def _read_object(f: FieldSpec, raw: dict, where: str, ctx: _Context, item: bool) -> None:
    if "fields" not in raw:
        ctx.fail(where, "object fields need fields")
    f.fields = _build_object(raw["fields"], f"{where}.fields", ctx)


def _read_array(f: FieldSpec, raw: dict, where: str, ctx: _Context, item: bool) -> None:
    if not isinstance(raw.get("items"), dict):
        ctx.fail(where, "array fields need items: {field definition of one item}")
    f.items = _build_field(f"{f.name}[]", raw["items"], f"{where}.items", ctx, item=True)
    if not f.items.title:
        f.items.title = f.title
    f.min_items = _positive_int(raw.get("minItems", 0), f"{where}.minItems", ctx, "minItems")
    if "maxItems" in raw:
        f.max_items = _positive_int(raw["maxItems"], f"{where}.maxItems", ctx, "maxItems")


def _read_file(f: FieldSpec, raw: dict, where: str, ctx: _Context, item: bool) -> None:
    f.size_field = raw.get("sizeField")  # both checked against the siblings by _build_object
    f.hash_field = raw.get("hashField")


# field type -> the reader of the attributes only that type has
_TYPE_RULES: dict[str, Callable[[FieldSpec, dict, str, _Context, bool], None]] = {
    "decimal": _read_decimal,
    "code": _read_code,
    "object": _read_object,
    "array": _read_array,
    "file": _read_file,
}


# --------------------------------------------------------------------------- interfaces


@dataclass(frozen=True)
class Parent:
    """An ordering dependency: this record needs the parent record accepted first."""

    interface: str
    match: dict[str, str]  # child field -> parent field (orgCode implied)


class InterfaceSpec:
    """One municipal interface of one document version."""

    def __init__(
        self,
        *,
        code,
        document,
        version,
        section,
        name,
        path,
        kind,
        envelope,
        key,
        parents,
        voids,
        note,
        request: FieldSpec,
        response: FieldSpec | None,
        profile: Profile,
        profile_data: dict,
        file: Path,
    ):
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
            return (
                []
                if data in (None, {})
                else [field_error("", "unknown", "该接口无应答数据", "no response data defined")]
            )
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
        return examples.example(self, seed, overrides)

    def response_example(self, seed: int = 0, **overrides: Any) -> dict:
        return examples.response_example(self, seed, overrides)

    def invalid_example(self, seed: int = 0, expected: bool = False):
        """A payload with a few known violations (required, unknown, valueSet, length).

        With expected=True returns (payload, [(field, rule), ...]) naming the violations.
        """
        payload, violations = examples.invalid_example(self, seed)
        return (payload, violations) if expected else payload


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
    return tuple(int(p) if (p.isascii() and p.isdigit()) else p for p in re.split(r"[.\-]", version))


def _load_document(file: Path, common_sets: dict[str, ValueSet], common_groups: dict) -> DocumentSpec:
    raw = _read_yaml(file)
    if not isinstance(raw, dict):
        raise SpecError(file, "", "a document spec is a mapping (document, version, interfaces ...)")
    unknown = set(raw) - DOCUMENT_ATTRS
    if unknown:
        raise SpecError(
            file, sorted(unknown)[0], f"unknown attribute (allowed: {', '.join(sorted(DOCUMENT_ATTRS))})"
        )
    for attr in ("document", "version", "title", "profile", "interfaces"):
        if attr not in raw:
            raise SpecError(file, attr, "missing")
    document, version = raw["document"], raw["version"]
    if not isinstance(version, str):
        raise SpecError(file, "version", "quote the version: YAML reads 3.5 as a number")
    if document != file.parent.name or version != file.stem:
        raise SpecError(
            file,
            "document",
            f"{document}/{version} does not match the file's place {file.parent.name}/{file.stem}.yaml",
        )
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
    hospital_codes = raw.get("hospitalCodes") or {}
    if not isinstance(hospital_codes, dict):
        raise SpecError(file, "hospitalCodes", "a mapping VALUE_SET_ID -> dictionary")
    ctx = _Context(file, groups, value_sets, encoding, profile.max_file_bytes, hospital_codes)
    for set_id, dictionary in hospital_codes.items():
        if set_id not in value_sets:
            raise SpecError(file, f"hospitalCodes.{set_id}", f"unknown value set {set_id!r}")
        _check_hospital_dictionary(dictionary, set_id, f"hospitalCodes.{set_id}", ctx)
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
        interfaces.append(
            _build_interface(item, where, ctx, document, version, profile, profile_data, defaults)
        )
    seen_codes, seen_paths = {}, {}
    for spec in interfaces:
        if spec.code in seen_codes:
            raise SpecError(file, spec.code, "service code defined twice")
        if spec.path in seen_paths:
            raise SpecError(file, spec.code, f"path {spec.path} already used by {seen_paths[spec.path]}")
        seen_codes[spec.code] = spec
        seen_paths[spec.path] = spec.code
    return DocumentSpec(
        document, version, raw["title"], profile, profile_data, file, tuple(interfaces), value_sets, encoding
    )


def _build_interface(
    raw: Any,
    where: str,
    ctx: _Context,
    document: str,
    version: str,
    profile: Profile,
    profile_data: dict,
    defaults: dict,
) -> InterfaceSpec:
    if not isinstance(raw, dict):
        ctx.fail(where, "an interface is a mapping (code, path, kind, key, request ...)")
    unknown = set(raw) - INTERFACE_ATTRS
    if unknown:
        ctx.fail(
            where, f"unknown attribute {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(INTERFACE_ATTRS))})"
        )
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
    request = FieldSpec(
        name="",
        title=raw["name"],
        type="object",
        required=True,
        fields=_build_object(raw["request"], f"{where}.request", ctx),
    )
    response_raw = raw.get("response")
    if response_raw is None and kind in ("upload", "void", "daily"):
        response_raw = defaults.get("response")
    if response_raw is None and kind in ("query", "security"):
        ctx.fail(where, f"a {kind} interface needs a response")
    response = None
    if response_raw is not None:
        response = FieldSpec(
            name="",
            title=raw["name"],
            type="object",
            required=True,
            fields=_build_object(response_raw, f"{where}.response", ctx),
        )
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
        code=code,
        document=document,
        version=version,
        section=raw["section"],
        name=raw["name"],
        path=raw["path"],
        kind=kind,
        envelope=envelope,
        key=key,
        parents=parents,
        voids=voids,
        note=raw.get("note"),
        request=request,
        response=response,
        profile=profile,
        profile_data=profile_data,
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
                    raise SpecError(
                        SPEC_ROOT / name, "", f"pinned version {pinned} of {name} has no spec file"
                    )
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
                        raise SpecError(
                            d.file,
                            f"{spec.code}.parents",
                            f"{parent.interface} has no request field {parent_field!r}",
                        )
                covered = {"orgCode", *parent.match.values()}
                if set(target.key) - covered:
                    raise SpecError(
                        d.file,
                        f"{spec.code}.parents",
                        f"match must cover the key of {parent.interface} {list(target.key)}",
                    )
                spec._parent_key_fields[parent.interface] = target.key
            for code in spec.voids:
                target = local.get(code) or self._by_code.get(code)
                if target is None:
                    raise SpecError(d.file, f"{spec.code}.voids", f"unknown interface {code!r}")
                if target.key != spec.key:
                    raise SpecError(
                        d.file,
                        f"{spec.code}.voids",
                        f"{code} has key {list(target.key)}, the void names {list(spec.key)}",
                    )

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
