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

``submit_many`` is all-or-nothing: it validates every record first and writes them in one
transaction only if all are valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction

from hospital_interop.errors import InvalidInput
from hospital_interop.patients.services import PatientConflict
from hospital_interop.uploads import services as outbox

from .mapping import RecordType

if TYPE_CHECKING:
    from hospital_interop.uploads.models import OutboxRecord


@dataclass
class Prepared:
    """A mapped record its interface spec accepts, ready to hand to the outbox."""

    record_type: RecordType
    checked: outbox.Checked
    line: int | None = None

    @property
    def key(self) -> str:
        return self.checked.key


@dataclass
class Submission:
    record_type: RecordType
    key: str
    record: OutboxRecord  # the new version, or the latest one when unchanged
    created: bool  # False: identical to the latest version, nothing written
    line: int | None = None
    extra: dict = field(default_factory=dict)


def prepare(
    record_type: RecordType, record, *, line: int | None = None
) -> tuple[Prepared | None, list[dict]]:
    checked, errors = record_type.prepare(record)
    if errors:
        if line is not None:
            errors = [{"line": line, **e} for e in errors]
        return None, errors
    return Prepared(record_type, checked, line), []


def submit(record_type: RecordType, record, *, source: str) -> Submission:
    """One record from the API: InvalidInput, or stored (a new version) or unchanged."""
    prepared, errors = prepare(record_type, record)
    if errors:
        raise InvalidInput(errors)
    return store([prepared], source=source)[0]


def submit_many(
    items, *, source: str, wake: bool = True, errors: list[dict] | None = None
) -> list[Submission]:
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
    """Hand prepared records to the outbox in one transaction; those identical to the latest
    version of their key are not stored again (``created`` False, ``record`` that version).

    wake: let the outbox wake workers after the commit (it sends one message per claim batch of
    the transaction's new rows); False leaves them to the periodic sweep.
    """
    try:
        with transaction.atomic():
            results = outbox.enqueue_many(
                [p.checked for p in prepared], source=source, wake_worker=wake, skip_unchanged=True
            )
    except PatientConflict as exc:  # in intake terms: each conflicting record and its line

        def in_intake_terms(error: dict) -> dict:
            p = prepared[error["item"]]
            return {
                **({"line": p.line} if p.line is not None else {}),
                **{k: v for k, v in error.items() if k != "item"},
                "field": p.record_type.intake_path(error["field"]),
            }

        exc.rejected = [
            (prepared[i], [in_intake_terms(e) for e in exc.errors if e.get("item") == i])
            for i in sorted(exc.items)
        ]
        exc.errors = [in_intake_terms(e) for e in exc.errors]
        raise
    return [
        Submission(p.record_type, p.key, r.record, r.created, p.line)
        for p, r in zip(prepared, results, strict=True)
    ]
