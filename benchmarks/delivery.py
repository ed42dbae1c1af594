"""Delivery engine throughput and record-browser search time, each beside an anchor from the same run.

1. End to end: records/s from enqueue to accepted with 2 Celery worker processes against the
   platform simulator, beside raw sequential PlatformClient posts to the same simulator
   (targets: >= 200 records/s and >= 0.7 of the raw rate).
2. The record browser's search over 1,000,000 outbox rows, per filter, beside a primary-key
   lookup on the same table.

Needs PostgreSQL and Redis (as for `make test`); uses its own database `interop_bench` and Redis
db 3. Run: .venv/bin/python benchmarks/delivery.py [--records 2000] [--browse-rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG = "postgres://root@127.0.0.1:5432"
BENCH_DB = "interop_bench"


def prepare_environment(tmp: Path, *, database: str = BENCH_DB, redis_db: int = 3, **extra: str) -> dict:
    """A new, migrated benchmark database, demo keys under tmp, and the environment (``extra`` added)
    for this process and the ones it starts. Also used by lab_pdf.py."""
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {database}")
    conn.close()
    keys = tmp / "keys"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{database}",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        HOSPITAL_INTEROP_VAR_DIR=str(tmp),
        HOSPITAL_INTEROP_KEY_DIR=str(keys),
        DJANGO_SETTINGS_MODULE="hospital_interop.settings",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "setup_keys", "--dir", str(keys)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def start(args, env, log: Path, ready: str, timeout=60) -> subprocess.Popen:
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.time() + timeout
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{args[2:5]} did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return proc


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def end_to_end(env, tmp: Path, n: int) -> None:
    import django

    django.setup()
    import redis
    from django.db import transaction
    from django.db.models import Count

    from hospital_interop.municipal.client import PlatformClient, PlatformConfig
    from hospital_interop.municipal.specs import load_catalogue
    from hospital_interop.uploads import services
    from hospital_interop.uploads.models import OutboxRecord, State

    keys = Path(env["HOSPITAL_INTEROP_KEY_DIR"])
    sim_log = tmp / "sim.log"
    sim = start(
        [
            sys.executable,
            "-m",
            "simulators.platform",
            "--port",
            "0",
            "--db",
            str(tmp / "sim.sqlite3"),
            "--keys",
            str(keys),
            "--reset",
        ],
        env,
        sim_log,
        "listening on",
    )
    url = sim_log.read_text().split("listening on ")[1].split()[0]
    env = {
        **env,
        "PLATFORM_BASE_URL": url,
        "PLATFORM_PRIVATE_KEY_FILE": str(keys / "hospital_sm2.pem"),
        "PLATFORM_PUBLIC_KEY_FILE": str(keys / "platform_sm2_pub.pem"),
        "PLATFORM_SM4_KEY_FILE": str(keys / "sm4.key"),
        "PLATFORM_APP_SECRET_FILE": str(keys / "app_secret"),
    }
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    workers = []
    try:
        # anchor: raw sequential posts, one keep-alive client, same payload type
        config = PlatformConfig.from_files(
            base_url=url,
            app_id="BJ-HOSP-0001",
            org_code="12110000400000000X",
            private_key_file=keys / "hospital_sm2.pem",
            platform_public_key_file=keys / "platform_sm2_pub.pem",
            sm4_key_file=keys / "sm4.key",
            app_secret_file=keys / "app_secret",
        )
        client = PlatformClient(config)
        raw_payloads = [spec.example(seed) for seed in range(500_000, 500_000 + n // 2)]
        client.call(spec.code, raw_payloads[0])
        t0 = time.perf_counter()
        for p in raw_payloads:
            assert client.call(spec.code, p).outcome == "accepted"
        raw_rate = len(raw_payloads) / (time.perf_counter() - t0)

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        for i in range(2):
            workers.append(
                start(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "hospital_interop",
                        "worker",
                        "-c",
                        "1",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "-n",
                        f"b{i}@%h",
                        "--loglevel",
                        "INFO",
                    ],
                    env,
                    tmp / f"worker{i}.log",
                    "ready",
                    timeout=90,
                )
            )
        time.sleep(1)
        payloads = [spec.example(seed) for seed in range(1, n + 1)]
        t0 = time.perf_counter()
        for start_i in range(0, n, 100):
            with transaction.atomic():
                services.enqueue_many(
                    [services.Item(spec.code, p) for p in payloads[start_i : start_i + 100]]
                )
        enqueued = time.perf_counter() - t0
        while OutboxRecord.objects.filter(state=State.DONE).count() < n:
            if time.perf_counter() - t0 > 60:
                print(dict(OutboxRecord.objects.values_list("state").annotate(n=Count("pk"))))
                for log in sorted(tmp.glob("worker*.log")):
                    text = log.read_text(errors="replace")
                    print(log.name, "tasks received:", text.count("received"), "errors:", text.count("ERROR"))
                    print(
                        "\n".join(line for line in text.splitlines() if "ERROR" in line or "Error" in line)[
                            -3000:
                        ]
                    )
                print(
                    list(
                        OutboxRecord.objects.filter(state=State.SENDING).values_list(
                            "claimed_by", "lease_until"
                        )[:3]
                    )
                )
                from django.db import connection as c

                with c.cursor() as cur:
                    cur.execute(
                        "select pid, state, wait_event_type, wait_event, left(query, 150) from pg_stat_activity where datname=current_database()"
                    )
                    for row in cur.fetchall():
                        print(row)
                os.system("ps -ef --forest | grep -E 'celery|simulators' | grep -v grep")
                os.system(f"tail -5 {tmp}/sim.log")
                raise SystemExit("delivery did not finish in 300 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        engine_rate = n / elapsed
        not_done = OutboxRecord.objects.exclude(state=State.DONE).count()
        print("\n== End to end (LAB_REPORT_DETAIL, 84-field payloads) ==")
        print(f"{'what':<52} {'figure':>12}")
        print(f"{'raw sequential client posts (anchor)':<52} {raw_rate:>10.1f}/s")
        print(f"{'engine: enqueue -> accepted, 2 worker processes':<52} {engine_rate:>10.1f}/s")
        print(
            f"{'  of which enqueue (' + str(n) + ' rows, enqueue_many, batches of 100)':<52} {n / enqueued:>10.1f}/s"
        )
        print(f"{'ratio engine / raw':<52} {engine_rate / raw_rate:>12.2f}")
        print(
            f"target >= 200/s: {'PASS' if engine_rate >= 200 else 'FAIL'};  target ratio >= 0.7: "
            f"{'PASS' if engine_rate / raw_rate >= 0.7 else 'FAIL'};  rows not done: {not_done}"
        )
    finally:
        for w in workers:
            stop(w)
        stop(sim)


def browse(rows: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from hospital_interop.uploads.models import OutboxRecord
    from hospital_interop.uploads.selectors import RecordFilter, search_records
    from hospital_interop.uploads.services import Patient

    interfaces = [
        "LAB_REPORT_DETAIL",
        "LAB_REPORT_PDF",
        "EXAM_RESULT_SUBMIT",
        "OP_VISIT",
        "OP_REGISTRATION",
        "IP_FRONT_PAGE",
        "IP_PROGRESS_NOTE",
        "OP_ORDER",
    ]
    states = ["done"] * 90 + ["pending"] * 4 + ["retry"] * 3 + ["attention"] * 2 + ["superseded"]
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE uploads_outboxrecord CASCADE")
        cur.execute(
            """
            INSERT INTO uploads_outboxrecord (interface, document, spec_version, business_key, version, payload,
              waits_for, patient_id_hash, patient_display, source, state, attempts, next_attempt_at, claimed_by,
              last_code, last_message, last_errors, receipt, event_at, enqueued_at, deadline_at, updated_at, accepted_at)
            SELECT (%s::text[])[1 + i %% 8], 'bench', '1', '12110000400000000X|R' || lpad(i::text, 9, '0'), 1,
              '{}'::jsonb, '[]'::jsonb, md5((i %% 200000)::text) || md5((i %% 200000)::text), '张*', 'bench',
              (%s::text[])[1 + (i::bigint * 7919) %% 100], 1, now(), '', '0', '', '[]'::jsonb, '',
              now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
              now() - (i || ' seconds')::interval + interval '1 day', now(), now()
            FROM generate_series(1, %s) AS i""",
            [interfaces, states, rows],
        )
        cur.execute("ANALYZE uploads_outboxrecord")
    print(
        f"\n== Record browser over {OutboxRecord.objects.count():,} rows (loaded in {time.perf_counter() - t0:.0f} s) =="
    )
    now = timezone.now()
    some = OutboxRecord.objects.order_by("pk")[rows // 2]
    patient_hash = Patient(id_number="x").id_hash  # unknown patient: the worst case, an empty result
    cases = {
        "primary-key lookup (anchor)": lambda: OutboxRecord.objects.get(pk=some.pk),
        "newest 50, no filter": lambda: search_records(RecordFilter()),
        "interface + state=attention": lambda: search_records(
            RecordFilter(interface="OP_VISIT", state="attention")
        ),
        "state=pending": lambda: search_records(RecordFilter(state="pending")),
        "business key (report id)": lambda: search_records(
            RecordFilter(key=some.business_key.split("|")[1]), org_code="12110000400000000X"
        ),
        "patient (ID number)": lambda: search_records(RecordFilter(patient_hash=some.patient_id_hash)),
        "patient not found": lambda: search_records(RecordFilter(patient_hash=patient_hash)),
        "date range (one day, 3 days ago)": lambda: search_records(
            RecordFilter(date_from=now - timedelta(days=4), date_to=now - timedelta(days=3))
        ),
        "interface + date range": lambda: search_records(
            RecordFilter(
                interface="IP_FRONT_PAGE", date_from=now - timedelta(days=4), date_to=now - timedelta(days=3)
            )
        ),
        "past deadline": lambda: search_records(RecordFilter(overdue=True)),
        "page 2 000 (keyset)": lambda: search_records(
            RecordFilter(), before=(now - timedelta(seconds=100_000), 1)
        ),
    }
    anchor = None
    print(f"{'search':<36} {'median ms':>10} {'p95 ms':>8} {'x anchor':>9}")
    for name, fn in cases.items():
        fn()
        times = []
        for _ in range(15):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        anchor = anchor or med
        print(f"{name:<36} {med:>10.2f} {sorted(times)[13]:>8.2f} {med / anchor:>9.1f}")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop children
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--browse-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-browse", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        env = prepare_environment(Path(tmp))
        if not opts.skip_e2e:
            end_to_end(env, Path(tmp), opts.records)
        if not opts.skip_browse:
            browse(opts.browse_rows)


if __name__ == "__main__":
    main()
