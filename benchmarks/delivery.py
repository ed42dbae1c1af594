"""Delivery engine throughput and record-browser search time, each beside an anchor from the same run.

1. End to end: records/s from enqueue to accepted with 2 Celery worker processes against the
   platform simulator, beside raw sequential PlatformClient posts to the same simulator, measured
   before each engine run (issue 19's targets: >= 500 records/s and >= 0.9 of the raw rate); and
   the cost of sealing the payloads
   at rest (SM4-GCM): the same engine with payloads stored in clear (benchmark processes only,
   ``plain_at_rest``) beside it, and per record the at-rest work beside the envelope's seal.
2. The record browser's search over 1,000,000 outbox rows, per filter, beside a primary-key
   lookup on the same table.
3. Recovery after a platform outage (60 s by default, ``--outage``): 2 worker processes and beat at
   production settings, the simulator answering HTTP 500 to everything while records arrive; the
   time from the platform's return until every record was accepted, beside the outage's length
   (target: <= 15 s), and beside the same records' delivery with no outage (anchor).
4. Large PDFs (40 x 20 MiB) among small records arriving at a steady rate: the small records'
   latency p50 / p95 / max, beside the same run without the PDFs (target: p95 <= 2 x control).
   The PDFs are enqueued by a process of their own (as the LIS's requests would be), so the small
   records keep arriving at their rate while a PDF is being taken in.

Needs PostgreSQL and Redis (as for `make test`); uses its own database `interop_bench` and Redis
db 3. Run: .venv/bin/python benchmarks/delivery.py [--records 2000] [--browse-rows 1000000]
[--outage 60] [--outage-records 300] [--skip-outage] [--pdfs 40] [--pdf-mib 20] [--skip-pdfs]
"""

from __future__ import annotations

import argparse
import multiprocessing
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


PLAIN_MARK = b"PLAIN"


def plain_at_rest() -> None:
    """Benchmark only: this process stores sealed columns in clear (a marker and the bytes), so the
    engine's figure without at-rest encryption can be measured beside the one with it. Never in
    the product: there a payload that does not open is refused."""
    from hospital_interop import atrest

    atrest.seal = lambda data, purpose, *, key_id=None: PLAIN_MARK + bytes(data)
    atrest.unseal = lambda blob, purpose: bytes(blob)[len(PLAIN_MARK) :]


def start_workers(env, tmp: Path, *, plain: bool, count: int = 2) -> list[subprocess.Popen]:
    """Celery worker processes (``plain``: with ``plain_at_rest`` applied before Celery starts)."""
    boot = (
        "import sys; sys.argv[0] = 'celery'; "
        + ("from benchmarks.delivery import plain_at_rest; plain_at_rest(); " if plain else "")
        + "from celery.__main__ import main; main()"
    )
    workers = []
    for i in range(count):
        workers.append(
            start(
                [
                    sys.executable,
                    "-c",
                    boot,
                    "-A",
                    "hospital_interop",
                    "worker",
                    "-c",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"b{i}{'p' if plain else 's'}@%h",
                    "--loglevel",
                    "INFO",
                ],
                env,
                tmp / f"worker{i}{'-plain' if plain else ''}.log",
                "ready",
                timeout=90,
            )
        )
    time.sleep(1)
    return workers


def engine_run(env, tmp: Path, payloads: list[dict], *, plain: bool, workers: int = 2) -> tuple[float, float]:
    """Enqueue the payloads and wait until the platform accepted all of them, with ``workers``
    worker processes: (records/s enqueue → accepted, records/s of the enqueue alone)."""
    import redis
    from django.db import connection, transaction
    from django.db.models import Count

    from hospital_interop import atrest
    from hospital_interop.uploads import services
    from hospital_interop.uploads.models import OutboxRecord, State

    with connection.cursor() as cur:
        cur.execute("TRUNCATE uploads_outboxrecord CASCADE")
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    sealing = atrest.seal, atrest.unseal
    if plain:
        plain_at_rest()
    workers = start_workers(env, tmp, plain=plain, count=workers)
    n = len(payloads)
    try:
        t0 = time.perf_counter()
        for start_i in range(0, n, 100):
            with transaction.atomic():
                services.enqueue_many(
                    [services.Item("LAB_REPORT_DETAIL", p) for p in payloads[start_i : start_i + 100]]
                )
        enqueued = time.perf_counter() - t0
        while OutboxRecord.objects.filter(state=State.DONE).count() < n:
            if time.perf_counter() - t0 > 300:
                print(dict(OutboxRecord.objects.values_list("state").annotate(n=Count("pk"))))
                for log in sorted(tmp.glob("worker*.log")):
                    text = log.read_text(errors="replace")
                    print(log.name, "tasks received:", text.count("received"), "errors:", text.count("ERROR"))
                    print(
                        "\n".join(line for line in text.splitlines() if "ERROR" in line or "Error" in line)[
                            -3000:
                        ]
                    )
                os.system(f"tail -5 {tmp}/sim.log")
                raise SystemExit("delivery did not finish in 300 s")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        assert OutboxRecord.objects.exclude(state=State.DONE).count() == 0
        stored = bytes(OutboxRecord.objects.values_list("payload", flat=True).first().raw)
        assert stored.startswith(PLAIN_MARK if plain else atrest.MAGIC)  # measured what it says
        return n / elapsed, n / enqueued
    finally:
        for w in workers:
            stop(w)
        atrest.seal, atrest.unseal = sealing


def per_record_cost(payloads: list[dict]) -> tuple[float, float]:
    """Microseconds per record of the platform envelope's seal alone, and of the at-rest work a
    record adds to it (sealed when enqueued, opened when delivered)."""
    from datetime import datetime

    from hospital_interop.municipal import envelope
    from hospital_interop.municipal.client import config_from_settings
    from hospital_interop.municipal.specs import load_catalogue
    from hospital_interop.uploads.models import OutboxRecord

    field = OutboxRecord._meta.get_field("payload")
    spec, creds = load_catalogue().interface("LAB_REPORT_DETAIL"), config_from_settings().credentials
    now = datetime.now(envelope.PLATFORM_TZ)

    def seal(p):
        return envelope.seal_request(
            p, service_code=spec.code, version=spec.version, creds=creds, profile=spec.profile, timestamp=now
        )

    def best(fn) -> float:
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            for p in payloads:
                fn(p)
            runs.append((time.perf_counter() - t) / len(payloads) * 1e6)
        return min(runs)

    sealed_envelope = best(seal)
    at_rest = best(lambda p: field.open(_sealed(field.seal_value(p))))
    return sealed_envelope, at_rest


def _sealed(raw: bytes):
    from hospital_interop.atrest import Sealed

    return Sealed(raw)


def end_to_end(env, tmp: Path, n: int, workers: int = 2) -> None:
    import django

    django.setup()

    from hospital_interop.municipal.client import PlatformClient, PlatformConfig
    from hospital_interop.municipal.specs import load_catalogue

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
    os.environ.update(env)
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")
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
        client.call(spec.code, spec.example(499_999))

        def raw_run(seed: int) -> float:
            raw_payloads = [spec.example(s) for s in range(seed, seed + n // 2)]
            t0 = time.perf_counter()
            for p in raw_payloads:
                assert client.call(spec.code, p).outcome == "accepted"
            return len(raw_payloads) / (time.perf_counter() - t0)

        # the engine with the payloads sealed at rest (the product), and with them in clear, twice
        # each, interleaved with the anchor: the machine's other load falls on all alike
        sealed_runs, plain_runs, raw_runs = [], [], []
        for round_ in range(2):
            base = 1 + round_ * 2 * n
            raw_runs.append(raw_run(500_000 + round_ * n))
            sealed_runs.append(
                engine_run(
                    env, tmp, [spec.example(s) for s in range(base, base + n)], plain=False, workers=workers
                )
            )
            plain_runs.append(
                engine_run(
                    env,
                    tmp,
                    [spec.example(s) for s in range(base + n, base + 2 * n)],
                    plain=True,
                    workers=workers,
                )
            )
        raw_rate = statistics.mean(raw_runs)
        engine_rate = statistics.mean(r for r, _ in sealed_runs)
        enqueue_rate = statistics.mean(e for _, e in sealed_runs)
        plain_rate = statistics.mean(r for r, _ in plain_runs)
        plain_enqueue = statistics.mean(e for _, e in plain_runs)
        envelope_us, at_rest_us = per_record_cost([spec.example(s) for s in range(900_000, 900_200)])

        print("\n== End to end (LAB_REPORT_DETAIL, 84-field payloads) ==")
        print(f"{'what':<60} {'figure':>12}")
        print(f"{'raw sequential client posts (anchor, mean of 2)':<60} {raw_rate:>10.1f}/s")
        print(f"{f'engine: enqueue -> accepted, {workers} worker processes':<60} {engine_rate:>10.1f}/s")
        print(
            f"{'  of which enqueue (' + str(n) + ' rows, enqueue_many, batches of 100)':<60} {enqueue_rate:>10.1f}/s"
        )
        print(f"{'ratio engine / raw':<60} {engine_rate / raw_rate:>12.2f}")
        ok = engine_rate >= 500 and engine_rate / raw_rate >= 0.9
        print(
            f"target >= 500/s: {'PASS' if engine_rate >= 500 else 'FAIL'};  target ratio >= 0.9: "
            f"{'PASS' if engine_rate / raw_rate >= 0.9 else 'FAIL'};  both: {'PASS' if ok else 'FAIL'}"
        )
        print(
            "\n== Cost of the payloads' encryption at rest (SM4-GCM, sealed on enqueue, opened on delivery) =="
        )
        print(f"{'engine with payloads in clear (anchor of this section)':<60} {plain_rate:>10.1f}/s")
        print(f"{'engine with payloads sealed (the product)':<60} {engine_rate:>10.1f}/s")
        print(f"{'ratio sealed / clear, engine':<60} {engine_rate / plain_rate:>12.2f}")
        print(f"{'  enqueue alone, in clear / sealed':<60} {plain_enqueue:>7.0f} / {enqueue_rate:.0f}/s")
        print(f"{'per record: platform envelope seal (gzip, SM4-CBC, SM2)':<60} {envelope_us:>9.0f} µs")
        print(f"{'per record: at-rest seal + open (JSON, SM4-GCM)':<60} {at_rest_us:>9.0f} µs")
        print(
            f"{'ratio (envelope + at rest) / envelope':<60} {(envelope_us + at_rest_us) / envelope_us:>12.2f}"
        )
        print(
            "runs (records/s): raw "
            + ", ".join(f"{r:.0f}" for r in raw_runs)
            + "; sealed "
            + ", ".join(f"{r:.0f}" for r, _ in sealed_runs)
            + "; clear "
            + ", ".join(f"{r:.0f}" for r, _ in plain_runs)
        )
    finally:
        stop(sim)


def start_simulator(env, tmp: Path, *server: str) -> tuple[subprocess.Popen, dict]:
    """The platform simulator on a free port, and the environment that points the product at it
    (``server``: its server options, e.g. ``--server gunicorn --workers 2``)."""
    keys = Path(env["HOSPITAL_INTEROP_KEY_DIR"])
    sim_log = tmp / "sim-outage.log"
    sim = start(
        [
            sys.executable,
            "-m",
            "simulators.platform",
            "--port",
            "0",
            "--db",
            str(tmp / "sim-outage.sqlite3"),
            "--keys",
            str(keys),
            "--reset",
            *server,
        ],
        env,
        sim_log,
        "listening on",
    )
    url = sim_log.read_text().split("listening on ")[1].split()[0]
    return sim, {
        **env,
        "PLATFORM_BASE_URL": url,
        "PLATFORM_PRIVATE_KEY_FILE": str(keys / "hospital_sm2.pem"),
        "PLATFORM_PUBLIC_KEY_FILE": str(keys / "platform_sm2_pub.pem"),
        "PLATFORM_SM4_KEY_FILE": str(keys / "sm4.key"),
        "PLATFORM_APP_SECRET_FILE": str(keys / "app_secret"),
    }


def _faults(url: str, **faults) -> None:
    import requests

    requests.post(url + "/_sim/faults", json={**faults, "replace": True}, timeout=10).raise_for_status()


def outage_recovery(env, tmp: Path, n: int, outage: float) -> None:
    """Records arrive while the platform is down (every call: HTTP 500) and back off at the
    production settings; the figure is the time from its return until all were accepted."""
    import django

    django.setup()
    import redis
    from django.db import connection, transaction

    from hospital_interop.municipal.specs import load_catalogue
    from hospital_interop.uploads import services
    from hospital_interop.uploads.models import OutboxRecord, State
    from hospital_interop.uploads.schedules import sync_schedules

    sim, env = start_simulator(env, tmp)
    os.environ.update(env)
    url = env["PLATFORM_BASE_URL"]
    spec = load_catalogue().interface("LAB_REPORT_DETAIL")

    def run(seed: int, down: float) -> tuple[float, float, int]:
        """(seconds from the return (or the last enqueue) to all accepted, the longest backoff left
        at the return, attempts made)."""
        with connection.cursor() as cur:
            cur.execute("TRUNCATE uploads_outboxrecord CASCADE")
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        with transaction.atomic():
            sync_schedules()
        if down:
            _faults(url, http_5xx=1.0)  # the platform is down: every call fails, nothing is stored
        else:
            _faults(url)
        procs = start_workers(env, tmp, plain=False)
        procs.append(
            start(
                [sys.executable, "-m", "celery", "-A", "hospital_interop", "beat", "--loglevel", "INFO"],
                env,
                tmp / f"beat-{seed}.log",
                "beat: Starting",
                timeout=90,
            )
        )
        try:
            t0 = time.perf_counter()
            payloads = [spec.example(s) for s in range(seed, seed + n)]
            for i in range(10):  # the records arrive over the first part of the outage
                with transaction.atomic():
                    services.enqueue_many(
                        [services.Item(spec.code, p) for p in payloads[i * n // 10 : (i + 1) * n // 10]]
                    )
                time.sleep(min(down, 30) / 10)
            time.sleep(max(0.0, down - (time.perf_counter() - t0)))
            latest = OutboxRecord.objects.filter(state=State.RETRY).order_by("-next_attempt_at").first()
            if down:
                _faults(url)  # the platform is back
            back = time.perf_counter()
            left = (latest.next_attempt_at.timestamp() - time.time()) if latest and down else 0.0
            while OutboxRecord.objects.filter(state=State.DONE).count() < n:
                if time.perf_counter() - back > 600:
                    raise SystemExit("delivery did not finish 600 s after the outage")
                time.sleep(0.05)
            attempts = sum(OutboxRecord.objects.values_list("attempts", flat=True))
            return time.perf_counter() - back, left, attempts
        finally:
            for proc in procs:
                stop(proc)

    try:
        control, _, _ = run(700_000, 0.0)
        recovery, left, attempts = run(710_000, outage)
    finally:
        stop(sim)
    print(
        f"\n== Recovery after a platform outage ({n} records arriving while it is down, production settings) =="
    )
    print(f"{'what':<60} {'figure':>12}")
    print(f"{'no outage: last enqueue -> all accepted (anchor)':<60} {control:>10.1f} s")
    print(f"{'platform outage (every call HTTP 500)':<60} {outage:>10.0f} s")
    print(f"{'  longest backoff left at its return':<60} {left:>10.0f} s")
    print(f"{'  attempts made (all records)':<60} {attempts:>12}")
    print(f"{'recovery: return -> all accepted':<60} {recovery:>10.1f} s")
    print(f"target <= 15 s: {'PASS' if recovery <= 15 else 'FAIL'}")


def pdf_mix(env, tmp: Path, small: int, pdfs: int, mib: float, rate: float) -> None:
    """Small records arrive at a steady rate, alone (control) and with large PDFs among them; the
    figure is the small records' latency (enqueue -> the platform's acceptance, ``accepted_at``)."""
    import base64

    import django

    django.setup()
    import redis
    from django.db import connection, connections, transaction

    from hospital_interop.municipal.gm import sm3_hex
    from hospital_interop.municipal.specs import load_catalogue
    from hospital_interop.uploads import services
    from hospital_interop.uploads.models import OutboxRecord, State
    from hospital_interop.uploads.schedules import sync_schedules

    # A platform serves requests in parallel: with one simulator process a 20 MiB request would
    # hold the small ones behind it (Python's interpreter lock), which no real platform does.
    sim, env = start_simulator(env, tmp, "--server", "gunicorn", "--workers", "2")
    os.environ.update(env)
    small_spec = load_catalogue().interface("LAB_REPORT_DETAIL")
    pdf_spec = load_catalogue().interface("LAB_REPORT_PDF")
    raw = b"%PDF-1.4\n" + os.urandom(int(mib * 1024 * 1024) - 9)
    content, digest = base64.b64encode(raw).decode(), sm3_hex(raw)

    def feed_pdfs(seed: int, count: int, every: float) -> None:
        """Enqueue ``count`` PDFs, one every ``every`` seconds (the first after half of it)."""
        t0 = time.perf_counter()
        for n in range(count):
            time.sleep(max(0.0, t0 + (n + 0.5) * every - time.perf_counter()))
            payload = pdf_spec.example(seed + 500_000 + n)
            payload.update(fileContent=content, fileSize=len(raw), fileHash=digest)
            services.enqueue(pdf_spec.code, payload)
        connections.close_all()

    def run(seed: int, with_pdfs: int) -> dict:
        with connection.cursor() as cur:
            cur.execute("TRUNCATE uploads_outboxrecord CASCADE")
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        with transaction.atomic():
            sync_schedules()
        procs = start_workers(env, tmp, plain=False)
        procs.append(
            start(
                [sys.executable, "-m", "celery", "-A", "hospital_interop", "beat", "--loglevel", "INFO"],
                env,
                tmp / f"beat-pdf-{seed}.log",
                "beat: Starting",
                timeout=90,
            )
        )
        feeder = None
        try:
            t0 = time.perf_counter()
            if with_pdfs:  # the PDFs come from elsewhere (the LIS), beside the small records' stream
                connections.close_all()  # not shared with the child
                feeder = multiprocessing.get_context("fork").Process(
                    target=feed_pdfs, args=(seed, with_pdfs, small / rate / with_pdfs)
                )
                feeder.start()
            for i in range(small):
                services.enqueue(small_spec.code, small_spec.example(seed + i))
                time.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
            sent_pdfs = 0
            if feeder:
                feeder.join()
                sent_pdfs = with_pdfs if feeder.exitcode == 0 else 0
                if feeder.exitcode:
                    raise SystemExit("the PDF feeder failed")
            total = small + sent_pdfs
            while OutboxRecord.objects.filter(state=State.DONE).count() < total:
                if time.perf_counter() - t0 > 900:
                    raise SystemExit("delivery did not finish in 900 s")
                time.sleep(0.2)
            done = time.perf_counter() - t0
            waits = sorted(
                (r.accepted_at - r.enqueued_at).total_seconds()
                for r in OutboxRecord.objects.filter(interface=small_spec.code).only(
                    "accepted_at", "enqueued_at"
                )
            )
            return {
                "p50": statistics.median(waits),
                "p95": waits[int(len(waits) * 0.95) - 1],
                "max": waits[-1],
                "all": done,
                "pdfs": sent_pdfs,
            }
        finally:
            if feeder and feeder.is_alive():
                feeder.terminate()
            for proc in procs:
                stop(proc)

    try:
        control = run(800_000, 0)
        mixed = run(820_000, pdfs)
    finally:
        stop(sim)
    print(
        f"\n== {mixed['pdfs']} x {mib:g} MiB PDFs among {small} small records ({rate:g}/s), 2 worker processes =="
    )
    print(f"{'small records: enqueue -> accepted':<44} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for name, r in (("control: no PDFs (anchor)", control), ("with the PDFs", mixed)):
        print(f"{name:<44} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['max']:>8.2f}")
    print(f"{'ratio p95 with PDFs / control':<44} {mixed['p95'] / control['p95']:>26.2f}")
    print(f"target p95 <= 2 x control: {'PASS' if mixed['p95'] <= 2 * control['p95'] else 'FAIL'}")
    print(f"all delivered after: control {control['all']:.0f} s, with PDFs {mixed['all']:.0f} s")


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
              %s, '[]'::jsonb, left(md5((i %% 200000)::text) || md5((i %% 200000)::text), 40), '张*', 'bench',
              (%s::text[])[1 + (i::bigint * 7919) %% 100], 1, now(), '', '0', '', '[]'::jsonb, '',
              now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval,
              now() - (i || ' seconds')::interval + interval '1 day', now(), now()
            FROM generate_series(1, %s) AS i""",
            [interfaces, OutboxRecord._meta.get_field("payload").seal_value({}), states, rows],
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
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes of the end-to-end runs (2; docs/scaling.md)"
    )
    parser.add_argument("--outage", type=float, default=60.0, help="platform outage in seconds (60)")
    parser.add_argument("--outage-records", type=int, default=300)
    parser.add_argument("--skip-outage", action="store_true")
    parser.add_argument("--pdfs", type=int, default=40, help="large PDFs among the small records (40)")
    parser.add_argument("--pdf-mib", type=float, default=20.0)
    parser.add_argument("--pdf-small", type=int, default=600, help="small records in the PDF runs (600)")
    parser.add_argument("--pdf-rate", type=float, default=10.0, help="small records per second (10)")
    parser.add_argument("--skip-pdfs", action="store_true")
    parser.add_argument(
        "--database", default=BENCH_DB, help=f"a database of its own (dropped first; {BENCH_DB})"
    )
    parser.add_argument("--redis-db", type=int, default=3, help="a Redis db of its own (flushed; 3)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        env = prepare_environment(Path(tmp), database=opts.database, redis_db=opts.redis_db)
        if not opts.skip_e2e:
            end_to_end(env, Path(tmp), opts.records, opts.workers)
        if not opts.skip_outage:
            outage_recovery(env, Path(tmp), opts.outage_records, opts.outage)
        if not opts.skip_pdfs:
            pdf_mix(env, Path(tmp), opts.pdf_small, opts.pdfs, opts.pdf_mib, opts.pdf_rate)
        if not opts.skip_browse:
            browse(opts.browse_rows)


if __name__ == "__main__":
    main()
