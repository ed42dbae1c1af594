"""Transport to the municipal platform: seal, post, verify the signed answer, classify.

``PlatformClient.call`` never raises for a platform or network failure: it returns a
``CallResult`` whose ``outcome`` tells the delivery engine what to do (accepted, retry, needs
attention). The code table is the protocol's (platform-protocol.md §3); the client itself
absorbs the two codes that only need a fresh request (1002 after a time refresh, 1003 with a
new nonce) with one immediate second try.

An answer is believed only if it is checked like a request (§3): signed with the platform's key,
its ``timestamp`` within the interface profile's ``timestampWindowSeconds`` of platform time (the
local clock plus the measured offset), and its ``nonce`` never seen before by any worker sharing
the client's nonce store. Otherwise the call is a failed, retryable one (``refused_answer`` says
which check failed); a captured ``code 0`` replayed for another record is never an acceptance.
An answer outside the window also has the platform clock measured again and the request sent
once more at once, as for a 1002: the offset may simply be out of date.

The timestamp service's answer (§5) is signed and its nonce is checked, but its timestamp cannot
be held to the window: it is the measurement the window is computed from, and the platform's clock
may really have moved (that is what a 1002 tells). It must agree with its own ``data.timestamp``.
What remains open: a time answer captured longer ago than the nonce TTL and replayed could shift
the offset backwards, making answers of that age look fresh; closing that needs a client
challenge echoed by the time service, which the reference profile does not have.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import urllib3

from . import envelope, gm
from .specs import load_catalogue

log = logging.getLogger(__name__)
PLATFORM_TZ = ZoneInfo("Asia/Shanghai")
JSON_UTF8 = "application/json; charset=utf-8"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    ATTENTION = "attention"


# code → (outcome, Chinese meaning); anything not listed needs a person.
CODE_TABLE: dict[str, tuple[Outcome, str]] = {
    "0": (Outcome.ACCEPTED, "成功"),
    "1001": (Outcome.ATTENTION, "签名无效：请检查密钥配置"),
    "1002": (Outcome.RETRY, "时间戳超出允许范围"),
    "1003": (Outcome.RETRY, "随机数重复"),
    "1004": (Outcome.ATTENTION, "解密或解压失败：请检查 SM4 密钥与压缩配置"),
    "2001": (Outcome.ATTENTION, "业务校验未通过"),
    "2002": (Outcome.ATTENTION, "引用的记录在平台上不存在"),
    "3001": (Outcome.RETRY, "平台限流"),
    "5000": (Outcome.RETRY, "平台内部错误"),
}
IMMEDIATE_RETRY_CODES = ("1002", "1003")
# A query's result that does not match the interface's response spec (a person looks: not retried)
ANSWER_OFF_SPEC = "平台应答不符合接口规范"

# Why an answer was not believed: the protocol code of the check it failed → reason for ops.
REFUSED_ANSWER_REASONS: dict[str, str] = {
    "1001": "应答未签名或签名无效",
    "1002": "应答时间戳超出允许范围（过期、超前或被重放的应答）",
    "1003": "应答随机数重复（被重放的应答）",
    "1004": "应答数据无法解密或解压",
}


@dataclass
class CallResult:
    outcome: Outcome
    code: str = ""  # the platform's code; empty when no signed answer came back
    message: str = ""
    data: dict | None = None
    errors: list[dict] = field(default_factory=list)
    retry_after: float | None = None  # seconds, from 3001
    http_status: int | None = None
    elapsed_ms: float = 0.0
    # an answer came but was not believed: the code of the check it failed (REFUSED_ANSWER_REASONS)
    refused_answer: str = ""

    @property
    def receipt(self) -> str:
        return str((self.data or {}).get("receiptId", "")) if isinstance(self.data, dict) else ""


@dataclass(frozen=True)
class PlatformConfig:
    base_url: str
    app_id: str
    org_code: str
    sm4_key: bytes
    private_key: gm.SM2PrivateKey
    platform_public_key: gm.SM2PublicKey
    app_secret: bytes | None = None
    timeout: float = 10.0
    viewer_url: str = ""

    @property
    def credentials(self) -> envelope.Credentials:
        return envelope.Credentials(
            app_id=self.app_id,
            org_code=self.org_code,
            sm4_key=self.sm4_key,
            private_key=self.private_key,
            peer_public_key=self.platform_public_key,
            app_secret=self.app_secret,
        )

    @classmethod
    def from_files(
        cls,
        *,
        base_url,
        app_id,
        org_code,
        private_key_file,
        platform_public_key_file,
        sm4_key_file,
        app_secret_file=None,
        timeout=10.0,
        viewer_url="",
    ) -> PlatformConfig:
        secret_path = Path(app_secret_file) if app_secret_file else None
        return cls(
            base_url=base_url.rstrip("/"),
            app_id=app_id,
            org_code=org_code,
            sm4_key=bytes.fromhex(Path(sm4_key_file).read_text().strip()),
            private_key=gm.load_private_key_pem(Path(private_key_file).read_bytes()),
            platform_public_key=gm.load_public_key_pem(Path(platform_public_key_file).read_bytes()),
            app_secret=secret_path.read_bytes().strip() if secret_path and secret_path.exists() else None,
            timeout=timeout,
            viewer_url=viewer_url,
        )


class DjangoCacheNonceStore:
    """Seen answer nonces in Django's cache, shared by every web and worker process using it.

    ``cache.add`` is atomic on the Redis backend (``SET NX EX``): of two workers seeing the same
    answer, one wins. (The file-based cache of the embedded demo is shared by the processes of one
    host but its ``add`` is not atomic; production runs with ``REDIS_URL``.)
    """

    def __init__(self, ttl: int, alias: str = "default", prefix: str = "municipal:answer-nonce:") -> None:
        self.ttl, self.alias, self.prefix = int(ttl), alias, prefix
        self.fallback = envelope.MemoryNonceCache(self.ttl)

    def add(self, app_id: str, nonce: str) -> bool:
        """With the cache down, nonces are remembered in this process only (a replay to another
        process during the outage is not caught; uploads and prompts keep working)."""
        from django.core.cache import caches

        from hospital_interop import cachesafe

        added, ok = cachesafe.cached(
            lambda: caches[self.alias].add(f"{self.prefix}{app_id}:{nonce}", 1, timeout=self.ttl),
            what="answer nonces",
        )
        return bool(added) if ok else self.fallback.add(app_id, nonce)


def nonce_ttl(catalogue) -> int:
    """How long a client remembers an answer nonce: the longest ``nonceTtlSeconds`` of any
    interface profile (each is at least twice its window, so a replay inside a window is caught)."""
    return max((spec.profile.nonce_ttl_seconds for spec in catalogue.interfaces), default=600)


@cache
def config_from_settings() -> PlatformConfig:
    from django.conf import settings

    p = settings.PLATFORM
    return PlatformConfig.from_files(
        base_url=p["BASE_URL"],
        app_id=p["APP_ID"],
        org_code=p["ORG_CODE"],
        private_key_file=p["PRIVATE_KEY_FILE"],
        platform_public_key_file=p["PLATFORM_PUBLIC_KEY_FILE"],
        sm4_key_file=p["SM4_KEY_FILE"],
        app_secret_file=p["APP_SECRET_FILE"],
        timeout=p["TIMEOUT_SECONDS"],
        viewer_url=p["VIEWER_URL"],
    )


class PlatformClient:
    """One per thread or process (it keeps a keep-alive HTTP session and the time offset).

    ``nonce_store`` remembers the answer nonces seen (``envelope.NonceStore``); the default is
    in-process, :meth:`from_settings` shares it across processes through Django's cache.
    """

    TIME_OFFSET_MAX_AGE = 600.0  # seconds before the offset is measured again

    def __init__(
        self,
        config: PlatformConfig,
        catalogue=None,
        nonce_store: envelope.NonceStore | None = None,
        connections: int = 4,
    ):
        self.config = config
        self.catalogue = catalogue or load_catalogue()
        self.nonces = nonce_store or envelope.MemoryNonceCache(nonce_ttl(self.catalogue))
        # urllib3 directly: a keep-alive pool without requests' per-call overhead (~1.5 ms CPU)
        # ``connections``: kept open per host, at least the calls made at once (pipelined delivery)
        self.http = urllib3.PoolManager(
            maxsize=connections, retries=False, headers={"Content-Type": JSON_UTF8}
        )
        self.timeout = urllib3.Timeout(connect=min(config.timeout, 5.0), read=config.timeout)
        self._offset: timedelta | None = None
        self._offset_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, config: PlatformConfig | None = None) -> PlatformClient:
        """The client of a web or worker process: ``settings.PLATFORM`` (or ``config``), and the
        answer nonces shared with every other process through Django's cache; a keep-alive
        connection for each of a worker's pipelined sends (``DELIVERY["PIPELINE"]``)."""
        from django.conf import settings

        catalogue = load_catalogue()
        return cls(
            config or config_from_settings(),
            catalogue,
            DjangoCacheNonceStore(nonce_ttl(catalogue)),
            connections=max(4, settings.DELIVERY["PIPELINE"]),
        )

    # -- platform time -------------------------------------------------------------------------
    def refresh_time(self) -> timedelta:
        """Measure the platform clock (§5 timestamp service) and keep the offset.

        The answer must be signed and its nonce new; its timestamp is not held to the window
        (it is the measurement), only to its own ``data.timestamp`` (see the module docstring).
        """
        spec = self.catalogue.interface("SECURITY_TIMESTAMP")
        sent = time.time()
        response = self._post(spec.path, json.dumps({"appId": self.config.app_id}).encode())
        received = time.time()
        if response.status != 200:
            raise RuntimeError(f"timestamp service answered HTTP {response.status}")
        answer = envelope.open_response(
            json.loads(response.data),
            creds=self.config.credentials,
            profile=spec.profile,
            now=None,
            nonce_cache=self.nonces,
        )
        if answer.code != "0":
            raise RuntimeError(f"timestamp service answered {answer.code} {answer.message}")
        platform = envelope.parse_timestamp(answer.data["timestamp"])
        if abs((platform - answer.timestamp).total_seconds()) > spec.profile.timestamp_window_seconds:
            raise RuntimeError(
                "timestamp service answer: data.timestamp disagrees with the envelope timestamp"
            )
        local_mid = datetime.fromtimestamp((sent + received) / 2, tz=platform.tzinfo)
        with self._lock:
            self._offset = platform - local_mid
            self._offset_at = time.monotonic()
        return self._offset

    def platform_now(self) -> datetime:
        if self._offset is None or time.monotonic() - self._offset_at > self.TIME_OFFSET_MAX_AGE:
            try:
                self.refresh_time()
            except Exception as exc:  # keep working on the local clock; 1002 will tell if it is off
                log.warning("platform time unavailable, using local clock: %s", exc)
                with self._lock:
                    self._offset, self._offset_at = timedelta(0), time.monotonic()
        return datetime.now(PLATFORM_TZ) + self._offset

    def _platform_clock(self) -> datetime:
        """Platform time with the offset as it is (no measuring): what answers are checked against."""
        return datetime.now(PLATFORM_TZ) + (self._offset or timedelta(0))

    def _post(self, path: str, body: bytes):
        return self.http.request("POST", self.config.base_url + path, body=body, timeout=self.timeout)

    # -- calls ---------------------------------------------------------------------------------
    def call(self, interface_code: str, payload: dict) -> CallResult:
        """Send one upload or query; never raises. Retries once at once on 1002/1003 and on an
        answer outside the time window (after measuring the platform clock again)."""
        spec = self.catalogue.interface(interface_code)
        result = self._call_once(spec, payload)
        clock_off = result.code == "1002" or result.refused_answer == "1002"
        if result.code in IMMEDIATE_RETRY_CODES or clock_off:
            if clock_off:
                try:
                    self.refresh_time()
                except Exception as exc:
                    log.warning("time refresh after 1002 failed: %s", exc)
            result = self._call_once(spec, payload)
        return result

    def _call_once(self, spec, payload: dict) -> CallResult:
        started = time.perf_counter()
        try:
            sealed = envelope.seal_request(
                payload,
                service_code=spec.code,
                version=spec.version,
                creds=self.config.credentials,
                profile=spec.profile,
                timestamp=envelope.format_timestamp(self.platform_now()),
            )
            body = envelope.json_bytes(sealed, envelope.DUMPS_COMPACT)  # json.dumps's bytes, faster
            response = self._post(spec.path, body)
        except urllib3.exceptions.NewConnectionError as exc:  # (a subclass of the timeout error)
            return CallResult(
                Outcome.RETRY, message=f"无法连接市平台：{type(exc).__name__}", elapsed_ms=_ms(started)
            )
        except urllib3.exceptions.TimeoutError:
            return CallResult(Outcome.RETRY, message="请求超时", elapsed_ms=_ms(started))
        except urllib3.exceptions.HTTPError as exc:
            return CallResult(
                Outcome.RETRY, message=f"无法连接市平台：{type(exc).__name__}", elapsed_ms=_ms(started)
            )
        if response.status != 200:
            return CallResult(
                Outcome.RETRY,
                message=f"HTTP {response.status}",
                http_status=response.status,
                elapsed_ms=_ms(started),
            )
        try:
            answer = envelope.open_response(
                envelope.json_loads(response.data),
                creds=self.config.credentials,
                profile=spec.profile,
                now=self._platform_clock(),
                nonce_cache=self.nonces,
            )
        except (ValueError, envelope.EnvelopeError) as exc:
            # unsigned, forged, stale, future-dated or replayed: a failed call, never a success
            check = exc.code if isinstance(exc, envelope.EnvelopeError) else "1001"
            detail = exc.detail if isinstance(exc, envelope.EnvelopeError) else "not JSON"
            log.warning("platform answer for %s refused (%s): %s", spec.code, check, detail)
            return CallResult(
                Outcome.RETRY,
                message=f"应答无效：{REFUSED_ANSWER_REASONS.get(check, '应答无法验证')}，未采信，稍后重试（{detail}）",
                http_status=200,
                elapsed_ms=_ms(started),
                refused_answer=check,
            )
        outcome, meaning = CODE_TABLE.get(answer.code, (Outcome.ATTENTION, "未知返回码"))
        data = (
            answer.data
            if isinstance(answer.data, dict)
            else ({"items": answer.data} if answer.data else None)
        )
        if (
            outcome == Outcome.ACCEPTED
            and spec.kind == "query"
            and (problems := spec.validate_response(data))
        ):
            # a result the pages and services would read as the spec says: not believed as it is
            log.warning(
                "platform answer for %s does not match its spec at %s",
                spec.code,
                ", ".join(p["field"] or "data" for p in problems[:5]),
            )
            detail = "；".join(p["message"] for p in problems[:3])
            return CallResult(
                Outcome.ATTENTION,
                code=answer.code,
                message=f"{ANSWER_OFF_SPEC}：{detail}"[:2000],
                http_status=200,
                elapsed_ms=_ms(started),
            )
        errors = _field_errors((data or {}).get("errors")) if answer.code == "2001" else []
        retry_after = _wait_seconds((data or {}).get("retryAfter")) if answer.code == "3001" else None
        return CallResult(
            outcome,
            code=answer.code,
            message=answer.message or meaning,
            data=data,
            errors=errors,
            retry_after=retry_after,
            http_status=200,
            elapsed_ms=_ms(started),
        )


def _wait_seconds(value) -> float:
    """A 3001's ``retryAfter``: a positive, finite number of seconds (a JSON number or numeric
    text), else the protocol's default of 1 s. (Text or a list raised out of ``call``; an infinite wait
    overflowed the next attempt's date.)"""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 1.0
    return float(value) or 1.0


def _field_errors(value) -> list[dict]:
    """A 2001's ``errors``: its ``{field, rule, message}`` objects; anything else is dropped."""
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
