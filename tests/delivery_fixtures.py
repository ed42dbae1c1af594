"""Real Celery worker and beat processes against the test database, the test Redis and the
platform simulator. Tests that use them run with ``django_db(transaction=True)`` so that their
rows are committed and visible to the workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def worker_env(platform_sim, **extra) -> dict:
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER'] or 'root'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        if connection.vendor == "postgresql"
        else f"sqlite:///{db['NAME']}",
        PLATFORM_BASE_URL=platform_sim.url,
        PLATFORM_PRIVATE_KEY_FILE=str(platform_sim.key_dir / "hospital_sm2.pem"),
        PLATFORM_PUBLIC_KEY_FILE=str(platform_sim.key_dir / "platform_sm2_pub.pem"),
        PLATFORM_SM4_KEY_FILE=str(platform_sim.key_dir / "sm4.key"),
        PLATFORM_APP_SECRET_FILE=str(platform_sim.key_dir / "app_secret"),
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Processes:
    """Starts and stops worker/beat processes; keeps their logs for a failing test's report."""

    def __init__(self, tmp: Path, platform_sim):
        self.tmp, self.platform_sim = tmp, platform_sim
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def _start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc, log))
        return proc

    def worker(self, concurrency: int = 1, **env) -> subprocess.Popen:
        proc = self._start(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hospital_interop",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"w{len(self.procs)}@%h",
            ],
            worker_env(self.platform_sim, **env),
        )
        self._wait_for_log(proc, "ready")
        return proc

    def beat(self, **env) -> subprocess.Popen:
        return self._start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hospital_interop",
                "beat",
                "--loglevel",
                "INFO",
            ],
            worker_env(self.platform_sim, **env),
        )

    def web(self, **env) -> str:
        """The web server as deployed: gunicorn with hospital_interop/gunicorn_conf.py (one worker, the
        access log on stdout) on a free loopback port; returns its base URL once it answers (/healthz
        may say 503 while no worker runs yet)."""
        import socket

        import requests

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {"WEB_BIND": f"127.0.0.1:{port}", "WEB_WORKERS": 1, "WEB_ACCESS_LOG": "-", **env}
        proc = self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:hospital_interop.gunicorn_conf",
                "hospital_interop.wsgi",
            ],
            worker_env(self.platform_sim, **env),
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                requests.get(url + "/healthz", timeout=2)
                return url
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"web server did not start:\n{self.logs()}")
            time.sleep(0.2)

    def _wait_for_log(self, proc, marker: str, timeout: float = 60) -> None:
        log = next(p[2] for p in self.procs if p[1] is proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if marker in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"process not ready in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")

    def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
        """Kill the whole process group (a prefork worker's children die with it, like a host crash)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(proc)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ({log.name}) ---\n{log.read_text(errors='replace')[-4000:]}"
            for name, _, log in self.procs
        )


@pytest.fixture
def processes(tmp_path, platform_sim, request):
    from django.conf import settings

    if settings.REDIS_URL:  # wake-ups left by earlier tests (no worker ran then) would queue ahead of ours
        import redis

        redis.Redis.from_url(settings.REDIS_URL).delete("celery")
    procs = Processes(tmp_path, platform_sim)
    yield procs
    procs.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(procs.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def wait_until(predicate, timeout: float, interval: float = 0.25, message: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def dead_broker():
    """This process's Celery app points at a broker nobody listens on, for the test's duration.
    kombu keeps connection pools in a process-wide registry keyed by URL: those are dropped on the
    way in and out, or switching back would hand out a closed pool."""
    import kombu.pools

    from hospital_interop.celery import app as celery_app

    def use(url):
        celery_app.conf.broker_url = url
        kombu.pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    original = celery_app.conf.broker_url
    use("redis://127.0.0.1:1/0")
    yield
    use(original)
