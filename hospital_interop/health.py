"""Reachability checks behind /healthz. Each returns {"ok": bool, "ms": float, ...detail}."""

import threading
import time

import requests
from django.conf import settings
from django.db import connection

from .celery import app as celery_app

PLATFORM_PROBE_TTL_SECONDS = 10.0
_platform_cache: dict = {}
_platform_lock = threading.Lock()


def _timed(check):
    start = time.perf_counter()
    try:
        result = {"ok": True, **check()}  # a check may say ok False itself
    except Exception as exc:  # a health check reports every failure, it never raises
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


_broker_connections: dict = {}  # broker URL -> this process's probe connection
_broker_lock = threading.Lock()


def _broker():
    """A real round trip to the broker on a connection of the probe's own: never one from the
    app's pool (a probe must not share, or leave closed, what carries the workers' wake-ups),
    kept open between probes and dropped on any error so the next probe reconnects."""
    url = settings.CELERY_BROKER_URL
    with _broker_lock:
        conn = _broker_connections.get(url)
        if conn is None:
            conn = _broker_connections[url] = celery_app.connection_for_write(url=url)
        try:
            conn.ensure_connection(max_retries=1, timeout=2)
            if conn.transport.driver_type == "redis":
                conn.default_channel.client.ping()
        except Exception:
            del _broker_connections[url]
            conn.release()
            raise
        return {"transport": conn.transport.driver_type}


def _platform():
    url = settings.PLATFORM["BASE_URL"].rstrip("/") + "/security/timestamp"
    response = requests.post(url, json={"appId": settings.PLATFORM["APP_ID"]}, timeout=2)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code} from {url}")
    return {"url": settings.PLATFORM["BASE_URL"]}


def platform_status() -> dict:
    """The platform probe is a network round trip: reuse its answer for a few seconds."""
    now = time.monotonic()
    with _platform_lock:
        cached = _platform_cache.get("result")
        if cached and now - _platform_cache["at"] < PLATFORM_PROBE_TTL_SECONDS:
            return cached
    result = _timed(_platform)
    with _platform_lock:
        _platform_cache.update(result=result, at=now)
    return result


def _sweep():
    """The delivery sweep's heartbeat: late (not ok) after two intervals without a sweep."""
    from .uploads.selectors import sweep_status

    status = sweep_status()
    status.pop("by_interface")
    status.pop("last_run_at")
    if status["late"]:
        status["error"] = (
            f"投递巡检已 {status['age_seconds']:.0f} 秒未运行（应每 {status['interval_seconds']:.0f} 秒一次），"
            f"{status['due_unclaimed']} 条到期记录无人派发：请检查 celery beat 与 worker 进程"
        )
    return status


def health() -> tuple[bool, dict]:
    """(healthy, report). Healthy means database and broker work and the delivery sweep runs; the
    platform being down delays uploads (they wait in the outbox) but does not make this server
    unhealthy."""
    checks = {
        "database": _timed(_database),
        "broker": _timed(_broker),
        "sweep": _timed(_sweep),
        "platform": platform_status(),
    }
    healthy = checks["database"]["ok"] and checks["broker"]["ok"] and checks["sweep"]["ok"]
    status = "ok" if healthy and checks["platform"]["ok"] else ("degraded" if healthy else "error")
    return healthy, {"status": status, "checks": checks}
