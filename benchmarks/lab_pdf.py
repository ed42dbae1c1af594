"""Lab report PDFs and the drop-folder transfer, each beside an anchor from the same run.

1. Rendering: reports/s for a 30-item report (mutual_recognition.lab.pdf: embedded CJK font,
   header, patient block, results table with arrows and HR marks, remark, signature block),
   beside reportlab rendering a plain 30-line table (Helvetica, no CJK, no decoration) — the floor
   of what reportlab itself costs. Also the same report with the CID font (STSong-Light, nothing
   embedded). Target (issue 19): >= 150 reports/s. Rates are per second of this process's CPU
   time (``time.process_time``), 5 interleaved rounds, medians: on the shared machine a wall-clock
   rate mostly measures the other processes. ``--render-only`` runs just this part.

   | where | report/s | anchor/s | ratio | target |
   |---|---|---|---|---|
   | issue 19 (wall clock, quiet machine) | 75 | 350 | 0.21 | FAIL |
   | before (``main``, CPU time, load ~8) | 45.3 | 203 | 0.22 | FAIL |
   | after (CPU time, load ~8) | 63.3, 54.7 (two runs) | 225, 203 | 0.28, 0.27 | FAIL |
   | canvas grids + cached font stream (CPU time, load 4-8, five runs) | 160-172 | 345-392 | 0.41-0.47 | PASS |

   The report went 1.2-1.4x faster here; scaled to the issue's quiet machine (75/s before) that is
   about 90-105/s, still short of 150. What is left is reportlab's own per-cell drawing (a text
   object, font switch and colour per table cell: ~290 cells per report), which only a different
   drawing of the results table (one text object for the table) would cut, and that changes the
   PDF bytes.

   Then (issue 19, second pass; profile: the results table's per-cell drawing was ~45 % of a
   report, deflating the ~50 KiB font subset again for every PDF ~20 %): the results table and
   the patient block are drawn by a small grid flowable (``pdf._Grid``), all plain cells in one
   text object, with the Table's geometry (a one-page report renders to the same pixels), and the
   subset font stream's deflate output is memoised (identical bytes). Left in a report's ~5.5 ms:
   reportlab's per-string TrueType subset encoding (``splitString``/``_formatText``, ~25 %),
   writing the PDF objects (~20 %), Paragraph parsing and line breaking of the remark and
   signature block (~15 %). Archived PDFs are served from their stored bytes, not re-rendered.

   What changed before: reportlab's C accelerator (``rl-accel``: fp_str, stringWidth, ASCII85, escaping
   in C instead of its pure-Python fallbacks, which it used because the package was missing; it
   speeds the anchor too) and a cache of the embedded font's glyph subsets
   (``mutual_recognition.lab.pdf._cache_subsets``). Both leave every byte of the PDFs unchanged.
2. Drop folder → accepted: 500 report pairs (30 items each, PDF + index) are dropped into the
   watched folder at a steady rate; a real ``manage.py lab_transfer`` pairs and enqueues them, two
   Celery worker processes deliver 3.4 and 3.3 to the platform simulator. Latency per report =
   the later of the two platform acceptances minus the moment its index landed; p50 / p95 / max,
   and the time until the files were cleared.

Needs PostgreSQL and Redis (as for `make test`); uses its own database `interop_bench_lab` and
Redis db 7. Run: .venv/bin/python benchmarks/lab_pdf.py [--reports 500] [--rate 20] [--render 200]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
BENCH_DB = "interop_bench_lab"

EXTRA_ITEMS = (  # bench-only LIS sub-items (not recognition items), so that a report has 30 lines
    ("BASO%", "嗜碱性粒细胞百分比", "%"),
    ("EOS%", "嗜酸性粒细胞百分比", "%"),
    ("MONO%", "单核细胞百分比", "%"),
    ("LYM%", "淋巴细胞百分比", "%"),
    ("MCH", "平均红细胞血红蛋白含量", "pg"),
    ("MCHC", "平均红细胞血红蛋白浓度", "g/L"),
)


def thirty_items() -> list[dict]:
    from dictionaries.demo import LAB_SUB_ITEMS

    rows = [(code, name, unit) for code, name, unit, *_ in LAB_SUB_ITEMS] + list(EXTRA_ITEMS)
    flags = ["N", "N", "H", "N", "L", "N"]
    return [
        {
            "itemCode": code,
            "result": f"{(i * 7.31) % 90 + 1:.2f}",
            "unit": unit,
            "referenceRange": "1.0-60.0",
            "abnormalFlag": flags[i % len(flags)],
            "testMethod": "化学发光法",
        }
        for i, (code, _, unit) in enumerate(rows[:30])
    ]


# --------------------------------------------------------------------------- 1. rendering


def mapped_30(font_hint: str = ""):
    """A Mapped report with 30 lines, built without a database (rendering only)."""
    from mutual_recognition.lab.payloads import Mapped, MappedItem
    from tests.lab.conftest import lis_report

    content = lis_report(1, name="张建华")
    items = []
    for i, it in enumerate(thirty_items(), start=1):
        items.append(
            MappedItem(
                no=i,
                code=it["itemCode"],
                name=f"检验项目{i:02d}（{it['itemCode']}）",
                result=it["result"],
                unit=it["unit"],
                range=it["referenceRange"],
                flag=it["abnormalFlag"],
                method=it["testMethod"],
                remark="",
                standard_code=f"JY{i:04d}" if i % 4 else "",
                standard_name=f"互认项目{i:02d}" if i % 4 else "",
            )
        )
    return Mapped(
        content=content,
        items=items,
        request_dept=("19", "肿瘤科"),
        lab_dept=("30", "医学检验科"),
        request_doctor=("D1002", "李秀英", "110110000234567"),
        test_doctor=("L2001", "周检验"),
        review_doctor=("L2002", "吴审核"),
    )


SIGNATURE = {
    "reportId": "JY20261127001",
    "reportVersion": 1,
    "signerName": "吴审核",
    "signerStaffNo": "L2002",
    "method": "ukey",
    "signedAt": "2026-11-27T10:15:03+08:00",
    "signatureAlgorithm": "SM3withSM2",
    "certSerial": "5A3F0C21",
    "originalHash": "ab" * 32,
    "signatureValue": "MEUCIQ" + "A" * 90,
    "timestampToken": "TSA",
    "timestampVerified": True,
}


def plain_table_pdf(rows: list[list[str]]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate, Table

    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, invariant=1).build([Table(rows)])
    return buf.getvalue()


def rate(fn, seconds: float) -> float:
    """Calls per second of this process's CPU time, over about ``seconds`` of it."""
    clock = time.process_time
    n, t0 = 0, clock()
    while clock() - t0 < seconds:
        fn()
        n += 1
    return n / (clock() - t0)


TARGET = 150.0  # reports/s, issue 19


def rendering(seconds: float) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital_interop.settings")
    django.setup()
    from mutual_recognition.lab import pdf

    m = mapped_30()
    rows = [
        [str(i.no), i.code, i.result, i.unit, i.range, i.method.encode("ascii", "replace").decode()]
        for i in m.items
    ]
    pdf.render(m, SIGNATURE)
    plain_table_pdf(rows)  # warm up: font loading, imports
    size = len(pdf.render(m, SIGNATURE))
    rounds = {"anchor": [], "report": []}
    for _ in range(5):  # interleaved, so machine load hits both alike
        rounds["anchor"].append(rate(lambda: plain_table_pdf(rows), seconds / 10))
        rounds["report"].append(rate(lambda: pdf.render(m, SIGNATURE), seconds / 10))
    anchor, report = statistics.median(rounds["anchor"]), statistics.median(rounds["report"])
    embedded = pdf.font_name() != pdf.CID_FONT
    # the same report with the CID font, nothing embedded
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(pdf.CID_FONT))
    saved, pdf._font = pdf._font, pdf.CID_FONT
    cid_size = len(pdf.render(m, SIGNATURE))
    cid = rate(lambda: pdf.render(m, SIGNATURE), seconds / 3)
    pdf._font = saved
    from reportlab.lib import rl_accel

    accel = (
        "C (rl-accel)" if type(rl_accel.fp_str).__name__ == "builtin_function_or_method" else "pure Python"
    )
    print(
        f"\n== Report PDF rendering, 30-item report, one process, per CPU second; reportlab accel: {accel} =="
    )
    print(f"{'what':<62} {'figure':>12}")
    print(f"{'reportlab: plain 30-line table, Helvetica (anchor)':<62} {anchor:>10.1f}/s")
    print(
        f"{'lab report, ' + ('embedded WQY MicroHei subset' if embedded else 'CID font') + f' ({size // 1024} KiB)':<62} "
        f"{report:>10.1f}/s"
    )
    print(f"{f'lab report, CID font STSong-Light ({cid_size // 1024} KiB)':<62} {cid:>10.1f}/s")
    print(f"{'ratio report / anchor':<62} {report / anchor:>12.3f}")
    print("rounds: report " + "/".join(f"{r:.0f}" for r in rounds["report"]) + "  anchor "
          + "/".join(f"{r:.0f}" for r in rounds["anchor"]))  # fmt: skip
    print(f"target: lab report >= {TARGET:.0f}/s: {'PASS' if report >= TARGET else 'FAIL'} ({report:.1f}/s)")


# --------------------------------------------------------------------------- 2. drop folder → accepted


def prepare_environment(tmp: Path) -> dict:
    from delivery import prepare_environment as prepare_database_and_keys

    env = prepare_database_and_keys(
        tmp,
        database=BENCH_DB,
        redis_db=7,
        LAB_DROP_DIR=str(tmp / "drop"),
        LAB_ARCHIVE_DIR=str(tmp / "archive"),
        LAB_QUARANTINE_DIR=str(tmp / "quarantine"),
        LAB_ACCEPT_POLL_SECONDS="0.2",
        LAB_RESCAN_SECONDS="30",
        DELIVERY_SWEEP_SECONDS="2",
    )
    subprocess.run(
        [sys.executable, "manage.py", "load_dictionaries", "--hospital-demo"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def pairs(n: int, staging: Path) -> list[str]:
    """Approve and archive n 30-item reports into a staging folder (not watched): returns the stems."""
    from dictionaries.models import LabSubItem
    from mutual_recognition.lab import services
    from mutual_recognition.lab.conf import TransferConfig
    from tests.lab.conftest import lis_report

    for code, name, unit in EXTRA_ITEMS:
        LabSubItem.objects.update_or_create(code=code, defaults={"name": name, "unit": unit})
    cfg = TransferConfig.from_settings(drop_dir=staging)
    items = thirty_items()
    stems = []
    for i in range(n):
        body = lis_report(1000 + i, report_id=f"JYB{i:08d}", name="张建华")
        body["items"] = items
        services.approve(body, source="bench")
        result = services.archive(body["reportId"], config=cfg)
        stems.append(result.pdf_path.stem)
    return stems


def end_to_end(env: dict, tmp: Path, n: int, drop_rate: float) -> None:
    import django

    django.setup()
    import redis
    from delivery import start, stop
    from django.db.models import Count, Max

    from hospital_interop.uploads.models import OutboxRecord
    from mutual_recognition.lab.models import LabTransfer

    keys = Path(env["HOSPITAL_INTEROP_KEY_DIR"])
    sim_log = tmp / "sim.log"
    procs = []
    try:
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
        procs.append(sim)
        url = sim_log.read_text().split("listening on ")[1].split()[0]
        env = {
            **env,
            "PLATFORM_BASE_URL": url,
            "PLATFORM_PRIVATE_KEY_FILE": str(keys / "hospital_sm2.pem"),
            "PLATFORM_PUBLIC_KEY_FILE": str(keys / "platform_sm2_pub.pem"),
            "PLATFORM_SM4_KEY_FILE": str(keys / "sm4.key"),
            "PLATFORM_APP_SECRET_FILE": str(keys / "app_secret"),
        }
        staging = tmp / "staging"
        t0 = time.perf_counter()
        stems = pairs(n, staging)
        prep = time.perf_counter() - t0
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        for i in range(2):
            procs.append(_worker(env, tmp, i))
        procs.append(
            start(
                [sys.executable, "manage.py", "lab_transfer"],
                env,
                tmp / "transfer.log",
                "lab_transfer watching",
            )
        )
        time.sleep(1)
        drop = Path(env["LAB_DROP_DIR"])
        dropped: dict[str, float] = {}
        t_start = time.time()
        for i, stem in enumerate(stems):
            if drop_rate > 0:
                wait = t_start + i / drop_rate - time.time()
                if wait > 0:
                    time.sleep(wait)
            os.replace(staging / f"{stem}.pdf", drop / f"{stem}.pdf")  # the PDF first, the index last
            os.replace(staging / f"{stem}.json", drop / f"{stem}.json")
            dropped[stem] = time.time()
        deadline = time.time() + 600
        while LabTransfer.objects.filter(state="cleared").count() < n:
            if time.time() > deadline:
                print(dict(LabTransfer.objects.values_list("state").annotate(c=Count("id"))))
                raise SystemExit("not all reports cleared in 600 s")
            time.sleep(0.5)
        total = time.time() - t_start
        latencies, cleared, to_enqueue, to_accept = [], [], [], []
        for t in LabTransfer.objects.all():
            accepted = (
                OutboxRecord.objects.filter(pk__in=[t.pdf_record_id, t.detail_record_id])
                .aggregate(at=Max("accepted_at"))["at"]
                .timestamp()
            )
            latencies.append(accepted - dropped[t.stem])
            cleared.append(t.cleared_at.timestamp() - dropped[t.stem])
            to_enqueue.append(t.enqueued_at.timestamp() - dropped[t.stem])
            to_accept.append(accepted - t.enqueued_at.timestamp())
        q = statistics.quantiles(latencies, n=100)
        qc = statistics.quantiles(cleared, n=100)
        qe, qa = statistics.quantiles(to_enqueue, n=100), statistics.quantiles(to_accept, n=100)
        enq = sorted(t.enqueued_at.timestamp() for t in LabTransfer.objects.all())
        print(
            f"\n== Drop folder -> accepted, {n} reports of 30 items (PDF {os.path.getsize(next((tmp / 'archive').rglob('*.pdf'))) // 1024} KiB"
            f" + index), dropped at {drop_rate:g}/s, lab_transfer + 2 workers + simulator =="
        )
        print(f"{'what':<52} {'p50':>8} {'p95':>8} {'max':>8}")
        print(f"{'drop -> both uploads accepted (s)':<52} {q[49]:>8.2f} {q[94]:>8.2f} {max(latencies):>8.2f}")
        print(f"{'drop -> files cleared (s)':<52} {qc[49]:>8.2f} {qc[94]:>8.2f} {max(cleared):>8.2f}")
        print(
            f"{'  of which drop -> enqueued by lab_transfer (s)':<52} {qe[49]:>8.2f} {qe[94]:>8.2f} {max(to_enqueue):>8.2f}"
        )
        print(
            f"{'  of which enqueued -> both accepted (s)':<52} {qa[49]:>8.2f} {qa[94]:>8.2f} {max(to_accept):>8.2f}"
        )
        print(f"lab_transfer enqueue rate: {(n - 1) / (enq[-1] - enq[0]):.1f} pairs/s")
        print(
            f"throughput: {n / total:.1f} reports/s ({2 * n / total:.1f} uploads/s) over {total:.1f} s;"
            f" preparing {n} reports (approve + render + index): {n / prep:.1f}/s"
        )
    finally:
        for p in reversed(procs):
            stop(p)


def _worker(env, tmp, i):
    from delivery import start

    return start(
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
            f"lab{i}@%h",
            "--loglevel",
            "INFO",
        ],
        env,
        tmp / f"worker{i}.log",
        "ready",
        timeout=90,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=500)
    ap.add_argument("--rate", type=float, default=3.0, help="reports dropped per second (0: all at once)")
    ap.add_argument("--render-seconds", type=float, default=12.0)
    ap.add_argument("--skip-transfer", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="only part 1 (no database, no Redis)")
    args = ap.parse_args()
    if args.render_only:
        rendering(args.render_seconds)
        return
    tmp = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    try:
        env = prepare_environment(tmp) if not args.skip_transfer else None
        rendering(args.render_seconds)
        if env is not None:
            end_to_end(env, tmp, args.reports, args.rate)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
