"""Years of data: the outbox's retention job and the record browser over hot and archived rows,
each beside an anchor measured in the same run (docs/retention.md).

The outbox of a large hospital after years: ``--rows`` rows in all (50,000,000 by default),
generated with ``COPY`` (PostgreSQL generates them, ``COPY … TO STDOUT`` piped into ``COPY … FROM
STDIN``; indexes built after the load). The newest ``--hot-rows`` are in the hot table, everything
older in the archive; the oldest ``--move-rows`` of the hot table are accepted rows past the
archiving age, with one attempt each, for the job to move.

1. The archiving job (``retention.run``, batches of ``--batch`` rows, each its own transaction with
   its safety checks): rows/s, beside PostgreSQL's own bulk move of the same number of rows in one
   statement (``INSERT … SELECT`` from a ``DELETE … RETURNING``, no checks, no batches: the
   anchor). Target: >= 1,000 rows/s (a hospital's 100,000 records of a day in under two minutes).
2. The record browser's searches (``selectors.search_records``, audited as in production: one
   committed audit entry each) over hot and archived rows, each beside a primary-key lookup on the
   archive table (the anchor); also each search's queries alone (``selectors.page_of``) and an
   audit entry alone, so the two parts can be told apart. Target: every search <= 5 x the anchor.

Needs PostgreSQL and Redis; uses its own database (dropped first). Run:
.venv/bin/python benchmarks/retention.py [--rows 50000000] [--hot-rows 1000000] [--move-rows 200000]
[--database interop_bench_retention] [--redis-db 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.delivery import PG, prepare_environment  # noqa: E402

SPAN_DAYS = 3 * 365  # the rows' enqueue times spread over three years, newest now
INTERFACES = [
    "LAB_REPORT_DETAIL",
    "LAB_REPORT_PDF",
    "EXAM_RESULT_SUBMIT",
    "OP_VISIT",
    "OP_REGISTRATION",
    "IP_FRONT_PAGE",
    "IP_PROGRESS_NOTE",
    "OP_ORDER",
]
ORG = "12110000400000000X"


def psql(database: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", f"{PG}/{database}", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def copy_rows(database: str, table: str, columns: list[str], select: str) -> None:
    """``COPY (select) TO STDOUT`` piped into ``COPY table FROM STDIN`` (two psql processes)."""
    out = subprocess.Popen(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/{database}", "-c", f"COPY ({select}) TO STDOUT"],
        stdout=subprocess.PIPE,
    )
    into = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            f"{PG}/{database}",
            "-c",
            f"COPY {table} ({', '.join(columns)}) FROM STDIN",
        ],
        stdin=out.stdout,
        capture_output=True,
        text=True,
    )
    out.stdout.close()
    if out.wait() or into.returncode:
        raise SystemExit(f"COPY into {table} failed: {into.stderr[-2000:]}")


def without_indexes(database: str, table: str) -> list[str]:
    """Drop the table's secondary indexes and unique constraints; returns the statements that
    build them again (a bulk load is far faster into a table with its primary key alone)."""
    rows = psql(
        database,
        f"""SELECT 'ALTER TABLE {table} ADD CONSTRAINT ' || conname || ' ' || pg_get_constraintdef(oid)
            FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype = 'u'""",
    ).split("\n")
    rebuild = [r for r in rows if r]
    for r in rebuild:
        psql(database, f"ALTER TABLE {table} DROP CONSTRAINT {r.split()[5]}")
    indexes = psql(
        database,
        f"""SELECT indexname || '|' || indexdef FROM pg_indexes WHERE tablename = '{table}'
            AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass)""",
    ).split("\n")
    for line in filter(None, indexes):
        name, definition = line.split("|", 1)
        psql(database, f"DROP INDEX {name}")
        rebuild.append(definition)
    return rebuild


def with_model_indexes(database: str, model) -> None:
    """The model's indexes and constraints, any that a stopped run left dropped built again."""
    from django.db import connection

    table = model._meta.db_table
    existing = set(psql(database, f"SELECT indexname FROM pg_indexes WHERE tablename = '{table}'").split())
    with connection.schema_editor() as editor:
        for index in model._meta.indexes:
            if index.name not in existing:
                editor.add_index(model, index)
        for constraint in model._meta.constraints:
            if constraint.name not in existing:
                editor.add_constraint(model, constraint)


def row_select(
    first: int, last: int, total: int, *, payload_hex: str, states: str, archived: bool, now_sql: str
) -> str:
    """Rows i = first..last (1 = the newest); id = total - i + 1, so ids grow with time."""
    step = SPAN_DAYS * 86400 / total
    patients = max(total // 25, 1000)
    ifaces = "ARRAY[" + ",".join(f"'{c}'" for c in INTERFACES) + "]"
    at = f"({now_sql} - make_interval(secs => i * {step}))"
    return f"""SELECT {total} - i + 1, ({ifaces})[1 + i % 8], 'bench', '1',
        '{ORG}|R' || lpad(i::text, 10, '0'), 1, '\\x{payload_hex}'::bytea, 200, '[]'::jsonb,
        md5((i % {patients})::text) || md5((i % {patients})::text), '张*', 'bench', {states}, 1,
        NULL::timestamptz, NULL::timestamptz, '', '0', '', '[]'::jsonb, 'R' || i, {at}, {at}, NULL::timestamptz,
        {at} + make_interval(secs => {step / 8}), {at} + make_interval(secs => {step / 4}),
        {at} + interval '1 day', {at} + make_interval(secs => {step / 4}){", " + now_sql if archived else ""}
        FROM generate_series({first}, {last}) AS i"""


COLUMNS = (
    "id, interface, document, spec_version, business_key, version, payload, payload_size, waits_for, "
    "patient_id_hash, patient_display, source, state, attempts, next_attempt_at, lease_until, claimed_by, "
    "last_code, last_message, last_errors, receipt, event_at, enqueued_at, redriven_at, first_attempt_at, "
    "accepted_at, deadline_at, updated_at"
).split(", ")


def load(
    database: str, total: int, hot: int, move: int, chunk: int = 5_000_000, *, archive: bool = True
) -> datetime:
    """Generate the outbox of years (each row accepted a quarter step after its enqueue): returns
    a time between the newest row the job may move and the oldest it may not."""
    from django.db import connection

    from hospital_interop.uploads.models import OutboxRecord

    payload_hex = OutboxRecord._meta.get_field("payload").seal_value({"bench": True}).hex()
    now_sql = "'{}'::timestamptz".format(psql(database, "SELECT now()").strip())
    step = SPAN_DAYS * 86400 / total
    psql(database, "ALTER SYSTEM SET maintenance_work_mem = '1GB'")
    psql(database, "SELECT pg_reload_conf()")
    t0 = time.perf_counter()
    # the archive: everything older than the hot rows
    rebuild = without_indexes(database, "uploads_archivedrecord") if archive else []
    first = hot + 1 if archive else total + 1
    while first <= total:
        last = min(first + chunk - 1, total)
        copy_rows(
            database,
            "uploads_archivedrecord",
            [*COLUMNS, "archived_at"],
            row_select(
                first, last, total, payload_hex=payload_hex, states="'done'", archived=True, now_sql=now_sql
            ),
        )
        print(
            f"  archive: {last - hot:,} / {total - hot:,} rows ({time.perf_counter() - t0:.0f} s)", flush=True
        )
        first = last + 1
    t1 = time.perf_counter()
    for statement in rebuild:
        psql(database, statement)
    print(f"  archive indexes built in {time.perf_counter() - t1:.0f} s", flush=True)
    # the hot table: the newest rows in every state, the oldest `move` of them accepted long ago
    mix = "(ARRAY['done','done','done','done','done','done','done','done','done','pending','retry','attention'])"
    states = f"CASE WHEN i > {hot - move} THEN 'done' ELSE {mix}[1 + (i::bigint * 7919) % 12] END"
    rebuild = without_indexes(database, "uploads_outboxrecord")
    copy_rows(
        database,
        "uploads_outboxrecord",
        COLUMNS,
        row_select(1, hot, total, payload_hex=payload_hex, states=states, archived=False, now_sql=now_sql),
    )
    for statement in rebuild:
        psql(database, statement)
    with_model_indexes(database, OutboxRecord)
    copy_rows(  # one attempt for each row the job will move
        database,
        "uploads_attempt",
        [
            "id",
            "record_id",
            "started_at",
            "elapsed_ms",
            "worker",
            "http_status",
            "code",
            "outcome",
            "message",
            "errors",
        ],
        f"""SELECT {total} - i + 1, {total} - i + 1, now(), 12.5, 'bench', 200, '0', 'accepted', '', '[]'::jsonb
            FROM generate_series({hot - move + 1}, {hot}) AS i""",
    )
    psql(database, f"SELECT setval(pg_get_serial_sequence('uploads_outboxrecord', 'id'), {total + 1})")
    psql(database, f"SELECT setval(pg_get_serial_sequence('uploads_attempt', 'id'), {total + 1})")
    psql(database, "VACUUM ANALYZE uploads_outboxrecord")
    # the anchor put rows into the archive and took them back out: dead rows the archive never has
    # in production (it is only appended to), which slow the planner's probes; vacuumed away
    psql(database, "VACUUM ANALYZE uploads_archivedrecord")  # appended, never updated: no vacuum needed
    psql(database, "VACUUM ANALYZE uploads_attempt")
    connection.close()
    print(
        f"  {total:,} rows generated with COPY in {time.perf_counter() - t0:.0f} s "
        f"({psql(database, 'SELECT pg_size_pretty(pg_database_size(current_database()))').strip()})",
        flush=True,
    )
    cut = psql(database, f"SELECT {now_sql} - make_interval(secs => {(hot - move + 0.5) * step})").strip()
    return datetime.fromisoformat(cut)


def archiving(
    database: str, total: int, hot: int, move: int, cut: datetime, batch: int
) -> tuple[float, float]:
    """The job's rows/s over the `move` rows, and the anchor: PostgreSQL's bulk move of as many rows."""
    from django.db import connection
    from django.utils import timezone

    from hospital_interop.uploads import retention
    from hospital_interop.uploads.models import ArchivedRecord, OutboxRecord

    print(f"\n== The archiving job: {move:,} rows past their age among {hot:,} hot rows ==", flush=True)
    before = OutboxRecord.objects.count()
    shown = [0.0]

    def progress(done):
        if time.perf_counter() - shown[0] > 10:
            shown[0] = time.perf_counter()
            print(f"  {done.records:,} rows, {done.records / done.seconds:,.0f} rows/s", flush=True)

    now = timezone.now()
    done = retention.run(now, older_than=now - cut, batch=batch, progress=progress)
    job_rate = done.records / done.seconds
    assert done.records == move and OutboxRecord.objects.count() == before - move, (done, before)
    # the anchor: the same number of rows moved back and forth by one bulk statement each way,
    # the hot table's most recent accepted rows (in the timed direction: hot -> archive)
    cols = ", ".join(COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT id FROM uploads_outboxrecord WHERE state = 'done' ORDER BY enqueued_at LIMIT {move}"""
        )
        ids = [r[0] for r in cur.fetchall()]
        t = time.perf_counter()
        with connection.cursor() as c2:
            c2.execute(
                f"""WITH moved AS (DELETE FROM uploads_outboxrecord WHERE id = ANY(%s) RETURNING *)
                    INSERT INTO uploads_archivedrecord ({cols}, archived_at) SELECT {cols}, now() FROM moved""",
                [ids],
            )
        anchor_rate = len(ids) / (time.perf_counter() - t)
        # put them back where they were (untimed), so the browser sees the layout the job left
        cur.execute(
            f"""WITH back AS (DELETE FROM uploads_archivedrecord WHERE id = ANY(%s) RETURNING *)
                INSERT INTO uploads_outboxrecord ({cols}) SELECT {cols} FROM back""",
            [ids],
        )
    print(f"{'archiving job (batches of ' + str(batch) + ')':<40} {job_rate:>10,.0f} rows/s")
    print(f"{'bulk move, one statement (anchor)':<40} {anchor_rate:>10,.0f} rows/s")
    print(
        f"ratio {job_rate / anchor_rate:.2f};  target >= 1,000 rows/s: {'PASS' if job_rate >= 1000 else 'FAIL'}"
        f"  ({ArchivedRecord.objects.count():,} archived, {OutboxRecord.objects.count():,} hot)"
    )
    psql(database, "VACUUM ANALYZE uploads_outboxrecord")
    # the anchor put rows into the archive and took them back out: dead rows the archive never has
    # in production (it is only appended to), which slow the planner's probes; vacuumed away
    psql(database, "VACUUM ANALYZE uploads_archivedrecord")
    return job_rate, anchor_rate


def browse(total: int, hot: int) -> bool:
    from django.utils import timezone

    from hospital_interop.audit import services as audit
    from hospital_interop.uploads.models import ArchivedRecord, OutboxRecord
    from hospital_interop.uploads.selectors import RecordFilter, page_of, search_records

    now = timezone.now()
    step = SPAN_DAYS * 86400 / total
    old = ArchivedRecord.objects.get(pk=total // 3)  # a row two years old
    new = OutboxRecord.objects.order_by("-pk")[100]
    year_ago = now - timedelta(days=365)
    print(f"\n== Record browser over {hot:,} hot and {total - hot:,} archived rows ==", flush=True)
    anchors = {
        "primary-key lookup, archive (anchor)": lambda: ArchivedRecord.objects.get(pk=old.pk),
        "primary-key lookup, hot table": lambda: OutboxRecord.objects.get(pk=new.pk),
        # every search writes one audit entry (a committed transaction): shown alone for scale
        "audit entry alone (in every search)": lambda: audit.record(
            audit.Action.SEARCH, "uploads.OutboxRecord", detail={"filter": {}, "found": 0, "more": False}
        ),
    }
    searches = {  # name: (filter, options)
        "newest 50, no filter": (RecordFilter(), {}),
        "state=attention": (RecordFilter(state="attention"), {}),
        "business key, archived record": (
            RecordFilter(key=old.business_key.split("|")[1]),
            {"org_code": ORG},
        ),
        "business key, hot record": (RecordFilter(key=new.business_key.split("|")[1]), {"org_code": ORG}),
        "patient (ID number), both tables": (RecordFilter(patient_hash=old.patient_id_hash), {}),
        "patient not found": (RecordFilter(patient_hash="0" * 64), {}),
        "date range, one day a year ago": (
            RecordFilter(date_from=year_ago, date_to=year_ago + timedelta(days=1)),
            {},
        ),
        "interface + date range, a year ago": (
            RecordFilter(interface="IP_FRONT_PAGE", date_from=year_ago, date_to=year_ago + timedelta(days=1)),
            {},
        ),
        "state=done, interface (both tables)": (RecordFilter(interface="OP_VISIT", state="done"), {}),
        "keyset page two years back": (
            RecordFilter(),
            {"before": (now - timedelta(seconds=int(total * 2 / 3) * step), total)},
        ),
    }
    # a page by number is an offset scan of up to COUNT_CAP rows (as it was before the archive):
    # shown beside the anchor, not held to the searches' target
    jumps = {
        "page 200 by number": (RecordFilter(), {"page": 200}),
        "page 200 by number, archived rows only": (
            RecordFilter(date_to=now - timedelta(days=400)),
            {"page": 200},
        ),
    }
    cases = dict(anchors)
    for name, (f, options) in {**searches, **jumps}.items():
        cases[name] = lambda f=f, o=options: search_records(f, **o)
        cases[name + " [query part]"] = lambda f=f, o=options: page_of(f, **o)
    # round robin: each round runs every case once, so a busy machine weighs on all of them alike
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(31):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    med = {name: statistics.median(spent) for name, spent in times.items()}
    p95 = {name: sorted(spent)[29] for name, spent in times.items()}
    anchor = med["primary-key lookup, archive (anchor)"]
    for name in anchors:
        print(f"{name:<40} {med[name]:>9.2f} ms  p95 {p95[name]:>7.2f}  {med[name] / anchor:>5.1f} x anchor")
    print(
        f"\n{'search (audited, as the browser runs it)':<40} {'median':>9} {'x':>6} {'verdict':>7}   "
        f"{'query part alone':>16} {'x':>6}"
    )
    ok = ok_queries = True
    for name in searches:
        whole, part = med[name], med[name + " [query part]"]
        ok &= whole <= 5 * anchor
        ok_queries &= part <= 5 * anchor
        print(
            f"{name:<40} {whole:>6.2f} ms {whole / anchor:>5.1f}x {'PASS' if whole <= 5 * anchor else 'FAIL':>7}   "
            f"{part:>13.2f} ms {part / anchor:>5.1f}x"
        )
    for name in jumps:
        whole, part = med[name], med[name + " [query part]"]
        print(
            f"{name:<40} {whole:>6.2f} ms {whole / anchor:>5.1f}x {'(info)':>7}   {part:>13.2f} ms {part / anchor:>5.1f}x"
        )
    print(f"record browser, every search <= 5 x the primary-key lookup: {'PASS' if ok else 'FAIL'}")
    print(f"  (the searches' queries alone, without the audit entry: {'PASS' if ok_queries else 'FAIL'})")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="rows in all, hot and archived")
    parser.add_argument("--hot-rows", type=int, default=1_000_000)
    parser.add_argument("--move-rows", type=int, default=200_000, help="hot rows past their age, for the job")
    parser.add_argument("--batch", type=int, default=2000, help="the job's rows per transaction")
    parser.add_argument(
        "--database", default="interop_bench_retention", help="a database of its own (dropped first)"
    )
    parser.add_argument("--redis-db", type=int, default=4, help="a Redis db of its own")
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated database (browse again with --reuse)"
    )
    parser.add_argument("--reuse", action="store_true", help="browse the database a --keep run left, no load")
    parser.add_argument(
        "--reuse-archive",
        action="store_true",
        help="keep the archive a stopped --keep run loaded; load the rest",
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        if opts.reuse or opts.reuse_archive:
            os.environ.update(
                DATABASE_URL=f"{PG}/{opts.database}",
                REDIS_URL=f"redis://127.0.0.1:6379/{opts.redis_db}",
                HOSPITAL_INTEROP_VAR_DIR=tmp,
                HOSPITAL_INTEROP_KEY_DIR=str(Path(tmp) / "keys"),
                DJANGO_SETTINGS_MODULE="hospital_interop.settings",
            )
            subprocess.run(
                [sys.executable, "manage.py", "setup_keys", "--dir", str(Path(tmp) / "keys")],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        else:
            prepare_environment(Path(tmp), database=opts.database, redis_db=opts.redis_db)
        import django

        django.setup()
        if not opts.reuse:
            print(f"== Generating {opts.rows:,} outbox rows with COPY ==", flush=True)
            if opts.reuse_archive:
                print("  (the archive's rows from an earlier run, kept)", flush=True)
            cut = load(
                opts.database, opts.rows, opts.hot_rows, opts.move_rows, archive=not opts.reuse_archive
            )
            archiving(opts.database, opts.rows, opts.hot_rows, opts.move_rows, cut, opts.batch)
        browse(opts.rows, opts.hot_rows)
        if opts.rows < 50_000_000:
            print(
                f"\nNOTE: measured at {opts.rows:,} rows, not 50,000,000. EXTRAPOLATION (not measured): the "
                "browser's searches and the primary-key lookup are B-tree descents whose depth grows by one "
                "level per ~300x rows, so their ratio holds at 50,000,000; the job's rows/s does not depend "
                "on the archive's size (appends) and depends on the hot table's only through its indexes."
            )
    if not opts.keep and not opts.reuse:
        psql("postgres", f"DROP DATABASE IF EXISTS {opts.database} WITH (FORCE)")


if __name__ == "__main__":
    main()
