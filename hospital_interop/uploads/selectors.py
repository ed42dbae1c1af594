"""Reads for the ops dashboard, the record browser, /metrics and the timeliness list.

Reads of patient data are audited here: a record's payload shown in clear, and each search or
export of the record browser (one ``audit.record`` each)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, F, Min, Q
from django.db.models.fields.tuple_lookups import TupleLessThan  # row comparison; no public name in 5.2
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone

from hospital_interop.atrest import SealBroken
from hospital_interop.audit import services as audit
from hospital_interop.cachesafe import cached
from hospital_interop.municipal.specs import load_catalogue

from . import retention
from .models import OPEN_STATES, ArchivedRecord, Attempt, OutboxRecord, State
from .schedules import SWEEP_TASK
from .services import LEASE, SWEEP_HEARTBEAT_KEY, patient_key_of

PAGE_SIZE = 50
# the order of the requirement's list of municipal documents
DOCUMENT_ORDER = ("exam", "lab", "emr_public", "emr_outpatient", "emr_inpatient", "emr_checkup")


def today_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def interface_summary(now: datetime | None = None) -> list[dict]:
    """One row per interface of the catalogue: counts by state, done today, past deadline, oldest pending."""
    now = now or timezone.now()
    since = today_start(now)
    open_rows = (
        OutboxRecord.objects.filter(state__in=OPEN_STATES)
        .values("interface")
        .annotate(
            pending=Count("pk", filter=Q(state=State.PENDING)),
            sending=Count("pk", filter=Q(state=State.SENDING)),
            retry=Count("pk", filter=Q(state=State.RETRY)),
            attention=Count("pk", filter=Q(state=State.ATTENTION)),
            overdue=Count("pk", filter=Q(deadline_at__lt=now)),
            oldest=Min("enqueued_at", filter=Q(state__in=(State.PENDING, State.RETRY, State.SENDING))),
        )
    )
    done_today = dict(
        OutboxRecord.objects.filter(state=State.DONE, accepted_at__gte=since)
        .values("interface")
        .annotate(n=Count("pk"))
        .values_list("interface", "n")
    )
    by_code = {r["interface"]: r for r in open_rows}
    rows = []
    for spec in sorted(
        load_catalogue().interfaces,
        key=lambda s: (
            DOCUMENT_ORDER.index(s.document) if s.document in DOCUMENT_ORDER else len(DOCUMENT_ORDER)
        ),
    ):
        if spec.kind in ("query", "security"):
            continue
        r = by_code.get(spec.code, {})
        oldest = r.get("oldest")
        rows.append(
            {
                "interface": spec.code,
                "name": spec.name,
                "document": spec.document,
                "section": spec.section,
                "pending": r.get("pending", 0),
                "sending": r.get("sending", 0),
                "retry": r.get("retry", 0),
                "attention": r.get("attention", 0),
                "overdue": r.get("overdue", 0),
                "done_today": done_today.get(spec.code, 0),
                "oldest_age_seconds": (now - oldest).total_seconds() if oldest else None,
            }
        )
    return rows


def totals(rows: list[dict]) -> dict:
    keys = ("pending", "sending", "retry", "attention", "overdue", "done_today")
    total = {k: sum(r[k] for r in rows) for k in keys}
    ages = [r["oldest_age_seconds"] for r in rows if r["oldest_age_seconds"] is not None]
    total["oldest_age_seconds"] = max(ages) if ages else None
    return total


def throughput(hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Accepted records per bucket (per minute for the last hour, per hour beyond)."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    trunc = TruncMinute if hours <= 1 else TruncHour
    step = timedelta(minutes=1) if hours <= 1 else timedelta(hours=1)
    counts = dict(
        OutboxRecord.objects.filter(accepted_at__gte=since)
        .annotate(bucket=trunc("accepted_at"))
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    failed = dict(
        Attempt.objects.filter(started_at__gte=since)
        .exclude(outcome="accepted")
        .annotate(bucket=trunc("started_at"))
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    start = timezone.localtime(since).replace(second=0, microsecond=0)
    if step == timedelta(hours=1):
        start = start.replace(minute=0)
    series, t = [], start
    while t <= now:
        series.append({"at": t, "accepted": counts.get(t, 0), "failed": failed.get(t, 0)})
        t += step
    return series


def error_breakdown(limit: int = 20) -> dict:
    """Rows needing attention grouped by platform code, and their field errors grouped by field/rule."""
    by_code = list(
        OutboxRecord.objects.filter(state=State.ATTENTION)
        .values("interface", "last_code")
        .annotate(n=Count("pk"))
        .order_by("-n")[:limit]
    )
    fields: dict[tuple, int] = {}
    for interface, errors in (
        OutboxRecord.objects.filter(state=State.ATTENTION)
        .exclude(last_errors=[])
        .values_list("interface", "last_errors")[:5000]
    ):
        for e in errors or []:
            k = (interface, e.get("field", ""), e.get("rule", ""), e.get("message", ""))
            fields[k] = fields.get(k, 0) + 1
    top = sorted(fields.items(), key=lambda kv: -kv[1])[:limit]
    return {
        "by_code": by_code,
        "by_field": [
            {"interface": k[0], "field": k[1], "rule": k[2], "message": k[3], "n": n} for k, n in top
        ],
    }


@dataclass
class RecordFilter:
    interface: str = ""
    key: str = ""
    patient_hash: str = ""
    state: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None
    overdue: bool = False

    @property
    def criteria(self) -> dict:
        """The filters set, as text (the audit trail records them)."""
        return {k: str(v) for k, v in self.__dict__.items() if v}


COUNT_CAP = 10_000  # the browser counts matches up to this many ("超过 10,000 条" beyond)
JUMP_PAGES = COUNT_CAP // PAGE_SIZE  # pages one can jump to by number (an index range scan each)


def count_records(f: RecordFilter, *, org_code: str = "") -> int:
    """How many rows match, hot and archived, counted up to COUNT_CAP + 1 (a bounded index scan,
    so the page count costs the same on a table of fifty million rows)."""
    n = _filtered(f, org_code)[: COUNT_CAP + 1].count()
    if n <= COUNT_CAP and _may_be_archived(f):
        n += _filtered(f, org_code, ArchivedRecord)[: COUNT_CAP + 1 - n].count()
    return n


def _may_be_archived(f: RecordFilter) -> bool:
    """Can archived rows match? They are all accepted, and were enqueued before ``archive_bound``."""
    if f.overdue or (f.state and f.state != State.DONE):
        return False
    return not (f.date_from and f.date_from >= retention.archive_bound())


def _filtered(f: RecordFilter, org_code: str, model=OutboxRecord):
    qs = model.objects.all()
    if f.interface:
        qs = qs.filter(interface=f.interface)
    if f.key:
        keys = {f.key, f"{org_code}|{f.key}"} if org_code else {f.key}
        qs = qs.filter(business_key__in=keys)
    if f.patient_hash:
        qs = qs.filter(patient_id_hash=f.patient_hash)
    if f.state:
        qs = qs.filter(state=f.state)
    if f.date_from:
        qs = qs.filter(enqueued_at__gte=f.date_from)
    if f.date_to:
        qs = qs.filter(enqueued_at__lt=f.date_to)
    if f.overdue:
        qs = qs.filter(state__in=OPEN_STATES, deadline_at__lt=timezone.now())
    return qs


def search_records(
    f: RecordFilter,
    *,
    org_code: str = "",
    before: tuple | None = None,
    page: int | None = None,
    limit: int = PAGE_SIZE,
    export: bool = False,
):
    """Newest first, keyset-paginated on (enqueued_at, id): every filter is served by an index,
    so a page costs the same at row 50 and at row 1,000,000. ``page`` (1..JUMP_PAGES) jumps to a
    page by number instead (an offset of at most COUNT_CAP rows). Audited as a search
    (``export``: as an export)."""
    return _audited_page(
        f, page_of(f, org_code=org_code, before=before, page=page, limit=limit), limit, export
    )


def page_of(
    f: RecordFilter,
    *,
    org_code: str = "",
    before: tuple | None = None,
    page: int | None = None,
    limit: int = PAGE_SIZE,
) -> list:
    """The rows of a browser page (``limit + 1`` at most: one more says there is a next page),
    hot and archived, newest first; not audited (``search_records`` is what a person's search calls)."""
    tables = [_filtered(f, org_code)]
    if _may_be_archived(f):
        tables.append(_filtered(f, org_code, ArchivedRecord))
    if before:
        at, pk = before
        # (enqueued_at, id) < (at, pk) as a row comparison (the planner reads it at once; the OR of
        # the spelled-out form cost 1.4 ms of planning over 49M archived rows), with the range on
        # enqueued_at that lets every database's index serve it
        after = TupleLessThan((F("enqueued_at"), F("pk")), (at, pk))
        tables = [qs.filter(after, enqueued_at__lte=at) for qs in tables]
    offset = (min(max(page, 1), JUMP_PAGES) - 1) * limit if page and not before else 0
    hot, *archive = (qs.order_by("-enqueued_at", "-pk").only(*LISTED) for qs in tables)
    if not archive:
        return list(hot[offset : offset + limit + 1])
    bound = retention.archive_bound()
    newest = min((t for t in (before[0] if before else None, f.date_to) if t is not None), default=None)
    if newest is not None and newest <= bound:
        # the page is older than the bound (a date range or a keyset page in the archive's years):
        # both tables at once, without asking the hot table alone first
        return _merged(hot, archive[0], limit + 1, offset)
    rows = list(hot[offset : offset + limit + 1])
    # archived rows were all enqueued before the bound: when the hot page ends after it, none of
    # them can be on the page (nor before it), and the archive is not asked (the newest pages,
    # most searches)
    if not (len(rows) > limit and rows[-1].enqueued_at >= bound):
        rows = _merged(hot, archive[0], limit + 1, offset)
    return rows


# the columns a browser page and its CSV export show (templates/uploads/records.html, views.export);
# only these are read: the payload, dependencies, errors and receipt stay on the record page
LISTED = [
    "id",
    "interface",
    "business_key",
    "version",
    "state",
    "patient_display",
    "attempts",
    "last_code",
    "last_message",
    "event_at",
    "enqueued_at",
    "accepted_at",
]


def _merged(hot, archive, n: int, offset: int = 0) -> list:
    """Rows offset..offset+n of both tables together, newest first, in one statement (one round
    trip; each table's part an index scan of at most offset + n rows); archived ones as
    ``ArchivedRecord`` (built once each, from the row, with the payload deferred)."""
    end = offset + n
    hot_sql, hot_params = hot.values_list(*LISTED)[:end].query.sql_with_params()
    arch_sql, arch_params = archive.values_list(*LISTED)[:end].query.sql_with_params()
    sql = (
        f"SELECT * FROM (SELECT 0 AS in_archive, h.* FROM ({hot_sql}) h "
        f"UNION ALL SELECT 1 AS in_archive, a.* FROM ({arch_sql}) a) u "
        f"ORDER BY u.enqueued_at DESC, u.id DESC LIMIT {int(n)} OFFSET {int(offset)}"
    )
    conn = connections[hot.db]
    with conn.cursor() as cursor:
        cursor.execute(sql, [*hot_params, *arch_params])
        fetched = cursor.fetchall()
    converters = _converters(conn)
    rows = []
    for in_archive, *values in fetched:
        for i, col, convert in converters:
            for c in convert:
                values[i] = c(values[i], col, conn)
        rows.append((ArchivedRecord if in_archive else OutboxRecord).from_db(hot.db, LISTED, values))
    return rows


_CONVERTERS: dict[str, list[tuple]] = {}  # per database alias: the same for every page


def _converters(conn) -> list[tuple]:
    """(column, [converters]) the ORM would apply to the listed columns (dates on SQLite)."""
    if conn.alias not in _CONVERTERS:
        out = []
        for i, name in enumerate(LISTED):
            col = OutboxRecord._meta.get_field(name).get_col("u")
            convert = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
            if convert:
                out.append((i, col, convert))
        _CONVERTERS[conn.alias] = out
    return _CONVERTERS[conn.alias]


def _audited_page(f: RecordFilter, rows: list, limit: int, export: bool):
    has_more = len(rows) > limit
    audit.record(
        audit.Action.EXPORT if export else audit.Action.SEARCH,
        "uploads.OutboxRecord",
        # the browser's patient filter is the outbox's own digest of the ID number (Patient.id_hash)
        detail={"filter": f.criteria, "found": min(len(rows), limit), "more": has_more},
    )
    return rows[:limit], has_more


def record_detail(pk: int, *, with_payload: bool = False) -> dict:
    """A row with its attempts, dependencies and versions; with ``with_payload`` its payload opened
    (``payload`` None without it; ``payload_problem`` says why a payload does not open). Opening a
    payload for a person is audited."""
    try:
        qs = OutboxRecord.objects.all() if with_payload else OutboxRecord.objects.defer("payload")
        record = qs.get(pk=pk)
    except OutboxRecord.DoesNotExist:  # an archived row keeps its id
        qs = ArchivedRecord.objects.all() if with_payload else ArchivedRecord.objects.defer("payload")
        record = qs.filter(pk=pk).first()
        if record is None:
            raise
    payload, problem = None, ""
    if with_payload:
        try:
            payload = record.payload
        except SealBroken as broken:
            problem = broken.message
        if payload is None and not problem:
            problem = retention.DROPPED_NOTE
        elif payload is not None:
            audit.record(
                audit.Action.VIEW,
                "uploads.OutboxRecord",
                record.pk,
                patient=patient_key_of(record.interface, payload),
                detail={"what": "上传内容（明文）", "interface": record.interface},
            )
    return {
        "record": record,
        "payload": payload,
        "payload_problem": problem,
        "attempts": list(record.attempt_log.all()[:100]),
        "dependencies": [] if record.archived else list(record.dependencies.all()),
        "versions": sorted(
            (
                v
                for model in (OutboxRecord, ArchivedRecord)
                for v in model.objects.filter(
                    interface=record.interface, business_key=record.business_key
                ).only("pk", "version", "state", "enqueued_at", "accepted_at")
            ),
            key=lambda v: -v.version,
        ),
    }


def state_counts() -> list[dict]:
    """(interface, state, n) for /metrics."""
    return list(OutboxRecord.objects.values("interface", "state").annotate(n=Count("pk")).order_by())


STARTED = time.time()  # a server that never saw a sweep counts its lateness from its own start
LATE_AFTER_INTERVALS = 2


def sweep_interval() -> float:
    """The sweep's interval as scheduled (django-celery-beat, editable in the admin), else the setting."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=SWEEP_TASK).select_related("interval").first()
    if task is not None and task.interval is not None:
        return task.interval.schedule.run_every.total_seconds()
    return float(settings.DELIVERY_SWEEP_SECONDS)


def due_unclaimed(now: datetime | None = None) -> list[dict]:
    """Per interface: rows due and not taken by a worker, and how long the longest has been due
    (a row backing off is not due; one stranded for want of a sweep or a worker is)."""
    now = now or timezone.now()
    rows = (
        OutboxRecord.objects.filter(LEASE.due(now))
        .values("interface")
        .annotate(n=Count("pk"), since=Min("next_attempt_at"))
        .order_by("interface")
    )
    return [
        {"interface": r["interface"], "n": r["n"], "oldest_due_seconds": (now - r["since"]).total_seconds()}
        for r in rows
    ]


def sweep_status(now: datetime | None = None) -> dict:
    """When the sweep last ran, whether it is late (more than two intervals without it: beat or
    every worker is down), and how many rows are due but unclaimed."""
    now = now or timezone.now()
    interval = sweep_interval()
    last, cache_ok = cached(lambda: cache.get(SWEEP_HEARTBEAT_KEY), what="sweep heartbeat")
    age = now.timestamp() - (last if last is not None else STARTED)
    due = due_unclaimed(now)
    late = age > LATE_AFTER_INTERVALS * interval
    return {
        "ok": not late,
        "last_run": datetime.fromtimestamp(last, tz=UTC).isoformat() if last is not None else None,
        "last_run_timestamp": last,
        "last_run_at": datetime.fromtimestamp(last, tz=UTC) if last is not None else None,
        "age_seconds": round(age, 1),
        "interval_seconds": interval,
        "late": late,
        "heartbeat_readable": cache_ok,
        "due_unclaimed": sum(r["n"] for r in due),
        "oldest_due_seconds": round(max((r["oldest_due_seconds"] for r in due), default=0.0), 1),
        "by_interface": due,
    }
