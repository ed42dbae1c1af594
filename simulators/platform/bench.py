"""Throughput of the platform simulator with the real PlatformClient.

    python -m simulators.platform.bench [--records 600] [--server builtin|gunicorn]

Starts a simulator (fresh keys and database in a temporary folder, free port), then uploads
EXAM_RECOGNITION_SUBMIT records (about 1 KiB of JSON each): sequentially from one client, then
from 2 clients in separate processes and from 2 threads of one process. Prints uploads/s and the
simulator's CPU time per upload (the figure that does not depend on what else the machine runs).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CODE = "EXAM_RECOGNITION_SUBMIT"
CHECKOUT = Path(__file__).resolve().parents[2]  # ``python -m simulators.platform`` runs from here


def _client(url: str, keys: Path):
    from hospital_interop.municipal.client import PlatformClient, PlatformConfig

    config = PlatformConfig.from_files(
        base_url=url,
        app_id="BJ-HOSP-0001",
        org_code="12110000400000000X",
        private_key_file=keys / "hospital_sm2.pem",
        platform_public_key_file=keys / "platform_sm2_pub.pem",
        sm4_key_file=keys / "sm4.key",
        app_secret_file=keys / "app_secret",
        timeout=30,
    )
    client = PlatformClient(config)
    client.refresh_time()
    return client


def _upload(url: str, keys: Path, first_seed: int, n: int, start=None, out=None):
    from hospital_interop.municipal.specs import load_catalogue

    client, spec = _client(url, keys), load_catalogue().interface(CODE)
    payloads = [spec.example(first_seed + i) for i in range(n)]
    if start is not None:
        start.wait()
    t0 = time.perf_counter()
    ok = sum(client.call(CODE, p).code == "0" for p in payloads)
    result = (ok, t0, time.perf_counter())
    if out is not None:
        out.put(result)
    return result


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(pid: int) -> float:
    try:  # gunicorn: the master and its workers
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    pids = [pid, *children]
    return sum(_cpu_seconds(p) for p in pids)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.platform.bench")
    parser.add_argument("--records", type=int, default=600, help="uploads per client and run")
    parser.add_argument("--server", choices=("builtin", "gunicorn"), default="builtin")
    opts = parser.parse_args(argv)

    from hospital_interop.keys import ensure_demo_keys
    from hospital_interop.municipal.specs import load_catalogue

    tmp = Path(tempfile.mkdtemp(prefix="platform-sim-bench-"))
    keys = tmp / "keys"
    ensure_demo_keys(keys)
    log = tmp / "sim.log"
    cmd = [
        sys.executable,
        "-m",
        "simulators.platform",
        "--port",
        "0",
        "--db",
        str(tmp / "sim.sqlite3"),
        "--keys",
        str(keys),
        "--server",
        opts.server,
    ]
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=CHECKOUT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while "listening on " not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"simulator did not start:\n{log.read_text()}")
            time.sleep(0.05)
        url = log.read_text().split("listening on ")[1].split()[0]
        size = len(json.dumps(load_catalogue().interface(CODE).example(1), ensure_ascii=False).encode())
        n = opts.records
        print(f"{CODE} payload {size} bytes JSON; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")

        def report(label, results, cpu):
            ok = sum(r[0] for r in results)
            elapsed = max(r[2] for r in results) - min(r[1] for r in results)
            print(
                f"{label:<34} {ok / elapsed:7.0f} uploads/s   simulator CPU {cpu / ok * 1000:5.2f} ms/upload"
            )

        cpu0 = _server_cpu(proc.pid)
        result = _upload(url, keys, 1_000_000, n)
        report("sequential, 1 client", [result], _server_cpu(proc.pid) - cpu0)

        queue, start = mp.Queue(), mp.Event()
        workers = [
            mp.Process(target=_upload, args=(url, keys, 2_000_000 + i * 100_000, n, start, queue))
            for i in range(2)
        ]
        for w in workers:
            w.start()
        time.sleep(3)  # let both load their catalogue and keys
        cpu0 = _server_cpu(proc.pid)
        start.set()
        results = [queue.get() for _ in workers]
        for w in workers:
            w.join()
        report("2 clients (2 processes)", results, _server_cpu(proc.pid) - cpu0)

        results, tstart = [], threading.Event()
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(_upload(url, keys, 3_000_000 + i * 100_000, n, tstart))
            )
            for i in range(2)
        ]
        for t in threads:
            t.start()
        time.sleep(3)
        cpu0 = _server_cpu(proc.pid)
        tstart.set()
        for t in threads:
            t.join()
        report("2 clients (2 threads, 1 process)", results, _server_cpu(proc.pid) - cpu0)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
