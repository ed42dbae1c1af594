"""Writes of the audit trail: ``record`` / ``record_many`` (the one call each read or write of
patient data makes) and ``purge`` (retention).

Call ``record`` where the read or write happens (the service or selector), last in the
transaction of a write: an append locks the chain head until the transaction ends, so taking other
locks after it would only make waits longer.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.logmask import mask_name, mask_text
from hospital_interop.patients.models import id_key

from . import chain
from .context import Actor, current_actor
from .models import Action, AuditRecord, ChainHead

__all__ = [
    "Action",
    "ChainBroken",
    "Event",
    "changed_fields",
    "current_actor",
    "patient_digest",
    "purge",
    "record",
    "record_many",
]

MIN_RETENTION_MONTHS = 6  # GB/T 22239-2019 8.1.4.3: audit records kept at least six months
_DIGEST = re.compile(r"^[0-9a-f]{1,64}$")


def patient_digest(id_no: str, id_type: str = "01") -> str:
    """The patient's non-reversible key (``patients.models.id_key``): what an entry stores, and
    what the audit page computes from an ID number typed into its form. "" without a number."""
    id_no = (id_no or "").strip().upper()
    return id_key(id_type or "01", id_no) if id_no else ""


@dataclass(frozen=True)
class Event:
    action: str  # Action
    object_type: str  # "app_label.Model" or "platform.<service code>"
    object_id: str = ""
    patient: str = ""  # patient_digest(...) or a stored id_key; never an ID number
    changes: dict | None = None  # {field path: [before, after]}, identity values masked
    detail: dict | None = None  # small facts (counts, filters, reason); never identity values


class ChainBroken(Exception):
    """The trail does not verify where an operation needs it to (its problems in ``report``)."""

    def __init__(self, report: chain.Report):
        self.report = report
        super().__init__("；".join(p.message for p in report.problems[:5]))


def record(
    action: str,
    object_type: str,
    object_id: str | int = "",
    *,
    patient: str = "",
    changes: dict | None = None,
    detail: dict | None = None,
    actor: Actor | None = None,
) -> AuditRecord:
    """Append one entry for the current actor (``context.current_actor``) unless ``actor`` is given."""
    event = Event(action, object_type, str(object_id), patient, changes, detail)
    return record_many([event], actor=actor)[0]


MAX_TEXT = 500  # a value typed into a search box is recorded, not an essay


def _text(value: str) -> str:
    """A string as an entry keeps it: anything shaped like an ID or mobile number masked (the last
    guard against a clear identity value reaching the trail), control characters dropped (a NUL
    would fail the write), at most MAX_TEXT characters."""
    cleaned = "".join(ch for ch in value if ch >= " " or ch in "\t\n")
    return mask_text(cleaned[:MAX_TEXT])


def _scrubbed(value):
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {str(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v) for v in value]
    return value


def _values(event: Event, actor: Actor, seq: int, at: datetime) -> dict:
    if event.action not in Action.values:
        raise ValueError(f"unknown audit action {event.action!r}")
    if event.patient and not _DIGEST.match(event.patient):
        raise ValueError(
            "an audit entry's patient must be a digest (patient_digest), never an identity value"
        )
    return {
        "seq": seq,
        "at": at,
        "actor_type": actor.type,
        "user_id": actor.user_id,
        "username": actor.username[:150],
        "roles": actor.roles[:200],
        "ip": actor.ip,
        "route": actor.route[:100],
        "action": event.action,
        "object_type": event.object_type[:64],
        "object_id": _text(str(event.object_id))[:128],
        "patient": event.patient,
        "changes": chain.normalised(_scrubbed(event.changes or {})),
        "detail": chain.normalised(_scrubbed(event.detail or {})),
    }


def record_many(events: Sequence[Event], *, actor: Actor | None = None, now=None) -> list[AuditRecord]:
    """Append the events in order, in one transaction holding the chain head's row lock, so that
    no other process appends in between (``now``: the entries' time, for imports and tests).

    On PostgreSQL the append is first tried as ONE statement against the head this process wrote
    or read last (``_append`` with ``on_head``): it moves the head only if the head is still exactly that
    one, and inserts the entries only if it moved. Any other process's append in between (or a
    purge, or a rolled-back transaction) makes it change nothing, and the append is done again
    under the head's row lock, as on every other database. Either way an entry's MAC links to the
    head it was appended to."""
    if not events:
        return []
    actor = actor or current_actor()
    secret = chain.key()
    cached = _last_head.get(_head_cache_key())
    if cached is not None and connection.vendor == "postgresql":
        rows = _append(secret, cached, events, actor, now, on_head=True)
        if rows is not None:
            return rows
    with transaction.atomic():
        head = _locked_head()
        return _append(secret, head, events, actor, now, on_head=False)


@dataclass(frozen=True)
class _Head:
    seq: int
    mac: str
    anchor_seq: int
    anchor_mac: str


# the head as this process last left or saw it, per database: the guess the one-statement append
# tries first (a stale guess costs one statement that changes nothing)
_last_head: dict[tuple[str, str], _Head] = {}


def _head_cache_key() -> tuple[str, str]:
    return (connection.alias, str(connection.settings_dict.get("NAME")))


# an entry's columns as the one-statement append writes them: its MAC'd content and its links
_FIELDS = (*chain.CONTENT_FIELDS, "prev_mac", "mac")
_CASTS = {"seq": "bigint", "at": "timestamptz", "user_id": "bigint", "changes": "jsonb", "detail": "jsonb"}
_ROW_SQL = "(" + ", ".join(f"%s::{_CASTS.get(name, 'text')}" for name in _FIELDS) + ")"


def _append(secret, head, events, actor, now, *, on_head: bool) -> list[AuditRecord] | None:
    """Chain ``events`` onto ``head`` and write them; ``on_head``: in one statement that writes
    nothing (and returns None) unless the stored head is still ``head``; else ``head`` is the
    locked ChainHead row."""
    at = now or timezone.now()
    rows, seq, prev = [], head.seq, head.mac
    for event in events:
        seq += 1
        values = _values(event, actor, seq, at)
        mac = chain.entry_mac(secret, prev, values)
        rows.append(AuditRecord(**values, prev_mac=prev, mac=mac))
        prev = mac
    new_head_mac = chain.head_mac(secret, seq, prev, head.anchor_seq, head.anchor_mac)
    key = _head_cache_key()
    if not on_head:
        AuditRecord.objects.bulk_create(rows)
        head.seq, head.mac, head.head_mac = seq, prev, new_head_mac
        head.save(update_fields=["seq", "mac", "head_mac"])
    else:
        params = [seq, prev, new_head_mac, head.seq, head.mac, head.anchor_seq, head.anchor_mac]
        for row in rows:
            for name in _FIELDS:
                value = getattr(row, name)
                params.append(
                    json.dumps(value, ensure_ascii=False) if name in ("changes", "detail") else value
                )
        head_table, table = ChainHead._meta.db_table, AuditRecord._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH moved AS (UPDATE {head_table} SET seq = %s, mac = %s, head_mac = %s "
                "WHERE id = 1 AND seq = %s AND mac = %s AND anchor_seq = %s AND anchor_mac = %s RETURNING id) "
                f"INSERT INTO {table} ({', '.join(_FIELDS)}) "
                f"SELECT v.* FROM (VALUES {', '.join([_ROW_SQL] * len(rows))}) AS v, moved RETURNING id",
                params,
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        if not ids:
            _last_head.pop(key, None)
            return None
        for row, pk in zip(rows, ids, strict=True):
            row.pk = pk
    _last_head[key] = _Head(seq, prev, head.anchor_seq, head.anchor_mac)
    return rows


def _locked_head() -> ChainHead:
    """The head row, locked until the transaction ends. Created (by the migration, or here on an
    empty trail) before the first entry; a trail with entries but no head is damaged, and nothing
    is appended to it."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        if AuditRecord.objects.exists():
            raise ChainBroken(
                chain.Report(
                    problems=[chain.Problem(None, None, "审计链头缺失（被删除）：审计日志不能继续写入")]
                )
            )
        ChainHead.objects.get_or_create(pk=1)
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


# --------------------------------------------------------------------------- before / after


MASKS: dict[str, Callable[[str], str]] = {
    "id": lambda v: v[:6] + "*" * max(len(v) - 10, 0) + v[-4:] if len(v) > 10 else "*" * len(v),
    "name": mask_name,
    "phone": lambda v: v[:3] + "*" * max(len(v) - 7, 0) + v[-4:] if len(v) > 7 else "*" * len(v),
    "hidden": lambda v: "*" * min(len(v), 8) if v else v,
}


def _masked(value, kind: str | None):
    if value is None or (isinstance(value, (bool, int, float)) and kind is None):
        return value
    if isinstance(value, (dict, list)):
        return _scrubbed(value) if kind is None else MASKS["hidden"]("x" * 8)
    return MASKS[kind](str(value)) if kind else _text(str(value))


def _leaves(value, path: str):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


_MISSING = object()


def changed_fields(
    before: dict, after: dict, *, identity: Callable[[str], str | None] = lambda path: None
) -> dict:
    """{path: [before, after]} for every leaf that differs between the two documents; a value
    whose path ``identity`` names ("id", "name", "phone", "hidden") is masked that way, any other
    string has ID-like and mobile-like numbers masked."""
    old, new = dict(_leaves(before, "")), dict(_leaves(after, ""))
    out = {}
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, _MISSING), new.get(path, _MISSING)
        if a == b:
            continue
        kind = identity(path)
        out[path] = [None if v is _MISSING else _masked(v, kind) for v in (a, b)]
    return out


# --------------------------------------------------------------------------- retention


def retention_months() -> int:
    return max(MIN_RETENTION_MONTHS, int(settings.AUDIT.get("RETENTION_MONTHS") or 0))


def retention_cutoff(now: datetime | None = None) -> datetime:
    """The oldest moment an entry must still be kept from: local midnight, ``retention_months``
    calendar months before today."""
    today = timezone.localdate(now or timezone.now())
    months = today.year * 12 + today.month - 1 - retention_months()
    year, month = divmod(months, 12)
    month += 1
    day = min(today.day, calendar.monthrange(year, month)[1])
    return timezone.make_aware(datetime.combine(date(year, month, day), time.min))


@dataclass(frozen=True)
class Purged:
    deleted: int
    anchor_seq: int


def purge(before: datetime, *, now: datetime | None = None) -> Purged:
    """Delete the entries written before ``before`` and re-anchor the chain on the last one
    deleted; refused (InvalidInput, nothing deleted) when ``before`` is inside the retention
    period, and (ChainBroken) when the entries to delete do not verify: tampered entries are
    evidence and are never purged. The purge itself is the next entry of the chain."""
    cutoff = retention_cutoff(now)
    if before > cutoff:
        raise InvalidInput(
            [
                field_error(
                    "before",
                    "retention",
                    f"审计记录至少保留 {retention_months()} 个月：只能清理 {cutoff:%Y-%m-%d} 之前的记录",
                )
            ]
        )
    secret = chain.key()
    with transaction.atomic():
        head = _locked_head()
        young = (
            AuditRecord.objects.filter(seq__gt=head.anchor_seq, at__gte=before)
            .order_by("seq")
            .values_list("seq", flat=True)
            .first()
        )
        last = head.seq if young is None else young - 1
        if last <= head.anchor_seq:
            return Purged(0, head.anchor_seq)
        end = min(last + 1, head.seq)  # the first entry kept must still link to the new anchor
        checked = chain.Report(problems=[])
        if not chain.head_ok(secret, head):
            checked.problems.append(chain.Problem(None, None, "审计链头被修改（链头 MAC 不符）"))
        rows = AuditRecord.objects.filter(seq__gt=head.anchor_seq, seq__lte=end).order_by("seq")
        chain.walk(
            secret,
            head.anchor_seq,
            head.anchor_mac,
            rows.values("pk", "prev_mac", "mac", *chain.CONTENT_FIELDS).iterator(chunk_size=2000),
            checked,
        )
        if checked.last != end:
            checked.problems.append(chain.Problem(end, None, f"第 {end} 号审计记录缺失（已被删除）"))
        if not checked.ok:
            raise ChainBroken(checked)
        anchor_mac = AuditRecord.objects.get(seq=last).mac
        deleted, _ = AuditRecord.objects.filter(seq__lte=last).delete()
        head.anchor_seq, head.anchor_mac = last, anchor_mac
        head.head_mac = chain.head_mac(secret, head.seq, head.mac, head.anchor_seq, head.anchor_mac)
        head.save(update_fields=["anchor_seq", "anchor_mac", "head_mac"])
        record(
            Action.PURGE,
            "audit.AuditRecord",
            f"{last - deleted + 1}-{last}",
            detail={"deleted": deleted, "before": before.isoformat(), "anchor": last},
        )
    return Purged(deleted, last)
