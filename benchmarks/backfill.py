"""EMR backfill at scale: records/s through ``manage.py emr_backfill``'s code path, beside an anchor
measured in the same run, and the size of the outbox it leaves.

1. Writes N records (default 1,000,000) of all 29 EMR record types to one NDJSON file, as a
   hospital joining the programme would (``{"recordType": ..., "record": {...}}`` per line).
2. Runs the backfill (``emr_sharing.backfill.run``: parse, map, validate, patient registry,
   version look-ups, sealing at rest, ``enqueue_many``) with no workers: delivery is not part of
   the figure. Target: >= 2,000 records/s.
3. Anchor, same run, same rows: the outbox rows the backfill wrote, copied out with ``COPY TO``
   and written again with ``COPY FROM`` into an empty table of the same shape (same indexes and
   constraints): the cost of just storing those bytes, with no parsing, validation or sealing.
4. The outbox's size: table (with TOAST), its indexes, and per row; the dependency rows beside it.

Needs PostgreSQL (as for ``make test``); uses a database of its own (dropped first; default
``interop_bench_backfill``). Run:
    .venv/bin/python benchmarks/backfill.py [--records 1000000] [--batch-size 1000] [--jobs 2] [--database NAME] [--file F]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 2000.0  # records/s


def write_file(path: Path, n: int) -> float:
    """N records of all 29 types (seed s: one patient's encounter across types); seconds taken."""
    from emr_sharing.mapping import record_types

    types = list(record_types())
    t0 = time.perf_counter()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            rt = types[i % len(types)]
            fh.write(
                json.dumps({"recordType": rt.slug, "record": rt.example(i // len(types))}, ensure_ascii=False)
            )
            fh.write("\n")
    return time.perf_counter() - t0


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def sizes(cursor, table: str) -> tuple[int, int, int]:
    cursor.execute(
        "SELECT pg_table_size(%s), pg_indexes_size(%s), (SELECT count(*) FROM " + table + ")", [table, table]
    )
    return cursor.fetchone()


def copy_anchor(cursor) -> tuple[int, float]:
    """COPY the outbox rows out, then COPY them into an empty table of the same shape: (rows, seconds of the COPY FROM)."""
    buf = io.BytesIO()
    cursor.copy_expert("COPY uploads_outboxrecord TO STDOUT WITH (FORMAT binary)", buf)
    cursor.execute("DROP TABLE IF EXISTS bench_outbox_anchor")
    cursor.execute("CREATE TABLE bench_outbox_anchor (LIKE uploads_outboxrecord INCLUDING ALL)")
    cursor.connection.commit()
    buf.seek(0)
    t0 = time.perf_counter()
    cursor.copy_expert("COPY bench_outbox_anchor FROM STDIN WITH (FORMAT binary)", buf)
    cursor.connection.commit()
    elapsed = time.perf_counter() - t0
    cursor.execute("SELECT count(*) FROM bench_outbox_anchor")
    rows = cursor.fetchone()[0]
    return rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2, help="processes (emr_backfill --jobs; 2)")
    parser.add_argument(
        "--database", default="interop_bench_backfill", help="a database of its own (dropped first)"
    )
    parser.add_argument("--redis-db", type=int, default=3, help="a Redis db of its own (3)")
    parser.add_argument("--file", help="the NDJSON file: used if it exists, else written there and kept")
    parser.add_argument("--profile", help="write a cProfile of the backfill to this file")
    opts = parser.parse_args()

    from benchmarks.delivery import prepare_environment

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        prepare_environment(tmp, database=opts.database, redis_db=opts.redis_db)
        import django

        django.setup()
        from django.db import connection

        from emr_sharing import backfill

        data = Path(opts.file) if opts.file else tmp / f"backfill-{opts.records}.ndjson"
        if data.exists():
            print(f"input: {data} ({human(data.stat().st_size)}), written by an earlier run")
        else:
            seconds = write_file(data, opts.records)
            print(f"wrote {opts.records} records to {data} ({human(data.stat().st_size)}) in {seconds:.0f} s")

        if opts.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu = time.process_time()
        stats = backfill.run(
            [data], batch_size=opts.batch_size, wake=False, progress=sys.stderr, jobs=opts.jobs
        )
        cpu = time.process_time() - cpu
        if opts.profile:
            profiler.disable()
            profiler.dump_stats(opts.profile)
        rate = stats.rate
        print(stats.summary())

        with connection.cursor() as cursor:
            table, indexes, rows = sizes(cursor, "uploads_outboxrecord")
            dep_table, dep_indexes, dep_rows = sizes(cursor, "uploads_dependency")
            raw = cursor.connection.cursor()
        anchor_rows, anchor_seconds = copy_anchor(raw)
        anchor_rate = anchor_rows / anchor_seconds
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_outbox_anchor")

        assert rows == opts.records - stats.invalid == stats.created, (rows, stats.created)
        print(
            f"\n== EMR backfill, {stats.lines} records of 29 types, batches of {opts.batch_size}, "
            f"{opts.jobs} process(es), no delivery workers =="
        )
        print(f"{'what':<64} {'figure':>14}")
        print(f"{'anchor: COPY FROM of the same outbox rows (same indexes)':<64} {anchor_rate:>12.0f}/s")
        print(f"{'backfill: parse, map, validate, bind, seal, enqueue_many':<64} {rate:>12.0f}/s")
        print(f"{'  of which mapping and validation alone':<64} {stats.prepare_rate:>12.0f}/s")
        print(
            f"{'  per CPU second of the storing process (PostgreSQL not counted)':<64} {stats.lines / cpu:>12.0f}/s"
        )
        print(f"{'ratio backfill / anchor':<64} {rate / anchor_rate:>14.3f}")
        print(f"target >= {TARGET:.0f} records/s: {'PASS' if rate >= TARGET else 'FAIL'}")
        print(f"\n== Outbox size after the backfill ({rows} rows) ==")
        print(
            f"{'uploads_outboxrecord table (with TOAST)':<64} {human(table):>14}  {table / rows:>7.0f} B/row"
        )
        print(f"{'uploads_outboxrecord indexes (9)':<64} {human(indexes):>14}  {indexes / rows:>7.0f} B/row")
        print(f"{'  total':<64} {human(table + indexes):>14}  {(table + indexes) / rows:>7.0f} B/row")
        if dep_rows:
            print(
                f"{'uploads_dependency (' + str(dep_rows) + ' rows), table + indexes':<64} "
                f"{human(dep_table + dep_indexes):>14}  {(dep_table + dep_indexes) / rows:>7.0f} B/record"
            )


if __name__ == "__main__":
    main()
