"""pytest fixtures: the municipal platform simulator as a real process on loopback.

``platform_sim`` (session): demo keys in a temporary folder, the simulator started with its own
SQLite file on a free port, a handle with the URL, the key folder, a hospital-side
``PlatformConfig`` (3 s timeout) and the inspection / fault API. ``sim`` (function): the same
handle, with records, seeds, stats and faults reset before the test. ``platform_settings``: points
``settings.PLATFORM`` of a Django test at the simulator. ``answer_proxy`` (function): a man in the
middle on loopback between a client and the simulator, which can replay a captured answer or
serve a forged one.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "BJ-HOSP-0001"
ORG_CODE = "12110000400000000X"
START_TIMEOUT = 60.0


@dataclass
class PlatformSim:
    url: str
    key_dir: Path
    db: Path
    log: Path
    process: subprocess.Popen
    config: object  # hospital_interop.municipal.client.PlatformConfig
    http: requests.Session = field(default_factory=requests.Session)

    # -- hospital side -------------------------------------------------------------------------
    @property
    def viewer_url(self) -> str:
        return self.url + "/viewer/report"

    def make_config(self, **overrides):
        from hospital_interop.municipal.client import PlatformConfig

        kwargs = {
            "base_url": self.url,
            "app_id": APP_ID,
            "org_code": ORG_CODE,
            "private_key_file": self.key_dir / "hospital_sm2.pem",
            "platform_public_key_file": self.key_dir / "platform_sm2_pub.pem",
            "sm4_key_file": self.key_dir / "sm4.key",
            "app_secret_file": self.key_dir / "app_secret",
            "timeout": 3.0,
            "viewer_url": self.viewer_url,
        }
        kwargs.update(overrides)
        return PlatformConfig.from_files(**kwargs)

    def client(self, config=None, **overrides):
        """A new PlatformClient (own keep-alive session and time offset)."""
        from dataclasses import replace

        from hospital_interop.municipal.client import PlatformClient

        cfg = config or self.config
        if overrides:
            cfg = replace(cfg, **overrides)
        return PlatformClient(cfg)

    # -- inspection / fault API ----------------------------------------------------------------
    def _get(self, path: str, **params):
        r = self.http.get(self.url + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def _post(self, path: str, body=None):
        r = self.http.post(self.url + path, json=body if body is not None else {}, timeout=10)
        r.raise_for_status()
        return r.json()

    def records(self, code: str | None = None, include_voided: bool = True) -> list[dict]:
        params = {"include_voided": "1" if include_voided else "0"}
        if code:
            params["interface"] = code
        return self._get("/_sim/records", **params)["records"]

    def record(self, code: str, key) -> dict | None:
        """One record by business key (``"orgCode|reportId"`` or a tuple of the key values)."""
        if not isinstance(key, str):
            key = "|".join("" if v is None else str(v) for v in key)
        r = self.http.get(f"{self.url}/_sim/records/{code}/{requests.utils.quote(key, safe='')}", timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict:
        return self._get("/_sim/stats")

    def faults(self) -> dict:
        return self._get("/_sim/faults")["faults"]

    def set_faults(self, **faults) -> dict:
        """Replace the faults with these (``set_faults()`` clears them all); returns the new set."""
        return self._post("/_sim/faults", {**faults, "replace": True})["faults"]

    def reset(self) -> None:
        self._post("/_sim/reset")

    def seed(self, id_no: str, **body) -> dict:
        """Add external results for an ID number (``lab``/``exam`` counts or names, ``replace``...)."""
        return self._post("/_sim/seed", {"idNo": id_no, **body})

    def seeded(self, id_no: str, name: str | None = None) -> dict:
        params = {"idNo": id_no}
        if name:
            params["name"] = name
        return self._get("/_sim/seed", **params)

    def feedback(self, **params) -> list[dict]:
        return self._get("/_sim/feedback", **params)["feedback"]

    def add_feedback(self, *items: dict) -> list[dict]:
        return self._post("/_sim/feedback", {"items": list(items)})["feedback"]

    def raise_findings(self, *items: dict) -> list[dict]:
        """Data-quality findings (interfaces.md §G) the platform issues: ``{kind, serviceCode,
        businessKey, ...}`` each; returns them as the hospital's pull will see them."""
        return self._post("/_sim/qc/findings", {"items": list(items)})["findings"]

    def qc_findings(self) -> list[dict]:
        return self._get("/_sim/qc/findings")["findings"]

    def qc_replies(self, **params) -> list[dict]:
        """The QC_FEEDBACK_REPLY uploads the platform accepted (``feedbackId=`` filters)."""
        return self._get("/_sim/qc/replies", **params)["replies"]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def start_platform_simulator(base: Path, *, extra_args: tuple[str, ...] = ()) -> PlatformSim:
    """Start a simulator process under ``base`` (keys, db, log) and wait until it answers."""
    from hospital_interop.keys import ensure_demo_keys

    key_dir = base / "keys"
    ensure_demo_keys(key_dir)
    db, log = base / "platform-sim.sqlite3", base / "platform-sim.log"
    cmd = [
        sys.executable, "-m", "simulators.platform", "--host", "127.0.0.1", "--port", "0",
        "--db", str(db), "--keys", str(key_dir), "--app-id", APP_ID, "--org-code", ORG_CODE, "--seed", "20261127",
        *extra_args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    url = None
    while url is None:
        text = log.read_text(errors="replace")
        if "listening on " in text:
            url = text.split("listening on ", 1)[1].split()[0]
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"platform simulator did not start:\n{text[-4000:]}")
        time.sleep(0.05)
    sim = PlatformSim(url=url, key_dir=key_dir, db=db, log=log, process=proc, config=None)
    while True:
        try:
            sim._get("/_sim/health")
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(f"platform simulator does not answer:\n{sim.log_tail()}") from None
            time.sleep(0.05)
    sim.config = sim.make_config()
    return sim


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)  # gunicorn: quick shutdown (SIGTERM waits for idle keep-alives)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class Exchange:
    path: str
    request: bytes
    status: int
    answer: bytes
    forwarded: bool


class AnswerProxy:
    """A man in the middle on loopback: forwards every POST to the simulator and keeps each
    exchange; ``answer_with(path, body)`` makes it answer that path with ``body`` instead, without
    forwarding the request (a captured answer replayed, or an answer forged with a stolen key);
    ``forward_all()`` goes back to forwarding. Point a client's ``base_url`` at ``url``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.exchanges: list[Exchange] = []
        self._canned: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._http = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the platform

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = proxy._answer(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, path: str, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            canned = self._canned.get(path)
        if canned is not None:
            status, answer, forwarded = 200, canned, False
        else:
            r = self._http.post(
                self.target + path,
                data=body,
                timeout=10,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
            status, answer, forwarded = r.status_code, r.content, True
        with self._lock:
            self.exchanges.append(Exchange(path, body, status, answer, forwarded))
        return status, answer

    def answer_with(self, path: str, body: bytes | dict) -> None:
        if isinstance(body, dict):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        with self._lock:
            self._canned[path] = body

    def forward_all(self) -> None:
        with self._lock:
            self._canned.clear()

    def last(self, path: str) -> Exchange:
        return next(e for e in reversed(self.exchanges) if e.path == path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@pytest.fixture
def answer_proxy(sim):
    proxy = AnswerProxy(sim.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def platform_sim(request, tmp_path_factory):
    # PLATFORM_SIM_ARGS="--server gunicorn --workers 2" runs the suite against another set-up.
    extra = tuple(shlex.split(os.environ.get("PLATFORM_SIM_ARGS", "")))
    sim = start_platform_simulator(tmp_path_factory.mktemp("platform-sim"), extra_args=extra)
    yield sim
    stop_process(sim.process)
    if request.session.testsfailed:
        sys.__stderr__.write(f"\n---- platform simulator log ({sim.log}) ----\n{sim.log_tail()}\n")


@pytest.fixture
def sim(platform_sim):
    """The session's simulator with records, seeds, stats and faults cleared."""
    platform_sim.reset()
    return platform_sim


@pytest.fixture
def platform_settings(settings, platform_sim):
    """settings.PLATFORM pointing at the simulator (and the cached client config rebuilt)."""
    from hospital_interop.municipal.client import config_from_settings

    keys = platform_sim.key_dir
    settings.PLATFORM = {
        **settings.PLATFORM,
        "BASE_URL": platform_sim.url,
        "APP_ID": APP_ID,
        "ORG_CODE": ORG_CODE,
        "PRIVATE_KEY_FILE": str(keys / "hospital_sm2.pem"),
        "PLATFORM_PUBLIC_KEY_FILE": str(keys / "platform_sm2_pub.pem"),
        "SM4_KEY_FILE": str(keys / "sm4.key"),
        "APP_SECRET_FILE": str(keys / "app_secret"),
        "TIMEOUT_SECONDS": 3.0,
        "VIEWER_URL": platform_sim.viewer_url,
    }
    config_from_settings.cache_clear()
    yield settings.PLATFORM
    config_from_settings.cache_clear()
