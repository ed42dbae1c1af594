"""An in-process snapshot of the dictionaries the prompt API needs, as plain dicts.

The prompt API answers on every order the doctor types, so it never queries the database for
mappings: each process keeps this snapshot and rebuilds it when the dictionaries' version
number (read from the cache in the same round trip as the patient's external results) changes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

MAX_AGE_SECONDS = 300.0  # rebuild at least this often, even if no version bump was seen


@dataclass(frozen=True)
class ExamTarget:
    order_name: str
    std_code: str
    std_name: str
    price: Decimal


@dataclass(frozen=True)
class LabLine:
    sub_code: str
    sub_name: str
    std_code: str  # "" when the sub-item is not a recognition item
    std_name: str
    charge_code: str
    price: Decimal


@dataclass(frozen=True)
class LabPanel:
    order_name: str
    lines: tuple[LabLine, ...]


@dataclass
class Snapshot:
    version: int
    built: float
    exam: dict[tuple[str, str], ExamTarget] = field(
        default_factory=dict
    )  # (order item, hospital body part|"")
    exam_names: dict[str, str] = field(default_factory=dict)
    lab: dict[str, LabPanel] = field(default_factory=dict)
    valid_days: dict[str, int] = field(default_factory=dict)  # standard code → recognition window
    doctors: dict[str, tuple[str, str]] = field(default_factory=dict)  # staff no → (name, dept code)
    depts: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # code → (name, std code, std name)

    def exam_target(self, code: str, body_part: str = "") -> ExamTarget | None:
        return self.exam.get((code, body_part or "")) or self.exam.get((code, ""))


def build(version: int) -> Snapshot:
    from dictionaries import models as d

    snap = Snapshot(version=version, built=time.monotonic())
    for m in d.ExamItemMapping.objects.select_related(
        "order_item__charge_item", "body_part", "standard_item"
    ).filter(order_item__active=True, standard_item__active=True):
        charge = m.order_item.charge_item
        snap.exam[(m.order_item.code, m.body_part.code if m.body_part_id else "")] = ExamTarget(
            m.order_item.name,
            m.standard_item.code,
            m.standard_item.name,
            charge.price if charge else Decimal(0),
        )
    snap.exam_names = dict(d.ExamOrderItem.objects.values_list("code", "name"))
    panels: dict[str, list[LabLine]] = {}
    names: dict[str, str] = {}
    for li in (
        d.LabOrderItem.objects.select_related("order", "sub_item__standard", "sub_item__charge_item")
        .filter(order__active=True)
        .order_by("order__code", "position", "sub_item__code")
    ):
        sub, std, charge = li.sub_item, li.sub_item.standard, li.sub_item.charge_item
        usable = std is not None and std.active
        names[li.order.code] = li.order.name
        panels.setdefault(li.order.code, []).append(
            LabLine(
                sub.code,
                sub.name,
                std.code if usable else "",
                std.name if usable else "",
                charge.code if charge else "",
                charge.price if charge else Decimal(0),
            )
        )
    snap.lab = {code: LabPanel(names[code], tuple(lines)) for code, lines in panels.items()}
    snap.valid_days = {
        **dict(d.StandardExamItem.objects.values_list("code", "valid_days")),
        **dict(d.StandardLabItem.objects.values_list("code", "valid_days")),
    }
    snap.doctors = {
        s: (n, dept or "")
        for s, n, dept in d.Doctor.objects.filter(active=True).values_list(
            "staff_no", "name", "department__code"
        )
    }
    snap.depts = {
        c: (n, sc or "", sn or "")
        for c, n, sc, sn in d.HospitalDepartment.objects.filter(active=True).values_list(
            "code", "name", "standard__code", "standard__name"
        )
    }
    return snap


_current: Snapshot | None = None
_lock = threading.Lock()


def get(version: int | None) -> Snapshot:
    global _current
    version = version or 0
    snap = _current
    if snap is not None and snap.version == version and time.monotonic() - snap.built < MAX_AGE_SECONDS:
        return snap
    with _lock:
        snap = _current
        if snap is None or snap.version != version or time.monotonic() - snap.built >= MAX_AGE_SECONDS:
            snap = _current = build(version)
    return snap


def reset() -> None:
    global _current
    _current = None
