"""Record types of the EMR intake and the mapping from an intake record to its platform payload.

Both are data (``mappings/record_types.yaml``, documented at its top): a record type is a
readable slug (``op-registration``) naming a municipal service code (``OP_REGISTRATION``). The
intake format of a record type is the platform payload of that interface as its spec defines it
(so a new document version is a spec change, nothing here), plus three conveniences the mapping
file sets: top-level ``defaults`` (orgCode, orgName from settings), ``fillNames`` (a code's
name field may be left out) and per-type ``rename`` of fields the hospital's systems name
differently.

``RecordType.prepare(record)`` maps one intake record and has the outbox check it against the
spec (``uploads.services.check``, the one validation it gets): ``(checked item, errors)`` with
every error's ``field`` spelled in intake names. ``to_intake`` is the reverse (examples, tests).
The OpenAPI schemas are generated from the same compiled tree (``openapi.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from hospital_interop.errors import field_error
from hospital_interop.municipal.specs import FieldSpec, InterfaceSpec, ValueSet, load_catalogue
from hospital_interop.uploads import services as outbox

MAPPING_FILE = Path(__file__).with_name("mappings") / "record_types.yaml"
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SEGMENT = re.compile(r"^([^.\[\]]+)((?:\[\d+\])*)$")
FILE_ATTRS = frozenset({"groups", "defaults", "fillNames", "recordTypes"})
TYPE_ATTRS = frozenset({"slug", "interface", "group", "rename", "defaults", "fillNames", "note"})


class MappingError(ValueError):
    """The mapping file is malformed; names the file and the place inside it."""

    def __init__(self, file: Path | str, where: str, message: str):
        super().__init__(f"{file}: {where}: {message}" if where else f"{file}: {message}")


# --------------------------------------------------------------------------- compiled field tree


@dataclass
class Node:
    """The intake view of one object of the spec (the payload itself, a nested object or the item
    object of an array): names in both directions and where to descend."""

    fields: dict[str, FieldSpec]  # platform name -> spec
    to_platform: dict[str, str] = field(default_factory=dict)  # intake name -> platform name
    to_intake: dict[str, str] = field(default_factory=dict)  # platform name -> intake name
    children: dict[str, Node] = field(
        default_factory=dict
    )  # platform name -> node (objects, arrays of objects)
    name_fills: tuple[
        tuple[str, str, ValueSet], ...
    ] = ()  # (code field, name field, value set), platform names
    name_fields: frozenset[str] = frozenset()  # platform names of fields that are some code's name
    renamed: bool = False  # this node or one below renames something

    def intake_field(self, platform_name: str) -> str:
        return self.to_intake.get(platform_name, platform_name)


def _compile(
    fields: dict[str, FieldSpec], prefix: str, rename: dict[str, str], used: set[str], file: Path, where: str
) -> Node:
    node = Node(fields=fields)
    fills = []
    for name, f in fields.items():
        path = prefix + name
        intake = rename.get(path, name)
        if path in rename:
            used.add(path)
        if intake in node.to_platform:
            raise MappingError(file, where, f"rename gives two fields the intake name {intake!r}")
        node.to_platform[intake] = name
        node.to_intake[name] = intake
        node.renamed |= intake != name
        child = None
        if f.type == "object":
            child = _compile(f.fields, path + ".", rename, used, file, where)
        elif f.type == "array" and f.items is not None and f.items.type == "object":
            child = _compile(f.items.fields, path + "[].", rename, used, file, where)
        if child is not None:
            node.children[name] = child
            node.renamed |= child.renamed
        if f.type == "code" and f.name_field:
            fills.append((name, f.name_field, f.value_set))
    node.name_fills = tuple(fills)
    node.name_fields = frozenset(n for _, n, _ in fills)
    return node


# --------------------------------------------------------------------------- record types


@dataclass
class RecordType:
    slug: str
    interface: str
    group: str
    group_title: str
    defaults: dict[str, Any]  # platform top-level field -> constant or {"setting": "A.B"}
    fill_names: bool
    rename: dict[str, str]
    root: Node
    spec: InterfaceSpec
    note: str = ""

    # -- descriptive ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The business key in intake names."""
        return tuple(self.root.intake_field(k) for k in self.spec.key)

    def optional_by_mapping(self, node: Node, platform_name: str) -> bool:
        """A field the spec requires but the intake may leave out (default or filled name)."""
        if node is self.root and platform_name in self.defaults:
            return True
        return self.fill_names and platform_name in node.name_fields

    # -- mapping ------------------------------------------------------------------------------
    def default_value(self, platform_name: str) -> Any:
        value = self.defaults[platform_name]
        if isinstance(value, dict):
            return _setting(value["setting"])
        return value

    def to_platform(self, record: dict, codes: _CodeRun | None = None) -> tuple[dict, list[dict]]:
        """Intake record -> platform payload (not validated). Errors only for misnamed fields.
        With ``codes``, code fields given as ``{"code", "codeSystem"}`` objects are resolved
        (hospital codes mapped; problems collected in ``codes``)."""
        errors: list[dict] = []
        payload = _convert(record, self.root, "", errors) if self.root.renamed else _copy(record)
        for name in self.defaults:
            if payload.get(name) is None or payload.get(name) == "":
                payload[name] = self.default_value(name)
        if codes is not None:
            _resolve_codes(payload, self.root, "", codes)
        if self.fill_names:
            _fill_names(payload, self.root)
        return payload, errors

    def to_intake(self, payload: dict) -> dict:
        """Platform payload -> intake record (the reverse of to_platform, for examples and tests)."""
        return _reverse(payload, self.root) if self.root.renamed else _copy(payload)

    def intake_path(self, platform_path: str) -> str:
        """``drugs[2].drugCode`` in platform names -> the same place in intake names."""
        if not self.root.renamed or not platform_path:
            return platform_path
        node: Node | None = self.root
        out = []
        for part in platform_path.split("."):
            m = _SEGMENT.match(part)
            if node is None or m is None:
                out.append(part)
                node = None
                continue
            name, index = m.groups()
            out.append(node.intake_field(name) + index)
            node = node.children.get(name)
        return ".".join(out)

    def map(self, record: Any, resolve: Callable | None = None) -> Mapped:
        """Map one intake record, its hospital codes through the dictionaries (``resolve``,
        default ``dictionaries.selectors.standard_code``), and have the outbox check it.

        ``errors`` reject the record; with none, ``unmapped`` (hospital codes without a usable
        mapping) hold it, and otherwise ``checked`` is ready for ``enqueue_many``. Spec errors
        of a field whose hospital code is not mapped yet are left out (they are the mapping's)."""
        if type(record) is not dict:
            return Mapped(
                None, None, [field_error("", "type", "记录应为JSON对象", "a record is a JSON object")]
            )
        run = _CodeRun(resolve or _default_resolve(), self.intake_path)
        payload, errors = self.to_platform(record, run)
        errors += run.errors
        checked, problems = outbox.check(outbox.Item(self.interface, payload))
        errors += [
            {**e, "field": self.intake_path(e["field"])} for e in problems if e["field"] not in run.ignore
        ]
        if errors or run.unmapped:
            checked = None
        return Mapped(payload, checked, errors, run.unmapped)

    def prepare(self, record: Any) -> tuple[outbox.Checked | None, list[dict]]:
        """Map one intake record and check it against the spec: (the outbox item, ready for
        ``enqueue_many``, or None; errors in intake names, an unmapped hospital code among them)."""
        mapped = self.map(record)
        return mapped.checked, mapped.errors + mapped.unmapped

    def parse_key(self, text: str) -> str:
        """A business key as written in a status URL: ``orgCode|id`` or, for this hospital's own
        records, just ``id`` (the orgCode default is prepended)."""
        parts = text.split("|")
        if len(parts) == len(self.spec.key) - 1 and self.spec.key[0] in self.defaults:
            parts.insert(0, str(self.default_value(self.spec.key[0])))
        return "|".join(parts)

    def example(self, seed: int = 0) -> dict:
        """A valid intake record (complete: defaults and names included)."""
        return self.to_intake(self.spec.example(seed))


@dataclass
class Mapped:
    """One intake record mapped (``RecordType.map``)."""

    payload: dict | None
    checked: outbox.Checked | None  # ready for enqueue_many: no errors, every code mapped
    errors: list[dict]  # reject the record (400)
    unmapped: list[dict] = field(default_factory=list)  # hold it until the dictionaries map these

    @property
    def held(self) -> bool:
        return not self.errors and bool(self.unmapped)


# --------------------------------------------------------------------------- hospital codes

CODE_KEYS = frozenset({"code", "codeSystem", "name"})
HOSPITAL, NATIONAL = "hospital", "national"


@dataclass
class _CodeRun:
    """What resolving the code objects of one record found."""

    resolve: Callable  # (dictionary, value set id, hospital code) -> (standard code, name) | Unmapped
    intake_path: Callable[[str], str]
    errors: list[dict] = field(default_factory=list)
    unmapped: list[dict] = field(default_factory=list)
    ignore: set[str] = field(default_factory=set)  # platform paths whose spec errors are ours


def _default_resolve() -> Callable:
    """``dictionaries.selectors.standard_code`` with answers kept for one record or batch."""
    from dictionaries.selectors import standard_code

    return cached_resolver(standard_code)


def cached_resolver(resolve: Callable) -> Callable:
    """A resolver remembering its answers (mapped or not) for as long as it lives."""
    from dictionaries.selectors import Unmapped

    memo: dict[tuple, Any] = {}

    def cached(dictionary: str, value_set: str, code: str):
        key = (dictionary, value_set, code)
        if key not in memo:
            try:
                memo[key] = resolve(dictionary, value_set, code)
            except Unmapped as exc:
                memo[key] = exc
        answer = memo[key]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return cached


def _resolve_codes(obj: dict, node: Node, prefix: str, run: _CodeRun) -> None:
    for name, f in node.fields.items():
        value = obj.get(name)
        if value is None:
            continue
        path = prefix + name
        if f.type == "code" and type(value) is dict:
            _resolve_one(obj, name, f, path, run)
            continue
        child = node.children.get(name)
        if child is None:
            continue
        if type(value) is dict:
            _resolve_codes(value, child, path + ".", run)
        elif type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict:
                    _resolve_codes(item, child, f"{path}[{i}].", run)


def _resolve_one(obj: dict, name: str, f: FieldSpec, path: str, run: _CodeRun) -> None:
    """A code given as ``{"code", "codeSystem", "name"}``: a national code passes on as the plain
    code; a hospital code is mapped through the dictionary the spec names for the field."""
    from dictionaries.selectors import HOSPITAL_DICTIONARIES, Unmapped

    value, where = obj[name], run.intake_path(path)
    label = f"{f.title}（{where}）"
    parent = path.rpartition(".")[0]
    ours = {path} | ({f"{parent}.{f.name_field}" if parent else f.name_field} if f.name_field else set())
    code, system, hospital_name = value.get("code"), value.get("codeSystem"), value.get("name")
    problems = []
    for key in sorted(set(value) - CODE_KEYS):
        problems.append(
            field_error(
                f"{where}.{key}", "unknown", f"{label}：代码对象只有 code、codeSystem、name 三项，没有 {key}"
            )
        )
    if type(code) is not str or not code.strip():
        problems.append(field_error(f"{where}.code", "required", f"{label}：缺少代码 code（字符串）"))
    if system not in (HOSPITAL, NATIONAL):
        said = "缺少代码体系 codeSystem" if system is None else f"代码体系 codeSystem“{system}”无效"
        problems.append(
            field_error(
                f"{where}.codeSystem",
                "codeSystem",
                f"{label}：{said}，应为 hospital（院内代码，按字典对照为{f.value_set.title}）"
                f"或 national（{f.value_set.title}本身）",
            )
        )
    if hospital_name is not None and (type(hospital_name) is not str or len(hospital_name) > 100):
        problems.append(
            field_error(f"{where}.name", "type", f"{label}：院内名称 name 应为不超过 100 字的字符串")
        )
    if not problems and system == HOSPITAL and not f.hospital_codes:
        problems.append(
            field_error(
                where,
                "codeSystem",
                f"{label}只接受{f.value_set.title}（国家标准代码），不接受院内代码：接口规范未声明该字段可按字典对照",
            )
        )
    if problems:
        run.errors += problems
        run.ignore |= ours
        obj[name] = None
        return
    code = code.strip()
    if system == NATIONAL:
        obj[name] = code  # checked against the value set like any national code
        return
    try:
        standard, standard_name = run.resolve(f.hospital_codes, f.value_set.id, code)
    except Unmapped as exc:
        dictionary = HOSPITAL_DICTIONARIES[f.hospital_codes]
        run.unmapped.append(
            {
                "field": where,
                "rule": f"mapping.{exc.reason}",
                "message": f"{label}：{exc.message}。请在字典「{dictionary}」中维护对照，维护后该记录自动发送",
                "dictionary": f.hospital_codes,
                "valueSet": f.value_set.id,
                "hospitalCode": code,
                "hospitalName": hospital_name or "",
            }
        )
        run.ignore |= ours
        obj[name] = code
        return
    obj[name] = standard
    if f.name_field:
        obj[f.name_field] = standard_name  # the hospital's name belongs to the hospital's code


def _setting(dotted: str) -> Any:
    head, *rest = dotted.split(".")
    value = getattr(settings, head)
    for part in rest:
        value = value[part]
    return value


def _copy(value: Any) -> Any:
    """Copy the JSON structure (dicts and lists); leaves are immutable and shared."""
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value


def _convert(obj: dict, node: Node, prefix: str, errors: list[dict]) -> dict:
    out = {}
    for key, value in obj.items():
        platform = node.to_platform.get(key)
        if platform is None:
            if key in node.to_intake and node.to_intake[key] != key:
                # the platform's name of a renamed field: the intake must use its own name
                errors.append(
                    field_error(
                        prefix + key,
                        "unknown",
                        f"该字段在接入格式中应写作 {node.to_intake[key]}",
                        f"use {node.to_intake[key]}",
                    )
                )
                continue
            out[key] = _copy(value)
            continue
        child = node.children.get(platform)
        if child is not None and type(value) is dict:
            value = _convert(value, child, f"{prefix}{key}.", errors)
        elif child is not None and type(value) is list:
            value = [
                _convert(v, child, f"{prefix}{key}[{i}].", errors) if type(v) is dict else _copy(v)
                for i, v in enumerate(value)
            ]
        else:
            value = _copy(value)
        out[platform] = value
    return out


def _reverse(obj: dict, node: Node) -> dict:
    out = {}
    for key, value in obj.items():
        child = node.children.get(key)
        if child is not None and type(value) is dict:
            value = _reverse(value, child)
        elif child is not None and type(value) is list:
            value = [_reverse(v, child) if type(v) is dict else v for v in value]
        else:
            value = _copy(value)
        out[node.intake_field(key)] = value
    return out


def _fill_names(obj: dict, node: Node) -> None:
    for code_field, name_field, value_set in node.name_fills:
        code = obj.get(code_field)
        if type(code) is str and (obj.get(name_field) is None or obj.get(name_field) == ""):
            name = value_set.codes.get(code)
            if name is not None:
                obj[name_field] = name
    for name, child in node.children.items():
        value = obj.get(name)
        if type(value) is dict:
            _fill_names(value, child)
        elif type(value) is list:
            for item in value:
                if type(item) is dict:
                    _fill_names(item, child)


# --------------------------------------------------------------------------- loading


class RecordTypes:
    """Every record type of the mapping file, by slug and by service code, in file order."""

    def __init__(self, types: list[RecordType], groups: dict[str, str]):
        self.types = types
        self.groups = groups
        self.by_slug = {t.slug: t for t in types}
        self.by_interface = {t.interface: t for t in types}

    def __iter__(self):
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)

    def get(self, slug: str) -> RecordType:
        try:
            return self.by_slug[slug]
        except KeyError:
            raise KeyError(f"unknown record type {slug!r}") from None

    def for_interface(self, code: str) -> RecordType:
        return self.by_interface[code]

    def grouped(self) -> list[tuple[str, str, list[RecordType]]]:
        return [
            (g, title, [t for t in self.types if t.group == g])
            for g, title in self.groups.items()
            if any(t.group == g for t in self.types)
        ]


def _load(file: Path) -> RecordTypes:
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(file, "", f"cannot read: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - FILE_ATTRS:
        raise MappingError(file, "", f"a mapping with {sorted(FILE_ATTRS)}")
    groups = raw.get("groups") or {}
    base_defaults = raw.get("defaults") or {}
    base_fill = bool(raw.get("fillNames", False))
    catalogue = load_catalogue()
    types, seen = [], set()
    for n, item in enumerate(raw.get("recordTypes") or []):
        where = f"recordTypes[{n}]"
        if (
            not isinstance(item, dict)
            or set(item) - TYPE_ATTRS
            or not {"slug", "interface", "group"} <= set(item)
        ):
            raise MappingError(
                file, where, f"a record type is {{slug, interface, group, ...}} ({sorted(TYPE_ATTRS)})"
            )
        slug, code, group = item["slug"], item["interface"], item["group"]
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise MappingError(file, where, f"slug {slug!r}: lower-case words joined by hyphens")
        if slug in seen:
            raise MappingError(file, where, f"slug {slug!r} used twice")
        seen.add(slug)
        if group not in groups:
            raise MappingError(file, where, f"group {group!r} is not one of {sorted(groups)}")
        try:
            spec = catalogue.interface(code)
        except KeyError:
            raise MappingError(file, where, f"unknown service code {code!r}") from None
        if spec.kind not in ("upload", "void", "daily"):
            raise MappingError(file, where, f"{code} is a {spec.kind} interface, not something to submit")
        defaults = {**base_defaults, **(item.get("defaults") or {})}
        defaults = {
            k: v for k, v in defaults.items() if k in spec.request.fields
        }  # only fields this spec has
        for k, v in defaults.items():
            if isinstance(v, dict) and set(v) != {"setting"}:
                raise MappingError(
                    file, f"{where}.defaults.{k}", "a default is a constant or {setting: NAME.KEY}"
                )
        rename = item.get("rename") or {}
        if not isinstance(rename, dict) or not all(
            isinstance(v, str) and re.match(r"^[a-z][A-Za-z0-9]*$", v) for v in rename.values()
        ):
            raise MappingError(file, f"{where}.rename", "rename is {platformFieldPath: intakeFieldName}")
        used: set[str] = set()
        root = _compile(spec.request.fields, "", rename, used, file, f"{where}.rename")
        unknown = set(rename) - used
        if unknown:
            raise MappingError(file, f"{where}.rename", f"{code} has no field {sorted(unknown)[0]!r}")
        types.append(
            RecordType(
                slug=slug,
                interface=code,
                group=group,
                group_title=groups[group],
                defaults=defaults,
                fill_names=bool(item.get("fillNames", base_fill)),
                rename=dict(rename),
                root=root,
                spec=spec,
                note=str(item.get("note") or ""),
            )
        )
    if not types:
        raise MappingError(file, "recordTypes", "no record types")
    return RecordTypes(types, dict(groups))


@functools.lru_cache(maxsize=4)
def _load_cached(file: str, catalogue_id: int) -> RecordTypes:
    return _load(Path(file))


def record_types(file: str | Path | None = None) -> RecordTypes:
    """The record types of the mapping file (default: mappings/record_types.yaml), cached."""
    return _load_cached(str(file or MAPPING_FILE), id(load_catalogue()))
