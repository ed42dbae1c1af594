"""Writes of the EMR intake: map, validate and hand records to the delivery engine (the outbox).

Every path in — the REST API (single and bulk), the backfill command and the HIS view puller —
ends here, so they share one behaviour:

* a record is mapped (``mapping.py``) and validated against its interface spec; any error
  rejects it with ``{field, rule, message}`` in intake names and writes nothing;
* idempotent by business key: a record identical to the latest stored version of its key is
  *unchanged* (nothing written); a changed one becomes a new version, and the outbox
  supersedes the older unsent one;
* a record naming a visit, stay or order that belongs to another patient raises
  ``PatientConflict`` (409; ``rejected`` lists those records with their errors) and nothing of the
  batch is written;
* ordering (children wait for their parent's acceptance), retries and delivery are the outbox's
  (``hospital_interop.uploads.services.enqueue``); nothing is sent inside a request.

``submit_many`` is all-or-nothing: it validates every record first and writes them in one
transaction only if all are valid.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max

from hospital_interop.errors import InvalidInput
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord

from .mapping import RecordType


@dataclass
class Prepared:
    """A mapped, validated record, ready to store."""

    record_type: RecordType
    payload: dict
    key: str
    line: int | None = None


@dataclass
class Submission:
    record_type: RecordType
    key: str
    record: OutboxRecord  # the new version, or the latest one when unchanged
    created: bool  # False: identical to the latest version, nothing written
    line: int | None = None
    extra: dict = field(default_factory=dict)


def prepare(record_type: RecordType, record, *, line: int | None = None) -> tuple[Prepared | None, list[dict]]:
    payload, errors = record_type.prepare(record)
    if errors:
        if line is not None:
            errors = [{"line": line, **e} for e in errors]
        return None, errors
    return Prepared(record_type, payload, record_type.business_key(payload), line), []


def submit(record_type: RecordType, record, *, source: str) -> Submission:
    """One record from the API: InvalidInput, or stored (a new version) or unchanged."""
    prepared, errors = prepare(record_type, record)
    if errors:
        raise InvalidInput(errors)
    return store([prepared], source=source)[0]


def submit_many(items, *, source: str, wake: bool = True, errors: list[dict] | None = None) -> list[Submission]:
    """All-or-nothing: ``items`` = [(record_type, record, line)]. InvalidInput (every error of
    every line, plus the given ``errors`` of lines that could not even be read; nothing written)
    or every record stored/unchanged, in one transaction."""
    prepared, errors = [], list(errors or [])
    for record_type, record, line in items:
        p, errs = prepare(record_type, record, line=line)
        if errs:
            errors += errs
        else:
            prepared.append(p)
    if errors:
        raise InvalidInput(sorted(errors, key=lambda e: e.get("line") or 0))
    return store(prepared, source=source, wake=wake)


def store(prepared: list[Prepared], *, source: str, wake: bool = True) -> list[Submission]:
    """Write prepared records in one transaction, skipping those identical to their latest version.

    wake: let the outbox wake workers after the commit (it sends one message per claim batch of
    the transaction's new rows); False leaves them to the periodic sweep.
    """
    results: list[Submission | None] = []
    fresh: list[tuple[int, Prepared]] = []
    with transaction.atomic():
        outbox.lock_keys({(p.record_type.interface, p.key) for p in prepared})
        latest = _latest_versions(prepared)
        newest_payload = {pair: row.payload for pair, row in latest.items()}
        changed: set[tuple[str, str]] = set()
        for p in prepared:
            pair = (p.record_type.interface, p.key)
            if newest_payload.get(pair, _MISSING) == p.payload:  # identical to the latest version
                stored = None if pair in changed else latest[pair]  # None: that version is in this batch
                results.append(Submission(p.record_type, p.key, stored, False, p.line))
                continue
            newest_payload[pair] = p.payload
            changed.add(pair)
            fresh.append((len(results), p))
            results.append(None)
        try:
            records = outbox.enqueue_many([outbox.Item(p.record_type.interface, p.payload) for _, p in fresh],
                                          source=source, wake_worker=wake)
        except PatientConflict as exc:  # in intake terms: each conflicting record and its line
            def in_intake_terms(error: dict) -> dict:
                p = fresh[error["item"]][1]
                return {**({"line": p.line} if p.line is not None else {}),
                        **{k: v for k, v in error.items() if k != "item"},
                        "field": p.record_type.intake_path(error["field"])}

            exc.rejected = [(fresh[i][1], [in_intake_terms(e) for e in exc.errors if e.get("item") == i])
                            for i in sorted(exc.items)]
            exc.errors = [in_intake_terms(e) for e in exc.errors]
            raise
    for (i, p), record in zip(fresh, records, strict=True):
        results[i] = Submission(p.record_type, p.key, record, True, p.line)
        latest[(p.record_type.interface, p.key)] = record
    for i, s in enumerate(results):  # identical to a version stored earlier in this same batch
        if s.record is None:
            results[i] = Submission(s.record_type, s.key, latest[(s.record_type.interface, s.key)], False, s.line)
    return results


_MISSING = object()


def _latest_versions(prepared: list[Prepared]) -> dict[tuple[str, str], OutboxRecord]:
    """(interface, key) -> latest stored version, in two queries per interface."""
    keys: dict[str, set[str]] = defaultdict(set)
    for p in prepared:
        keys[p.record_type.interface].add(p.key)
    out = {}
    for code, wanted in keys.items():
        top = (OutboxRecord.objects.filter(interface=code, business_key__in=wanted)
               .values("business_key").annotate(v=Max("version")))
        pairs = {(r["business_key"], r["v"]) for r in top}
        if not pairs:
            continue
        rows = OutboxRecord.objects.filter(interface=code, business_key__in={k for k, _ in pairs},
                                           version__in={v for _, v in pairs})
        for row in rows:
            if (row.business_key, row.version) in pairs:
                out[(code, row.business_key)] = row
    return out
