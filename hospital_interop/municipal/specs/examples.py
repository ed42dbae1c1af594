"""Example payloads: valid, realistic and deterministic per seed, and invalid ones on purpose.

:func:`example` fills an interface's request fields from their ``example`` hints or, without
a hint, from the field's type, value set and format; the hints (``@persona.idNo``, ``@t+7d``,
templates, lists) are listed at the top of ``specs/_common/fields.yaml``, and :func:`hint_ok` is
the vocabulary the loader lints them against. One seed is one synthetic patient
(:func:`persona`) and one moment: records of different interfaces made with the same seed share
the patient, the encounter ids and consistent times, so seeding parents and children with one
seed satisfies the ordering rules. :func:`invalid_example` breaks such a payload in a few known
ways, for tests of everything that reports validation errors.

Imports :mod:`.validate` only; the loader's spec classes call in here.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import functools
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hospital_interop.municipal.gm import sm3_hex

from .validate import _ID_CHECK, _condition, _id_check_digit, resident_id_ok

if TYPE_CHECKING:
    from .loader import FieldSpec, InterfaceSpec

# --------------------------------------------------------------------------- personas


_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
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


PERSONA_ATTRS = frozenset(f.name for f in dataclasses.fields(Persona))  # what @persona.<attr> may name


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
        name=_person_name(rng, male),
        sexCode="1" if male else "2",
        birthDate=f"{birth:%Y%m%d}",
        idNo=id_no,
        phone=f"1{rng.choice('3456789')}{rng.randint(0, 999999999):09d}",
        ageYears=age,
        province=region[1],
        city=region[2],
        county=region[3],
        street=street,
        postcode=region[4],
        address=f"{region[1]}{region[3] if region[2] == '市辖区' else region[2] + region[3]}{street}",
        contactName=_person_name(rng),
        healthCardNo=f"BJ{rng.randint(0, 10**16 - 1):016d}",
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


# --------------------------------------------------------------------------- hints


_HINT = re.compile(r"^@(t([+-][0-9]+[dhm])*|persona\.[A-Za-z]+|person|staffId|licenseNo|uid|i)$")
_OFFSET = re.compile(r"([+-])([0-9]+)([dhm])")


def hint_ok(value: str) -> bool:
    """True when ``value`` (a string starting with "@") names a generator this module has."""
    return bool(_HINT.match(value)) and (not value.startswith("@persona.") or value[9:] in PERSONA_ATTRS)


# --------------------------------------------------------------------------- generation


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
            top = 10**f.length - 1 if f.length else 999
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


def example(spec: InterfaceSpec, seed: int, overrides: dict[str, Any]) -> dict:
    """A valid request payload of ``spec`` for ``seed`` (see :meth:`InterfaceSpec.example`)."""
    return _apply(_Generator(spec, seed).object(spec.request.fields, None, 0), overrides)


def response_example(spec: InterfaceSpec, seed: int, overrides: dict[str, Any]) -> dict:
    """A valid response ``data`` of ``spec`` for ``seed``; {} when the interface answers none."""
    if spec.response is None:
        return {}
    return _apply(_Generator(spec, seed).object(spec.response.fields, None, 0), overrides)


def _apply(payload: dict, overrides: dict) -> dict:
    for k, v in overrides.items():
        if v is None:
            payload.pop(k, None)
        else:
            payload[k] = v
    return payload


# --------------------------------------------------------------------------- invalid examples


def invalid_example(spec: InterfaceSpec, seed: int) -> tuple[dict, list[tuple[str, str]]]:
    """The example of ``seed`` with a few known violations, and the (field, rule) of each: a
    required field missing, a code out of its value set, a text too long, a resident ID with a
    wrong check digit, a required field missing in an array item, and an unknown field."""
    payload = example(spec, seed, {})
    fields = spec.request.fields
    name_fields = {f.name_field for f in fields.values() if f.name_field}
    used: set[str] = set(spec.key)
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
    long_text = first(
        lambda f: (
            f.type == "string"
            and f.length
            and f.name in payload
            and not f.format
            and not f.pattern
            and f.name not in name_fields
        )
    )
    if long_text is not None:
        payload[long_text.name] = "长" * (long_text.length + 1)
        violations.append((long_text.name, "length"))
    bad_id = _break_resident_id(spec, payload)
    if bad_id is not None:
        violations.append((bad_id, "checksum"))
    array = first(lambda f: f.type == "array" and f.items.type == "object" and payload.get(f.name))
    if array is not None:
        item_field = next(
            (g for g in array.items.fields.values() if g.required and g.type not in ("object", "array")), None
        )
        if item_field is not None:
            payload[array.name][0].pop(item_field.name, None)
            violations.append((f"{array.name}[0].{item_field.name}", "required"))
    payload["unexpectedField"] = "x"
    violations.append(("unexpectedField", "unknown"))
    return payload, violations


def _break_resident_id(spec: InterfaceSpec, payload: dict) -> str | None:
    """Give the first valid resident ID outside arrays a wrong check digit; return its path."""
    for path, f in spec.request.walk():
        if f.format != "resident-id" or "[]" in path:
            continue
        *parents, leaf = path.split(".")
        holder = payload
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(leaf), str) and resident_id_ok(holder[leaf]):
            good = holder[leaf]
            holder[leaf] = good[:17] + _ID_CHECK[(_ID_CHECK.index(good[17]) + 1) % 11]
            return path
    return None
