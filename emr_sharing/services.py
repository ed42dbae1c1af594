"""Writes of the EMR intake: map, validate and hand records to the delivery engine (the outbox).

Every path in — the REST API (single and bulk), the backfill command and the HIS view puller —
ends here, so they share one behaviour:

* a record is mapped (``mapping.py``) and validated against its interface spec; any error
  rejects it with ``{field, rule, message}`` in intake names and writes nothing;
* idempotent by business key: a record identical to the latest stored version of its key is
  *unchanged* (nothing written); a changed one becomes a new version, and the outbox
  supersedes the older unsent one;
* ordering (children wait for their parent's acceptance), retries and delivery are the outbox's
  (``hospital_interop.uploads.services.enqueue``); nothing is sent inside a request.

``submit_many`` is all-or-nothing: it validates every record first and writes them in one
transaction only if all are valid.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Max

from hospital_interop.uploads import services as outbox
from hospital_interop.uploads.models import OutboxRecord

from .mapping import RecordType

LOCK_NAMESPACE = 0x454D52  # "EMR": advisory locks of the intake, one per key bucket
LOCK_BUCKETS = 128  # a bulk transaction holds at most this many advisory locks


class RecordInvalid(Exception):
    """One or more records break their spec; ``errors`` = [{field, rule, message, (line)}]."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s): " + "; ".join(f"{e['field']} {e['rule']}" for e in errors[:5]))


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
    """One record from the API: RecordInvalid, or stored (a new version) or unchanged."""
    prepared, errors = prepare(record_type, record)
    if errors:
        raise RecordInvalid(errors)
    return store([prepared], source=source)[0]


def submit_many(items, *, source: str, wake: bool = True, errors: list[dict] | None = None) -> list[Submission]:
    """All-or-nothing: ``items`` = [(record_type, record, line)]. RecordInvalid (every error of
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
        raise RecordInvalid(sorted(errors, key=lambda e: e.get("line") or 0))
    return store(prepared, source=source, wake=wake)


def store(prepared: list[Prepared], *, source: str, wake: bool = True) -> list[Submission]:
    """Write prepared records in one transaction, skipping those identical to their latest version.

    wake: let the outbox wake workers after the commit (it sends one message per claim batch of
    the transaction's new rows); False leaves them to the periodic sweep.
    """
    results: list[Submission] = []
    with transaction.atomic():
        _lock({p.key for p in prepared})
        latest = _latest_versions(prepared)
        for p in prepared:
            code = p.record_type.interface
            current = latest.get((code, p.key))
            if current is not None and current.payload == p.payload:
                results.append(Submission(p.record_type, p.key, current, False, p.line))
                continue
            record = outbox.enqueue(code, p.payload, source=source, wake_worker=wake)
            latest[(code, p.key)] = record
            results.append(Submission(p.record_type, p.key, record, True, p.line))
    return results


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


def _lock(keys: set[str]) -> None:
    """Serialise writers of the same keys (PostgreSQL advisory transaction locks, taken in one
    global order so that two bulk writers cannot deadlock). SQLite serialises writers anyway."""
    if connection.vendor != "postgresql" or not keys:
        return
    buckets = sorted({zlib.crc32(k.encode("utf-8")) % LOCK_BUCKETS for k in keys})
    with connection.cursor() as cursor:
        for bucket in buckets:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, bucket])
