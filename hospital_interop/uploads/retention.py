"""Retention of the outbox (docs/retention.md): accepted rows leave the hot table for an archive.

The hot table (``OutboxRecord``) is what delivery claims, sweeps and counts; the archive
(``ArchivedRecord``, ``ArchivedAttempt``) holds rows the platform accepted more than
``RETENTION["ARCHIVE_AFTER_DAYS"]`` ago (an interface's ``InterfacePolicy.archive_after_days``
says otherwise), with the same columns and ids, the payload kept or dropped per the interface's
``archive_payload``. Archived rows older than the legal retention period are deleted.

What the move never does, so that delivery is never held up and nothing is lost:

* it takes only accepted rows (``done``, a terminal state: no worker claims, sends or changes
  them) and never a row of a key that still has an open row (pending, sending, retry, attention):
  the delivery engine's "newer version" checks only ever look at rows of keys in flight;
* rows are picked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): a row some transaction holds is
  left for the next run, never waited for; batches are small and each is its own transaction;
* it never takes a row of a key that has a data-quality finding (``quality.QcFinding`` points to
  hot rows); a finding for an archived key brings the key back first (``restore_key``).

Reads that must see archived rows go through this module: a key's highest version (enqueue),
"is this parent accepted" (ordering), "was this report ever sent" (voids), the record browser and
a record's page (``selectors``), "is this the accepted latest version" (fix and re-drive). Each
reads the hot table first and the archive second (or both in one statement): a row moving between
the two reads is then seen in one of them, never in neither.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from .models import OPEN_STATES, ArchivedAttempt, ArchivedRecord, Attempt, Dependency, OutboxRecord, State

log = logging.getLogger(__name__)

DROPPED_NOTE = "上传内容已按归档策略删除"


def conf() -> dict:
    return settings.RETENTION


def floor() -> timedelta:
    """No row accepted more recently than this is archived, whatever a policy says (so the newest
    rows, which most searches look for, are always in the hot table)."""
    return timedelta(days=conf()["FLOOR_DAYS"])


def archive_bound(now: datetime | None = None) -> datetime:
    """Every archived row was enqueued before this time (enqueued_at <= accepted_at < now - floor)."""
    return (now or timezone.now()) - floor()


def _policies():
    return {p.interface: p for p in apps.get_model("uploads", "InterfacePolicy").objects.all()}


def _age_filter(now: datetime, older_than: timedelta | None) -> Q:
    """Accepted before each interface's cutoff: the policy's days, else the setting; never under
    the floor. ``older_than`` (the command's option) overrides every interface."""
    default = older_than if older_than is not None else timedelta(days=conf()["ARCHIVE_AFTER_DAYS"])
    own = {
        code: timedelta(days=p.archive_after_days)
        for code, p in _policies().items()
        if p.archive_after_days is not None and older_than is None
    }

    def before(age):
        cut = now - max(age, floor())
        # enqueued_at <= accepted_at: the bound on enqueued_at lets the (state, enqueued_at) index serve
        return Q(accepted_at__lt=cut, enqueued_at__lt=cut)

    match = before(default) & ~Q(interface__in=list(own)) if own else before(default)
    for code, age in own.items():
        match |= Q(interface=code) & before(age)
    return match


def candidates(now: datetime, older_than: timedelta | None = None):
    """Rows the archive may take now (see the module's docstring for why each condition)."""
    finding = apps.get_model("quality", "QcFinding")
    open_same_key = OutboxRecord.objects.filter(
        interface=OuterRef("interface"), business_key=OuterRef("business_key"), state__in=OPEN_STATES
    )
    on_finding = finding.objects.filter(
        Q(interface=OuterRef("interface"), business_key=OuterRef("business_key"))
        | Q(reply_record=OuterRef("pk"))
    )
    qs = (
        OutboxRecord.objects.filter(_age_filter(now, older_than), state=State.DONE)
        .exclude(Exists(open_same_key))
        .exclude(Exists(on_finding))
    )
    for rel in _links()[1]:
        qs = qs.exclude(Exists(rel.related_model._base_manager.filter(**{rel.field.name: OuterRef("pk")})))
    return qs


def _links() -> tuple[list[tuple[str, str]], list]:
    """Other tables' foreign keys to outbox rows, besides attempts and dependencies (moved or
    dropped with the row): (table, column) of those whose model says ``SET_NULL`` (a lab report's
    upload record, an exam's, a released EMR record's: the model copes with the row going, and
    the link is cleared as Django's delete would), and the relations that must keep their row
    (any other ``on_delete``): a row they point to is not archived."""
    cleared, kept = [], []
    for rel in OutboxRecord._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and rel.one_to_many) or rel.related_model in (Attempt, Dependency):
            continue
        if rel.on_delete is models.SET_NULL:
            cleared.append((rel.related_model._meta.db_table, rel.field.column))
        else:
            kept.append(rel)
    return cleared, kept


def _columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _in(ids: list[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _move(ids: list[int], drop: list[str], now: datetime) -> tuple[int, int]:
    """Move these hot rows (locked by the caller) and their attempts to the archive; their
    dependency rows go (a done row waits for nothing; ``waits_for`` on the row keeps what it
    waited for). Returns (records, attempts) moved."""
    hot, arch = _q(OutboxRecord._meta.db_table), _q(ArchivedRecord._meta.db_table)
    att, aatt = _q(Attempt._meta.db_table), _q(ArchivedAttempt._meta.db_table)
    dep = _q(Dependency._meta.db_table)
    cols = _columns(OutboxRecord)
    names = ", ".join(_q(c) for c in cols)
    picked = ", ".join(
        f"CASE WHEN {_q('interface')} IN ({_in(drop)}) THEN NULL ELSE {_q(c)} END"
        if c == "payload" and drop
        else _q(c)
        for c in cols
    )
    acols = ", ".join(_q(c) for c in _columns(Attempt))
    with connection.cursor() as cur:
        for table, column in _links()[0]:
            cur.execute(f"UPDATE {_q(table)} SET {_q(column)} = NULL WHERE {_q(column)} IN ({_in(ids)})", ids)
        if connection.vendor == "postgresql":
            # one statement, one round trip: the rows deleted are the rows inserted
            cur.execute(
                f"""WITH moved AS (DELETE FROM {hot} WHERE id = ANY(%s) RETURNING *),
                  ins AS (INSERT INTO {arch} ({names}, archived_at) SELECT {picked}, %s FROM moved RETURNING 1),
                  gone AS (DELETE FROM {att} WHERE record_id = ANY(%s) RETURNING *),
                  ains AS (INSERT INTO {aatt} ({acols}) SELECT {acols} FROM gone RETURNING 1),
                  deps AS (DELETE FROM {dep} WHERE record_id = ANY(%s) RETURNING 1)
                SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ains), (SELECT count(*) FROM deps)""",
                [ids, *drop, now, ids, ids],
            )
            records, attempts, _ = cur.fetchone()
            return records, attempts
        cur.execute(
            f"INSERT INTO {arch} ({names}, archived_at) SELECT {picked}, %s FROM {hot} WHERE id IN ({_in(ids)})",
            [*drop, now, *ids],
        )
        records = cur.rowcount
        cur.execute(
            f"INSERT INTO {aatt} ({acols}) SELECT {acols} FROM {att} WHERE record_id IN ({_in(ids)})", ids
        )
        attempts = cur.rowcount
        cur.execute(f"DELETE FROM {att} WHERE record_id IN ({_in(ids)})", ids)
        cur.execute(f"DELETE FROM {dep} WHERE record_id IN ({_in(ids)})", ids)
        cur.execute(f"DELETE FROM {hot} WHERE id IN ({_in(ids)})", ids)
        return records, attempts


@dataclass
class Moved:
    records: int = 0
    attempts: int = 0
    purged: int = 0
    batches: int = 0
    seconds: float = 0.0
    left: bool = False  # stopped by max_seconds / max_batches with rows still to move
    by_interface: dict[str, int] = field(default_factory=dict)


def archive_batch(
    now: datetime | None = None,
    *,
    batch: int | None = None,
    older_than: timedelta | None = None,
    since: datetime | None = None,
) -> tuple[int, int, datetime | None]:
    """Move one batch (its own transaction), oldest first: (records, attempts, the last moved row's
    enqueued_at); (0, 0, None) when none is left. ``since``: the previous batch's last time, so a
    run walks the index forward instead of scanning again past the entries it just deleted."""
    now = now or timezone.now()
    batch = batch or conf()["BATCH"]
    drop = sorted(code for code, p in _policies().items() if not p.archive_payload)
    rows = candidates(now, older_than)
    if since is not None:
        rows = rows.filter(enqueued_at__gte=since)
    with transaction.atomic():
        picked = list(
            rows.order_by("enqueued_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "enqueued_at")[:batch]
        )
        if not picked:
            return 0, 0, None
        records, attempts = _move([pk for pk, _ in picked], drop, now)
        return records, attempts, picked[-1][1]


def purge_batch(now: datetime | None = None, *, batch: int | None = None) -> int:
    """Delete one batch of archived rows (and their attempts) older than the legal retention period."""
    now = now or timezone.now()
    cut = now - timedelta(days=conf()["LEGAL_RETENTION_DAYS"])
    with transaction.atomic():
        ids = list(
            ArchivedRecord.objects.filter(accepted_at__lt=cut)
            .order_by("accepted_at")
            .values_list("pk", flat=True)[: batch or conf()["BATCH"]]
        )
        if not ids:
            return 0
        ArchivedAttempt.objects.filter(record_id__in=ids).delete()
        return ArchivedRecord.objects.filter(pk__in=ids).delete()[1].get(ArchivedRecord._meta.label, 0)


def run(
    now: datetime | None = None,
    *,
    batch: int | None = None,
    older_than: timedelta | None = None,
    max_seconds: float | None = None,
    max_batches: int | None = None,
    progress: Callable[[Moved], None] | None = None,
    pause: float = 0.0,
) -> Moved:
    """Archive until nothing is left (or ``max_seconds`` / ``max_batches``), then purge what is past
    the legal retention period. ``progress`` is called after each batch; ``pause`` seconds between
    batches leave the database to delivery on a busy server."""
    started = time.monotonic()
    now = now or timezone.now()
    done = Moved()

    def out_of_time() -> bool:
        return (max_seconds is not None and time.monotonic() - started >= max_seconds) or (
            max_batches is not None and done.batches >= max_batches
        )

    since = None
    while True:
        if out_of_time():
            done.left = True
            break
        records, attempts, since = archive_batch(now, batch=batch, older_than=older_than, since=since)
        if not records:
            break
        done.records, done.attempts, done.batches = (
            done.records + records,
            done.attempts + attempts,
            done.batches + 1,
        )
        done.seconds = time.monotonic() - started
        if progress:
            progress(done)
        if pause:
            time.sleep(pause)
    while not out_of_time():
        purged = purge_batch(now, batch=batch)
        if not purged:
            break
        done.purged += purged
        done.batches += 1
        if progress:
            progress(done)
    done.seconds = time.monotonic() - started
    log.info(
        "retention: %d records (%d attempts) archived, %d purged in %.1f s",
        done.records,
        done.attempts,
        done.purged,
        done.seconds,
    )
    return done


def pending_count(
    now: datetime | None = None, older_than: timedelta | None = None, cap: int = 10_000_000
) -> int:
    """How many rows the archive would take now (for the command's progress bar), counted up to ``cap``."""
    return candidates(now or timezone.now(), older_than)[:cap].count()


# --- reads over hot and archived rows ------------------------------------------------------------
def latest_versions(code: str, keys: Iterable[str]) -> dict[str, int]:
    """key -> the highest version stored for it, hot or archived (one statement: one snapshot, so a
    row moving to the archive meanwhile is counted once, never missed)."""
    keys = list(keys)
    hot = (
        OutboxRecord.objects.filter(interface=code, business_key__in=keys)
        .values("business_key")
        .annotate(v=Max("version"))
        .values_list("business_key", "v")
        .order_by()
    )
    archived = (
        ArchivedRecord.objects.filter(interface=code, business_key__in=keys)
        .values("business_key")
        .annotate(v=Max("version"))
        .values_list("business_key", "v")
        .order_by()
    )
    latest: dict[str, int] = {}
    for key, v in hot.union(archived, all=True):
        latest[key] = max(v, latest.get(key, 0))
    return latest


def archived_rows(code: str, wanted: set[tuple[str, int]]) -> list[ArchivedRecord]:
    """The archived rows of these (key, version) pairs of one interface."""
    if not wanted:
        return []
    rows = ArchivedRecord.objects.filter(
        interface=code, business_key__in={k for k, _ in wanted}, version__in={v for _, v in wanted}
    )
    return [r for r in rows if (r.business_key, r.version) in wanted]


def accepted_in_archive(interfaces: str | Iterable[str], key: str) -> bool:
    """Has the platform accepted a version of this key that now lies in the archive?"""
    codes = [interfaces] if isinstance(interfaces, str) else list(interfaces)
    return ArchivedRecord.objects.filter(interface__in=codes, business_key=key, state=State.DONE).exists()


def newer_in_archive(record) -> bool:
    return ArchivedRecord.objects.filter(
        interface=record.interface, business_key=record.business_key, version__gt=record.version
    ).exists()


def latest_accepted(pk: int) -> ArchivedRecord | None:
    """The archived row, locked, if it is the accepted latest version of its key (hot or archived)
    and its payload was kept (a dropped one cannot be fixed here), else None."""
    row = ArchivedRecord.objects.select_for_update().filter(pk=pk, state=State.DONE).first()
    if row is None or row.payload_dropped or newer_in_archive(row):
        return None
    newer_hot = OutboxRecord.objects.filter(
        interface=row.interface, business_key=row.business_key, version__gt=row.version
    )
    return None if newer_hot.exists() else row


def restore_key(interface: str, key: str) -> int:
    """Bring every archived row of this key (and its attempts) back to the hot table, inside the
    caller's transaction: a data-quality finding points to hot rows, and ops may fix and re-send
    the record. A payload dropped on archiving comes back empty (noted on the row). Returns the
    rows restored."""
    ids = list(
        ArchivedRecord.objects.select_for_update()
        .filter(interface=interface, business_key=key)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    hot, arch = _q(OutboxRecord._meta.db_table), _q(ArchivedRecord._meta.db_table)
    att, aatt = _q(Attempt._meta.db_table), _q(ArchivedAttempt._meta.db_table)
    cols = _columns(OutboxRecord)
    names = ", ".join(_q(c) for c in cols)
    empty = OutboxRecord._meta.get_field("payload").seal_value({})
    picked = ", ".join(
        f"COALESCE({_q(c)}, %s)"
        if c == "payload"
        else f"CASE WHEN {_q('payload')} IS NULL THEN %s ELSE {_q(c)} END"
        if c == "last_message"
        else _q(c)
        for c in cols
    )
    params = [
        connection.Database.Binary(empty) if c == "payload" else DROPPED_NOTE
        for c in cols
        if c in ("payload", "last_message")
    ]
    acols = ", ".join(_q(c) for c in _columns(Attempt))
    with connection.cursor() as cur:  # raw: the rows keep their times (the ORM would stamp them now)
        cur.execute(
            f"INSERT INTO {hot} ({names}) SELECT {picked} FROM {arch} WHERE id IN ({_in(ids)})",
            [*params, *ids],
        )
        cur.execute(
            f"INSERT INTO {att} ({acols}) SELECT {acols} FROM {aatt} WHERE record_id IN ({_in(ids)})", ids
        )
        cur.execute(f"DELETE FROM {aatt} WHERE record_id IN ({_in(ids)})", ids)
        cur.execute(f"DELETE FROM {arch} WHERE id IN ({_in(ids)})", ids)
    log.info("retention: %d archived rows of %s brought back to the outbox", len(ids), interface)
    return len(ids)
