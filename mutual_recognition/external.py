"""External results of a patient: fetched from the platform (2.3.2.1, 3.1), cached per visit.

A *bundle* is what the prompt API reads in one cache round trip::

    {"v": 1, "visitId": ..., "idKey": ..., "fetchedAt": epoch seconds, "errors": [...],
     "exam": {standard code: [result, ...newest first]},
     "lab":  {standard code: [result, ...newest first]}}

Each result carries ``validUntil`` (yyyyMMdd): the earlier of the platform's date and the exam /
sample date plus the standard item's ``valid_days``. Readers drop results past that date, so
expiry is per item; the bundle's own TTL runs to the end of its latest result's window, capped
by RECOGNITION_CACHE_MAX_SECONDS (a short TTL when the platform could not be asked).
"""

from __future__ import annotations

import base64
import logging
import pickle
import threading
import time
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from hospital_interop import cachesafe
from hospital_interop.errors import InvalidInput
from hospital_interop.municipal.client import Outcome, PlatformClient, PlatformConfig

from . import conf, payloads

PDF_PREVIEW = "LAB_REPORT_PDF_PREVIEW"

log = logging.getLogger(__name__)

BUNDLE_VERSION = 1
ERROR_TTL_SECONDS = 60


def bundle_key(visit_id: str) -> str:
    return f"mr:v{BUNDLE_VERSION}:visit:{visit_id}"


# --------------------------------------------------------------------------- platform client

_local = threading.local()


def platform_client() -> PlatformClient:
    """One client per thread, rebuilt when the platform settings change (tests point them elsewhere)."""
    p = settings.PLATFORM
    fingerprint = (
        p["BASE_URL"],
        p["PRIVATE_KEY_FILE"],
        p["PLATFORM_PUBLIC_KEY_FILE"],
        p["SM4_KEY_FILE"],
        p["APP_ID"],
        p["ORG_CODE"],
        p["VIEWER_URL"],
    )
    client = getattr(_local, "client", None)
    if client is None or _local.fingerprint != fingerprint:
        config = PlatformConfig.from_files(
            base_url=p["BASE_URL"],
            app_id=p["APP_ID"],
            org_code=p["ORG_CODE"],
            private_key_file=p["PRIVATE_KEY_FILE"],
            platform_public_key_file=p["PLATFORM_PUBLIC_KEY_FILE"],
            sm4_key_file=p["SM4_KEY_FILE"],
            app_secret_file=p["APP_SECRET_FILE"],
            timeout=min(float(p["TIMEOUT_SECONDS"]), 8.0),
            viewer_url=p["VIEWER_URL"],
        )
        client = _local.client = PlatformClient.from_settings(config)  # answer nonces shared by all processes
        _local.fingerprint = fingerprint
    return client


# --------------------------------------------------------------------------- normalising


def _d8(value: str) -> str:
    return "".join(ch for ch in str(value or "") if (ch.isascii() and ch.isdigit()))[:8]


def _effective_until(platform_until: str, when: str, valid_days: int | None) -> str:
    until = _d8(platform_until) or "99991231"
    if valid_days and len(_d8(when)) == 8:
        w = _d8(when)
        local = (date(int(w[:4]), int(w[4:6]), int(w[6:8])) + timedelta(days=valid_days)).strftime("%Y%m%d")
        until = min(until, local)
    return until


def normalise_exam(items: list[dict], valid_days: dict[str, int]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for it in items:
        code = it.get("recognitionItemCode", "")
        out.setdefault(code, []).append(
            {
                "org": it.get("externalOrgCode", ""),
                "orgName": it.get("externalOrgName", ""),
                "reportId": it.get("reportId", ""),
                "name": it.get("recognitionItemName", ""),
                "category": it.get("examCategoryName", ""),
                "bodyPart": it.get("bodyPartName", ""),
                "at": it.get("examDateTime", ""),
                "reportAt": it.get("reportDateTime", ""),
                "findings": it.get("findings", ""),
                "impression": it.get("impression", ""),
                "resultCode": it.get("resultCode", ""),
                "resultName": it.get("resultName", ""),
                "studyUid": it.get("studyInstanceUid", ""),
                "images": it.get("imageCount"),
                "validUntil": _effective_until(
                    it.get("validUntil", ""), it.get("examDateTime", ""), valid_days.get(code)
                ),
            }
        )
    for results in out.values():
        results.sort(key=lambda r: r["at"], reverse=True)
    return out


def normalise_lab(reports: list[dict], valid_days: dict[str, int]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rep in reports:
        for it in rep.get("items") or ():
            code = it.get("recognitionItemCode", "")
            out.setdefault(code, []).append(
                {
                    "org": rep.get("externalOrgCode", ""),
                    "orgName": rep.get("externalOrgName", ""),
                    "reportId": rep.get("reportId", ""),
                    "title": rep.get("reportTitle", ""),
                    "specimen": rep.get("specimenTypeName", ""),
                    "at": rep.get("sampleDateTime", ""),
                    "reportAt": rep.get("reportDateTime", ""),
                    "itemCode": it.get("itemCode", ""),
                    "itemName": it.get("itemName", ""),
                    "name": it.get("recognitionItemName", ""),
                    "value": it.get("resultValue", ""),
                    "unit": it.get("unit", ""),
                    "range": it.get("referenceRange", ""),
                    "flag": it.get("abnormalFlagCode", ""),
                    "flagName": it.get("abnormalFlagName", ""),
                    "validUntil": _effective_until(
                        it.get("validUntil", ""), rep.get("sampleDateTime", ""), valid_days.get(code)
                    ),
                }
            )
    for results in out.values():
        results.sort(key=lambda r: r["at"], reverse=True)
    return out


def today_d8() -> str:
    return timezone.localdate().strftime("%Y%m%d")


def valid(results: list[dict], today: str) -> list[dict]:
    return [r for r in results if r["validUntil"] >= today]


# --------------------------------------------------------------------------- fetch and cache


def fetch(enc, valid_days: dict[str, int]) -> dict:
    """Ask the platform for both kinds of external results of an encounter; never raises."""
    bundle = {
        "v": BUNDLE_VERSION,
        "visitId": enc.visit_id,
        "idKey": enc.id_key,
        "fetchedAt": time.time(),
        "errors": [],
        "exam": {},
        "lab": {},
    }
    client = platform_client()
    for kind in ("exam", "lab"):
        code, payload = payloads.query_payload(kind, enc)
        try:
            result = client.call(code, payload)
        except Exception as exc:  # a bug or a spec problem: the prompt degrades, it never fails the HIS
            log.exception("recognition query %s failed", code)
            bundle["errors"].append(
                {"kind": kind, "code": "", "message": f"{type(exc).__name__}: {exc}"[:200]}
            )
            continue
        if result.outcome != Outcome.ACCEPTED or not isinstance(result.data, dict):
            log.warning(
                "recognition query %s for visit %s: %s %s", code, enc.visit_id, result.code, result.message
            )
            bundle["errors"].append({"kind": kind, "code": result.code, "message": result.message[:200]})
            continue
        if kind == "exam":
            bundle["exam"] = normalise_exam(result.data.get("items") or [], valid_days)
        else:
            bundle["lab"] = normalise_lab(result.data.get("reports") or [], valid_days)
    return bundle


def ttl_for(bundle: dict, now: datetime | None = None) -> int:
    if bundle["errors"]:
        return ERROR_TTL_SECONDS
    cap = conf.cache_max_seconds()
    latest = max(
        (r["validUntil"] for kind in ("exam", "lab") for rs in bundle[kind].values() for r in rs), default=""
    )
    if not latest or latest == "99991231":
        return cap
    now = timezone.localtime(now)
    end = timezone.make_aware(
        datetime(int(latest[:4]), int(latest[4:6]), int(latest[6:8])) + timedelta(days=1)
    )
    return max(ERROR_TTL_SECONDS, min(cap, int((end - now).total_seconds())))


def store(bundle: dict) -> bool:
    """Keep the bundle for later prompts; False when the cache is down (the answer stands)."""
    return cachesafe.cached(
        lambda: cache.set(bundle_key(bundle["visitId"]), bundle, ttl_for(bundle)),
        what="store external results",
    )[1]


def cached(visit_id: str) -> dict | None:
    return cachesafe.cached(lambda: cache.get(bundle_key(visit_id)), what="read external results")[0]


# --------------------------------------------------------------------------- hot-path read

_raw: dict = {}


def _raw_client():
    """A process-wide redis client on the cache's server, when the cache is Redis (else None).

    Django's cache API builds a client object per call; the prompt API reads two keys on every
    order, so it talks to the same server and keys directly (one MGET), decoding values the way
    Django's RedisCache stores them (ints raw, everything else pickled).
    """
    location = settings.CACHES["default"].get("LOCATION", "")
    backend = settings.CACHES["default"].get("BACKEND", "")
    if not backend.endswith("RedisCache") or not isinstance(location, str):
        return None
    client = _raw.get(location)
    if client is None:
        import redis

        options = settings.CACHES["default"].get("OPTIONS", {})
        client = _raw[location] = redis.Redis.from_url(
            location,
            socket_connect_timeout=options.get("socket_connect_timeout", 1.0),
            socket_timeout=options.get("socket_timeout", 2.0),
        )
    return client


def _decode(value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return pickle.loads(value)


def read_for_prompt(visit_id: str, version_key: str) -> tuple[dict | None, int, bool]:
    """(bundle of the visit, dictionaries version, cache reachable) in one round trip to the cache;
    with the cache down: (None, 0, False), and the caller fetches from the platform."""
    (bundle, version), ok = cachesafe.cached(
        lambda: _read_for_prompt(visit_id, version_key), (None, 0), what="prompt read"
    )
    return bundle, version, ok


def _read_for_prompt(visit_id: str, version_key: str) -> tuple[dict | None, int]:
    key = bundle_key(visit_id)
    client = _raw_client()
    if client is None:
        got = cache.get_many([key, version_key])
        return got.get(key), got.get(version_key) or 0
    bundle, version = client.mget(
        [cache.make_and_validate_key(key), cache.make_and_validate_key(version_key)]
    )
    return _decode(bundle), _decode(version) or 0


# --------------------------------------------------------------------------- one report's PDF


class PdfUnavailable(Exception):
    """The platform cannot give the PDF now; ``message`` is Chinese, for the page."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def lab_report_pdf(org_code: str, report_id: str, *, doctor_id: str, doctor_name: str) -> bytes:
    """A lab report's PDF from the platform (3.5 检验报告pdf预览), for whoever may see it: the one
    way the project shows another hospital's (or its own uploaded) lab PDF. InvalidInput for a bad
    organisation code or report number, PdfUnavailable when the platform has none to give. The
    caller audits the view (``services.record_report_view``) once it has the bytes."""
    facts = {
        "orgCode": org_code,
        "reportId": report_id,
        "requestOrgCode": settings.PLATFORM["ORG_CODE"],
        "doctorId": doctor_id[:20],
        "doctorName": doctor_name[:50],
    }
    payload = payloads.for_interface(PDF_PREVIEW, facts)
    if problems := payloads.spec(PDF_PREVIEW).validate(payload):
        raise InvalidInput(problems)
    result = platform_client().call(PDF_PREVIEW, payload)
    content = (result.data or {}).get("fileContent") if result.outcome == Outcome.ACCEPTED else None
    if not content:
        raise PdfUnavailable(
            f"市平台暂时无法提供该报告（{result.code or '网络'}：{result.message}），请稍后再试。"
        )
    return base64.b64decode(content)
