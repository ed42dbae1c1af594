"""Bind identifiers to the patient they belong to; refuse a request that names them with another.

``bind(identity, refs, source=...)`` (one patient) and ``bind_many(claims, source=...)`` (a batch,
e.g. the outbox's) run inside the caller's transaction, before it stores anything else:

* an identifier seen for the first time is bound to the patient the request names;
* one already bound to the same patient passes (a blank hospital patient id is filled in);
* one bound to another patient (another ID type + number, or another non-blank hospital
  patient id) raises :class:`PatientConflict`: HTTP 409 with one ``{field, rule, message}``
  per identifier, and the caller's transaction (so nothing it wrote) is rolled back.

Edges answer the 409 and call :meth:`PatientConflict.record` after the rollback, which leaves a
``BindingConflict`` row for ops (digests only) and a log line without patient identity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from django.db.models import Q

from hospital_interop import bulkinsert
from hospital_interop.errors import InvalidInput

from .models import BindingConflict, PatientBinding, RefKind, id_key

log = logging.getLogger(__name__)

RULE = "patientMismatch"


@dataclass(frozen=True)
class Identity:
    """The patient a request names: ID type + ID number, and the hospital (HIS) patient id if given."""

    id_type: str
    id_no: str
    patient_id: str = ""

    @cached_property  # an HMAC-SM3, asked for once per identifier the request names
    def key(self) -> str:
        return id_key(self.id_type or "01", self.id_no.strip())


@dataclass(frozen=True)
class Ref:
    """An identifier the request names: its namespace, value and where the request put it."""

    kind: str  # a RefKind value
    value: str
    field: str


@dataclass
class Claim:
    identity: Identity
    refs: list[Ref]
    item: int | None = None  # position in a batch, reported with the errors


@dataclass
class _Conflict:
    claim: Claim
    ref: Ref
    what: str  # "identity" | "patientId"
    bound_key: str


class PatientConflict(InvalidInput):
    """Identifiers of the request belong to another patient (409). ``errors`` = [{field, rule, message}]."""

    status = 409

    def __init__(self, errors: list[dict], conflicts: list[_Conflict] | None = None, source: str = ""):
        super().__init__(errors)
        self.conflicts = conflicts or []
        self.source = source
        self.rejected: list = []  # the caller's records behind ``items``, if it says which they are

    @property
    def items(self) -> set[int]:
        """Positions (in the batch given to bind_many) of the claims that conflict."""
        return {c.claim.item for c in self.conflicts if c.claim.item is not None}

    def record(self) -> None:
        """Leave the refusal for ops. Call it after the request's transaction was rolled back."""
        BindingConflict.objects.bulk_create(
            BindingConflict(
                source=self.source[:32],
                kind=c.ref.kind,
                ref=c.ref.value[:64],
                field=c.ref.field[:100],
                what=c.what,
                bound_key=c.bound_key,
                given_key=c.claim.identity.key,
            )
            for c in self.conflicts
        )


def _label(kind: str) -> str:
    return RefKind(kind).label if kind in RefKind.values else kind


def _message(ref: Ref, what: str) -> str:
    label = _label(ref.kind)
    if what == "patientId":
        return (
            f"{label} {ref.value} 已登记在另一个院内患者ID下，与本次请求的患者ID不一致；"
            f"请核对{label}或患者ID（本次请求未做任何修改）。"
        )
    return (
        f"{label} {ref.value} 已属于另一位患者，与本次请求中的患者身份证件不一致；"
        f"请核对{label}或患者证件（本次请求未做任何修改）。"
    )


def bind(identity: Identity, refs: Iterable[Ref], *, source: str) -> None:
    bind_many([Claim(identity, list(refs))], source=source)


def bind_many(claims: list[Claim], *, source: str) -> None:
    """Bind every claim's identifiers, or raise PatientConflict naming each conflicting one."""
    claims = [c for c in claims if c.identity.id_no.strip()]
    wanted: dict[tuple[str, str], tuple[Claim, Ref]] = {}
    conflicts: list[_Conflict] = []
    for claim in claims:
        for ref in claim.refs:
            if not ref.value:
                continue
            first = wanted.setdefault((ref.kind, ref.value), (claim, ref))
            if first[0].identity.key != claim.identity.key:  # two patients for one identifier in one batch
                conflicts.append(_Conflict(claim, ref, "identity", first[0].identity.key))
    if not wanted:
        return
    bulkinsert.insert(
        PatientBinding,
        [
            PatientBinding(
                kind=ref.kind,
                ref=ref.value,
                id_type_code=(claim.identity.id_type or "01")[:2],
                id_key=claim.identity.key,
                patient_id=claim.identity.patient_id,
                source=source[:32],
            )
            for (_, _), (claim, ref) in sorted(wanted.items())
        ],  # one global order: concurrent writers cannot deadlock
        ignore_conflicts=True,
    )
    by_kind: dict[str, list[str]] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, []).append(value)
    query = Q()
    for kind, values in by_kind.items():
        query |= Q(kind=kind, ref__in=values)
    fill = []
    reported = {(id(c.claim), c.ref) for c in conflicts}
    naming: dict[tuple[str, str], list[tuple[Claim, Ref]]] = {}  # (kind, value) -> the claims naming it
    for claim in claims:
        for ref in claim.refs:
            naming.setdefault((ref.kind, ref.value), []).append((claim, ref))
    for row in PatientBinding.objects.filter(query):
        for claim, ref in naming.get((row.kind, row.ref), ()):
            if (id(claim), ref) in reported:
                continue
            given = claim.identity
            if row.id_key != given.key:
                conflicts.append(_Conflict(claim, ref, "identity", row.id_key))
            elif row.patient_id and given.patient_id and row.patient_id != given.patient_id:
                conflicts.append(_Conflict(claim, ref, "patientId", row.id_key))
            elif not row.patient_id and given.patient_id:
                fill.append((row.pk, given.patient_id))
    if conflicts:
        errors = []
        for c in conflicts:
            error = {"field": c.ref.field, "rule": RULE, "message": _message(c.ref, c.what)}
            errors.append({**error, "item": c.claim.item} if c.claim.item is not None else error)
        for c in conflicts:
            log.warning(
                "patient binding conflict (%s): %s %s is bound to another patient (%s); request refused",
                source,
                c.ref.kind,
                c.ref.value,
                c.what,
            )
        raise PatientConflict(errors, conflicts, source)
    for pk, patient_id in fill:
        PatientBinding.objects.filter(pk=pk, patient_id="").update(patient_id=patient_id)
