"""Load on the recognition prompt API beside /healthz, in the same run, under gunicorn.

Run: ``.venv/bin/python benchmarks/prompt_api.py`` (about 1 minute; PostgreSQL and Redis as in
``make test``). What it does:

1. starts the platform simulator (own port, demo keys in a temp folder), migrates a benchmark
   database (BENCH_DATABASE_URL, default postgres://root@127.0.0.1:5432/bench_prompt_api,
   created if missing), loads the demo dictionaries and pre-loads PATIENTS visits (the
   registration path: 2.3.2.1 + 3.1 fetched and cached, as a worker would);
2. starts gunicorn exactly as the demo runs it (hospital_interop/gunicorn_conf.py: 2 processes per
   core; BENCH_GUNICORN_ARGS adds options, e.g. "--workers 2 --threads 4");
3. drives it with a small asyncio HTTP/1.1 keep-alive client (this file; no dependency):
   CLIENTS = 32 concurrent connections, in two load shapes: closed loop (each client sends its
   next request as soon as the answer arrived: the saturation throughput) and paced (the 32
   clients together offer BENCH_PACED_RPS = 200 requests/s on a fixed schedule, about ten times
   the peak ordering rate of a large hospital; latency counted from the scheduled send time).
   /healthz (database + broker + cached platform probe) and the prompt API (a realistic order
   of 4 items: 2 exams, 2 lab panels, cycling over the pre-loaded visits) alternate in ROUNDS
   rounds of SECONDS each, after a warm-up, so both see the same machine;
4. prints p50, p99 and requests/s of each, PASS/FAIL against the targets (prompt rate >= 0.5 x
   /healthz at saturation; prompt p99 <= 50 ms at the paced load and at saturation), and
   checks that every prompt answer came from the cache (the simulator saw no new query during
   the load). The closed-loop p99 is mostly queueing (Little's law: latency ~ 32 / throughput),
   for /healthz as much as for the prompt; the exit status follows the paced figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
WARMUP = 3.0
PATIENTS = 40
PACED_RATE = float(os.environ.get("BENCH_PACED_RPS", "200"))
TOKEN = "bench-prompt-token"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/bench_prompt_api")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
TARGET_P99_MS, TARGET_RATIO = 50.0, 0.5
GUNICORN_ARGS = [
    "-c",
    "python:hospital_interop.gunicorn_conf",
    *os.environ.get("BENCH_GUNICORN_ARGS", "").split(),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer:\n{log.read_text(errors='replace')[-3000:]}")


def ensure_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = url.rsplit("/", 1)[1]
    conn = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()


def resident_id(n: int) -> str:
    first17 = f"110105{1950 + n % 50:04d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


# --------------------------------------------------------------------------- load generator


async def _worker(host, port, requests_, stop_at, lat, codes, offset, interval, first_at):
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    due = first_at
    try:
        while time.perf_counter() < stop_at:
            req = requests_[i % len(requests_)]
            i += 1
            if interval:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = due
                due += interval
            else:
                t0 = time.perf_counter()
            writer.write(req)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v)
                elif k == b"connection" and v.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            status = int(head[9:12])
            codes[status] = codes.get(status, 0) + 1
            if status == 200 and b'"source":"platform"' in body:
                codes["platform"] = codes.get("platform", 0) + 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _load(host, port, requests_, seconds, interval=None):
    lat: list[float] = []
    codes: dict = {}
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(
        *(
            _worker(
                host,
                port,
                requests_,
                stop_at,
                lat,
                codes,
                k * 7,
                interval,
                start + (interval or 0) * k / CLIENTS,
            )
            for k in range(CLIENTS)
        )
    )
    return lat, codes, time.perf_counter() - start


def load(host, port, requests_, seconds, rate=None):
    """Closed loop (rate None: each client sends again as soon as answered) or paced: the clients
    together offer `rate` requests/s, each on a fixed schedule; latency then counts from the
    scheduled send time, so a slow answer that delays the next send is not hidden."""
    return asyncio.run(_load(host, port, requests_, seconds, CLIENTS / rate if rate else None))


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()


def post_request(path: str, body: dict) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


# --------------------------------------------------------------------------- main


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-prompt-"))
    keys = tmp / "keys"
    procs: list[subprocess.Popen] = []

    def start(name, args, env):
        log = tmp / f"{name}.log"
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc, log

    try:
        sim_port = free_port()
        sim, sim_log = start(
            "simulator",
            [
                sys.executable,
                "-m",
                "simulators.platform",
                "--port",
                str(sim_port),
                "--db",
                str(tmp / "sim.sqlite3"),
                "--keys",
                str(keys),
                "--ensure-keys",
                "--reset",
            ],
            os.environ.copy(),
        )
        sim_url = f"http://127.0.0.1:{sim_port}"
        wait_http(sim_url + "/_sim/health", sim, sim_log)
        ensure_database(DATABASE_URL)
        env = {
            **os.environ,
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "HOSPITAL_INTEROP_VAR_DIR": str(tmp / "var"),
            "PLATFORM_BASE_URL": sim_url,
            "PLATFORM_PRIVATE_KEY_FILE": str(keys / "hospital_sm2.pem"),
            "PLATFORM_PUBLIC_KEY_FILE": str(keys / "platform_sm2_pub.pem"),
            "PLATFORM_SM4_KEY_FILE": str(keys / "sm4.key"),
            "PLATFORM_APP_SECRET_FILE": str(keys / "app_secret"),
            "PLATFORM_VIEWER_URL": sim_url + "/viewer/report",
            "RECOGNITION_API_TOKENS": TOKEN,
            "DJANGO_SETTINGS_MODULE": "hospital_interop.settings",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from dictionaries import demo
        from mutual_recognition import services

        call_command("migrate", verbosity=0)
        demo.load_all()
        import requests

        visits = []
        for n in range(PATIENTS):
            id_no = resident_id(9000 + n)
            requests.post(
                sim_url + "/_sim/seed",
                json={
                    "idNo": id_no,
                    "lab": ["肝功能", "血常规"],
                    "exam": ["JC0012", "JC0301"],
                    "replace": True,
                },
                timeout=10,
            )
            data = {
                "patient": {"patientId": f"B{n:05d}", "name": "压测患者", "idTypeCode": "01", "idNo": id_no},
                "visit": {"visitId": f"BENCH{n:05d}", "patientTypeCode": "1"},
            }
            enc = services.upsert_encounter(services.encounter_fields(data), event="registration")
            services.preload(enc.pk)
            visits.append(data)
        items = [
            {"kind": "exam", "itemCode": "CT0012", "orderId": "YZ1"},
            {"kind": "exam", "itemCode": "MR0121", "orderId": "YZ2"},
            {"kind": "lab", "itemCode": "GGN", "orderId": "YZ3"},
            {"kind": "lab", "itemCode": "XCG", "orderId": "YZ4"},
        ]
        prompt_reqs = [
            post_request("/recognition/api/prompt", {**v, "doctor": "D1001", "dept": "1001", "items": items})
            for v in visits
        ]
        random.Random(1).shuffle(prompt_reqs)
        health_reqs = [get_request("/healthz")]

        port = free_port()
        web, web_log = start(
            "gunicorn",
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "hospital_interop.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                *GUNICORN_ARGS,
            ],
            env,
        )
        wait_http(f"http://127.0.0.1:{port}/healthz", web, web_log)
        check = requests.post(
            f"http://127.0.0.1:{port}/recognition/api/prompt",
            data=prompt_reqs[0].split(b"\r\n\r\n", 1)[1],
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=10,
        ).json()
        assert check["source"] == "cache" and check["anyRecognizable"], check
        queries_before = requests.get(sim_url + "/_sim/stats", timeout=5).json()["queries"]

        load("127.0.0.1", port, health_reqs, WARMUP)
        load("127.0.0.1", port, prompt_reqs, WARMUP)
        results = {
            (mode, name): ([], {}, 0.0) for mode in ("closed", "paced") for name in ("healthz", "prompt")
        }
        for _ in range(ROUNDS):
            for mode in ("closed", "paced"):
                for name, reqs in (("healthz", health_reqs), ("prompt", prompt_reqs)):
                    lat, codes, elapsed = load(
                        "127.0.0.1", port, reqs, SECONDS, rate=PACED_RATE if mode == "paced" else None
                    )
                    acc = results[(mode, name)]
                    merged = dict(acc[1])
                    for k, v in codes.items():
                        merged[k] = merged.get(k, 0) + v
                    results[(mode, name)] = (acc[0] + lat, merged, acc[2] + elapsed)
        queries_after = requests.get(sim_url + "/_sim/stats", timeout=5).json()["queries"]

        from hospital_interop import gunicorn_conf

        print(
            f"\nprompt API vs /healthz in one run — gunicorn {' '.join(GUNICORN_ARGS)} (config: "
            f"{gunicorn_conf.workers} workers x {gunicorn_conf.threads} threads); {CLIENTS} concurrent "
            f"keep-alive clients (asyncio, this file); {ROUNDS} interleaved rounds x {SECONDS:.0f} s per row; "
            f"{os.cpu_count()} CPUs shared with the load generator; load average before: "
            f"{os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'load':<34}{'endpoint':<30}{'requests':>9}{'errors':>7}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}"
        )
        rates, p99s = {}, {}
        for (mode, name), (lat, codes, elapsed) in results.items():
            errors = sum(v for k, v in codes.items() if isinstance(k, int) and k != 200)
            rates[(mode, name)] = len(lat) / elapsed
            p99s[(mode, name)] = pct(lat, 99)
            label = "/healthz (anchor)" if name == "healthz" else "POST /recognition/api/prompt"
            load_label = (
                "closed loop (saturation)" if mode == "closed" else f"paced, {PACED_RATE:.0f} req/s offered"
            )
            print(
                f"{load_label:<34}{label:<30}{len(lat):>9}{errors:>7}{pct(lat, 50):>9.2f}{p99s[(mode, name)]:>9.2f}"
                f"{rates[(mode, name)]:>8.0f}"
            )
        ratio = rates[("closed", "prompt")] / rates[("closed", "healthz")]
        p99 = p99s[("paced", "prompt")]
        from_platform = sum(results[(m, "prompt")][1].get("platform", 0) for m in ("closed", "paced"))
        new_queries = {k: queries_after.get(k, 0) - queries_before.get(k, 0) for k in queries_after}
        ok_p99, ok_ratio = p99 <= TARGET_P99_MS, ratio >= TARGET_RATIO
        ok_cache = from_platform == 0 and not any(new_queries.values())
        print(
            f"prompt rate / healthz rate at saturation = {ratio:.2f} (target >= {TARGET_RATIO}): "
            f"{'PASS' if ok_ratio else 'FAIL'}"
        )
        print(
            f"prompt p99 at {PACED_RATE:.0f} req/s from {CLIENTS} clients = {p99:.2f} ms (target <= "
            f"{TARGET_P99_MS:.0f}): {'PASS' if ok_p99 else 'FAIL'}"
        )
        closed_p99 = p99s[("closed", "prompt")]
        print(
            f"prompt p99 at saturation, {CLIENTS} clients closed loop = {closed_p99:.2f} ms (target <= "
            f"{TARGET_P99_MS:.0f}): {'PASS' if closed_p99 <= TARGET_P99_MS else 'FAIL'}; /healthz "
            f"{p99s[('closed', 'healthz')]:.2f} ms (queueing: latency ~ clients / throughput)"
        )
        print(
            f"answers from the platform during the load: {from_platform}; new platform queries: "
            f"{sum(new_queries.values())}: {'PASS' if ok_cache else 'FAIL'}"
        )
        return 0 if ok_p99 and ok_ratio and ok_cache else 1
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


if __name__ == "__main__":
    sys.exit(main())
