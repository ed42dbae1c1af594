"""Writes of the EMR intake: map, validate and hand records to the delivery engine (the outbox).

Every path in — the REST API (single and bulk), the backfill command and the HIS view puller —
ends here, so they share one behaviour:

* a record is mapped (``mapping.py``) and checked once against its interface spec (by the
  outbox's ``check``); any error rejects it with ``{field, rule, message}`` in intake names and
  writes nothing;
* the checked records go to the outbox's one door, ``enqueue_many(..., skip_unchanged=True)``:
  idempotent by business key, a record identical to the latest stored version of its key is
  *unchanged* (nothing written); a changed one becomes a new version, and the outbox
  supersedes the older unsent one. Versions, key locks and rows are the outbox's alone;
* a record naming a visit, stay or order that belongs to another patient raises
  ``PatientConflict`` (409; ``rejected`` lists those records with their errors) and nothing of the
  batch is written;
* ordering (children wait for their parent's acceptance), retries and delivery are the outbox's
  too; nothing is sent inside a request.

* a record whose hospital codes (``{"code", "codeSystem": "hospital"}``, fields the spec marks
  ``hospitalCodes``) are not all mapped by the dictionaries, and which is otherwise valid, is
  *held* (``HeldRecord``, 待对照): stored sealed as submitted, with a problem per code naming the
  field, the code and the dictionary, and not sent. ``release_held`` maps it again when the
  dictionaries change (a mapping saved in the admin or imported from Excel: ``signals.py``; and
  the periodic re-check) and hands it to ``enqueue_many`` once every code maps. A newer version
  of the key supersedes a held one.

``submit_many`` is all-or-nothing: it validates every record first and writes them in one
transaction only if all are valid.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from hospital_interop import cachesafe
from hospital_interop.errors import InvalidInput
from hospital_interop.logmask import mask_name
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox

from .mapping import RecordType, cached_resolver, record_types
from .models import HeldCode, HeldRecord

if TYPE_CHECKING:
    from hospital_interop.uploads.models import OutboxRecord

log = logging.getLogger(__name__)
DICTIONARY_VERSION_SEEN = "emr:held-release:dictionary-version"


@dataclass
class Prepared:
    """A mapped record its interface spec accepts, ready to hand to the outbox; or (``held``) one
    whose hospital codes are not all mapped yet, to be kept until they are."""

    record_type: RecordType
    checked: outbox.Checked | None
    line: int | None = None
    record: dict | None = None  # the intake record as submitted (kept for a held record)
    unmapped: list[dict] = field(default_factory=list)
    payload: dict | None = None  # the platform payload as far as it maps (key, patient)

    @property
    def held(self) -> bool:
        return bool(self.unmapped)

    @property
    def key(self) -> str:
        if self.checked is not None:
            return self.checked.key
        return outbox.business_key(self.record_type.spec, self.payload or {})


@dataclass
class Submission:
    record_type: RecordType
    key: str
    record: OutboxRecord | None  # the new version, or the latest one when unchanged; None: held
    created: bool  # False: identical to the latest version (or the held record), nothing written
    line: int | None = None
    extra: dict = field(default_factory=dict)
    held: HeldRecord | None = None  # the record waits for a code mapping (待对照)


def prepare(
    record_type: RecordType, record, *, line: int | None = None, resolve=None
) -> tuple[Prepared | None, list[dict]]:
    mapped = record_type.map(record, resolve)
    errors = mapped.errors
    if errors:
        errors = errors + mapped.unmapped  # rejected anyway: tell every problem at once
        if line is not None:
            errors = [{"line": line, **e} for e in errors]
        return None, errors
    return Prepared(record_type, mapped.checked, line, record, mapped.unmapped, mapped.payload), []


def submit(record_type: RecordType, record, *, source: str) -> Submission:
    """One record from the API: InvalidInput, or stored (a new version), held, or unchanged."""
    prepared, errors = prepare(record_type, record)
    if errors:
        raise InvalidInput(errors)
    return store([prepared], source=source)[0]


def submit_many(
    items, *, source: str, wake: bool = True, errors: list[dict] | None = None
) -> list[Submission]:
    """All-or-nothing: ``items`` = [(record_type, record, line)]. InvalidInput (every error of
    every line, plus the given ``errors`` of lines that could not even be read; nothing written)
    or every record stored/held/unchanged, in one transaction."""
    prepared, errors = [], list(errors or [])
    resolve = _resolver()
    for record_type, record, line in items:
        p, errs = prepare(record_type, record, line=line, resolve=resolve)
        if errs:
            errors += errs
        else:
            prepared.append(p)
    if errors:
        raise InvalidInput(sorted(errors, key=lambda e: e.get("line") or 0))
    return store(prepared, source=source, wake=wake)


def _resolver():
    from dictionaries.selectors import standard_code

    return cached_resolver(standard_code)


def store(prepared: list[Prepared], *, source: str, wake: bool = True) -> list[Submission]:
    """Hand prepared records to the outbox in one transaction; those identical to the latest
    version of their key are not stored again (``created`` False, ``record`` that version).
    Held records are kept (``HeldRecord``) instead; a record stored for a key supersedes the
    key's held one.

    wake: let the outbox wake workers after the commit (it sends one message per claim batch of
    the transaction's new rows); False leaves them to the periodic sweep.
    """
    direct = [p for p in prepared if not p.held]
    try:
        with transaction.atomic():
            results = outbox.enqueue_many(
                [p.checked for p in direct], source=source, wake_worker=wake, skip_unchanged=True
            )
            _supersede_held(
                [(p.checked.interface, p.key) for p, r in zip(direct, results, strict=True) if r.created]
            )
            held = {id(p): _hold(p, source) for p in prepared if p.held}
    except PatientConflict as exc:  # in intake terms: each conflicting record and its line

        def in_intake_terms(error: dict) -> dict:
            p = direct[error["item"]]
            return {
                **({"line": p.line} if p.line is not None else {}),
                **{k: v for k, v in error.items() if k != "item"},
                "field": p.record_type.intake_path(error["field"]),
            }

        exc.rejected = [
            (direct[i], [in_intake_terms(e) for e in exc.errors if e.get("item") == i])
            for i in sorted(exc.items)
        ]
        exc.errors = [in_intake_terms(e) for e in exc.errors]
        raise
    by_item = dict(zip((id(p) for p in direct), results, strict=True))
    out = []
    for p in prepared:
        if p.held:
            row, created = held[id(p)]
            out.append(Submission(p.record_type, p.key, None, created, p.line, held=row))
        else:
            r = by_item[id(p)]
            out.append(Submission(p.record_type, p.key, r.record, r.created, p.line))
    return out


def content_hash(record) -> str:
    return hashlib.sha256(json.dumps(record, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _supersede_held(pairs: list[tuple[str, str]]) -> None:
    """Newer versions were stored for these keys: their held records must never go out after them.
    One statement per interface (a backfill's batch of 1,000 once spent a third of its time here,
    one UPDATE per record)."""
    by_interface: dict[str, set[str]] = {}
    for interface, key in pairs:
        by_interface.setdefault(interface, set()).add(key)
    now = timezone.now()
    for interface, keys in by_interface.items():
        HeldRecord.objects.filter(
            state=HeldRecord.State.HELD, interface=interface, business_key__in=keys
        ).update(state=HeldRecord.State.SUPERSEDED, updated_at=now)


def _hold(p: Prepared, source: str) -> tuple[HeldRecord, bool]:
    """Keep (or replace) the held record of this key: (row, created)."""
    rt, key, digest = p.record_type, p.key, content_hash(p.record)
    row = (
        HeldRecord.objects.select_for_update()
        .filter(state=HeldRecord.State.HELD, interface=rt.interface, business_key=key)
        .first()
    )
    if row is not None and row.content_hash == digest:
        return row, False
    patient = outbox.patient_of(rt.interface, p.payload or {})
    row = row or HeldRecord(record_type=rt.slug, interface=rt.interface, business_key=key)
    row.record, row.content_hash, row.source = p.record, digest, source
    row.patient_display, row.patient_id_hash = mask_name(patient.name), patient.id_hash
    row.problems = p.unmapped
    row.save()
    _set_codes(row, p.unmapped)
    log.info("EMR %s held for code mapping: %d code(s)", rt.slug, len(p.unmapped))
    return row, True


def _set_codes(row: HeldRecord, unmapped: list[dict]) -> None:
    row.codes.all().delete()
    HeldCode.objects.bulk_create(
        [
            HeldCode(
                held=row,
                dictionary=u["dictionary"],
                value_set=u["valueSet"],
                code=u["hospitalCode"][:64],
                name=(u.get("hospitalName") or "")[:100],
                field=u["field"][:200],
            )
            for u in unmapped
        ]
    )


# --------------------------------------------------------------------------- release of held records


@dataclass
class Released:
    released: int = 0
    held: int = 0
    rejected: int = 0


def release_held(held_ids=None, *, codes=None) -> Released:
    """Map held records again and enqueue those whose codes all map now (``enqueue_many``, the
    outbox's one door). ``held_ids``: these rows; ``codes``: rows waiting for any of these
    (dictionary, value set, hospital code); neither: every held row. One transaction per record."""
    rows = HeldRecord.objects.filter(state=HeldRecord.State.HELD)
    if held_ids is not None:
        rows = rows.filter(pk__in=list(held_ids))
    if codes is not None:
        wanted = set(codes)
        if not wanted:
            return Released()
        ids = {
            h
            for h, d, v, c in HeldCode.objects.filter(
                held__state=HeldRecord.State.HELD, code__in={c for _, _, c in wanted}
            ).values_list("held_id", "dictionary", "value_set", "code")
            if (d, v, c) in wanted
        }
        rows = rows.filter(pk__in=ids)
    outcome = Released()
    resolve = _resolver()
    for pk in rows.order_by("received_at", "pk").values_list("pk", flat=True):
        state = _release_one(pk, resolve)
        if state == HeldRecord.State.RELEASED:
            outcome.released += 1
        elif state == HeldRecord.State.REJECTED:
            outcome.rejected += 1
        elif state == HeldRecord.State.HELD:
            outcome.held += 1
    if outcome.released or outcome.rejected:
        log.info(
            "EMR held records: %d released, %d still held, %d rejected",
            outcome.released,
            outcome.held,
            outcome.rejected,
        )
    return outcome


def _release_one(pk: int, resolve) -> str | None:
    with transaction.atomic():
        row = HeldRecord.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if row is None or row.state != HeldRecord.State.HELD:
            return None
        rt = record_types().get(row.record_type)
        mapped = rt.map(row.record, resolve)
        if mapped.errors:  # valid when it came: a spec change since, or a mapping to a code the set refuses
            row.state, row.problems = HeldRecord.State.REJECTED, mapped.errors + mapped.unmapped
            row.save(update_fields=["state", "problems", "updated_at"])
            return row.state
        if mapped.unmapped:
            if mapped.unmapped != row.problems:
                row.problems = mapped.unmapped
                row.save(update_fields=["problems", "updated_at"])
                _set_codes(row, mapped.unmapped)
            return row.state
        try:
            with transaction.atomic():
                result = outbox.enqueue_many([mapped.checked], source=row.source, skip_unchanged=True)[0]
        except PatientConflict as exc:
            row.state = HeldRecord.State.REJECTED
            row.problems = [{**e, "field": rt.intake_path(e["field"])} for e in exc.errors]
            row.save(update_fields=["state", "problems", "updated_at"])
            return row.state
        row.state, row.released_at, row.released_record = (
            HeldRecord.State.RELEASED,
            timezone.now(),
            result.record,
        )
        row.save(update_fields=["state", "released_at", "released_record", "updated_at"])
        row.codes.all().delete()
        return row.state


def release_held_if_dictionaries_changed() -> Released | None:
    """The periodic re-check: when any dictionary row changed since the last look, every held
    record is mapped again (the save hook releases at once; this catches what it could not, e.g.
    a standard department switched back on)."""
    from dictionaries.selectors import version

    current = version()
    seen, _ = cachesafe.cached(lambda: cache.get(DICTIONARY_VERSION_SEEN), what="emr held release")
    if seen == current and current:
        return None
    if not HeldRecord.objects.filter(state=HeldRecord.State.HELD).exists():
        cachesafe.cached(lambda: cache.set(DICTIONARY_VERSION_SEEN, current, None), what="emr held release")
        return None
    outcome = release_held()
    cachesafe.cached(lambda: cache.set(DICTIONARY_VERSION_SEEN, current, None), what="emr held release")
    return outcome
