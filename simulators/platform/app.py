"""The platform simulator as a WSGI application.

Routes:

* ``POST <interface path>`` for every interface of the catalogue (``catalogue.by_path``): the
  wire protocol of platform-protocol.md, answered with signed envelopes;
* ``GET /viewer/report?...`` the report viewer behind signed browse links;
* ``/_sim/...`` the inspection and fault-injection API for tests and demos (plain JSON);
* ``GET /`` and ``/console/...`` the joint-debugging console (``console.py``), whose journal
  (``journal.py``) keeps every protocol request with its decrypted payload and the answer given.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hospital_interop.municipal import envelope, gm
from hospital_interop.municipal.envelope import Credentials, EnvelopeError, LinkExpiredError
from hospital_interop.municipal.profile import DEFAULT_PROFILE
from hospital_interop.municipal.specs import load_catalogue

from . import viewer
from .common import (
    MESSAGES,
    Answer,
    HttpError,
    field_error,
    html_response,
    id_no_of,
    json_response,
    key_string,
    read_body,
    status_line,
)
from .console import Console
from .faults import Draw, Faults, FaultState
from .inspection import Inspection
from .journal import Journal
from .quality import REPLY, Quality
from .queries import Queries
from .store import SqliteNonceCache, Store

log = logging.getLogger("simulators.platform")

DEFAULT_APP_ID = "BJ-HOSP-0001"
DEFAULT_ORG_CODE = "12110000400000000X"


@dataclass(frozen=True)
class SimulatorConfig:
    db: Path
    keys: Path
    app_id: str = DEFAULT_APP_ID
    org_code: str = DEFAULT_ORG_CODE
    seed: int | None = None
    shared_nonces: bool = False  # several worker processes: remember nonces in the database


def load_credentials(key_dir: Path, app_id: str, org_code: str) -> Credentials:
    """The platform's view of the hospital's app: platform private key, hospital public key."""
    key_dir = Path(key_dir)
    secret = key_dir / "app_secret"
    return Credentials(
        app_id=app_id,
        org_code=org_code,
        sm4_key=bytes.fromhex((key_dir / "sm4.key").read_text().strip()),
        private_key=gm.load_private_key_pem((key_dir / "platform_sm2.pem").read_bytes()),
        peer_public_key=gm.load_public_key_pem((key_dir / "hospital_sm2_pub.pem").read_bytes()),
        app_secret=secret.read_bytes().strip() if secret.exists() else None,
    )


class PlatformSimulator:
    """WSGI application; thread-safe, one instance per worker process."""

    def __init__(self, config: SimulatorConfig, catalogue=None) -> None:
        self.config = config
        self.catalogue = catalogue or load_catalogue()
        self.store = Store(config.db)
        self.faults = FaultState(self.store, config.seed)
        self.creds = load_credentials(config.keys, config.app_id, config.org_code)
        self._nonce_caches: dict[int, object] = {}
        self._nonce_lock = threading.Lock()
        self._receipt_lock = threading.Lock()
        self._receipt_counter = 0
        self.started = time.time()
        self.viewer_profile = self._viewer_profile()
        self.queries = Queries(self.store, self.catalogue)
        self.quality = Quality(
            self.store, self.catalogue, config.org_code, lambda: self.now(self.faults.current())
        )
        self.inspection = Inspection(self)
        self.journal = Journal(self.store, self.creds)
        self.console = Console(self)
        self._opened = threading.local()  # the request payload _envelope_call opened, for the journal

    quality_query_code = "QC_FEEDBACK_QUERY"

    # -- helpers -------------------------------------------------------------------------------
    def _viewer_profile(self):
        for code in ("SECURITY_TIMESTAMP", "EXAM_RECOGNIZABLE_ITEMS"):
            try:
                return self.catalogue.interface(code).profile
            except (KeyError, LookupError):
                continue
        return DEFAULT_PROFILE

    def _nonce_cache(self, profile):
        ttl = profile.nonce_ttl_seconds
        cache = self._nonce_caches.get(ttl)
        if cache is None:
            with self._nonce_lock:
                new = (
                    SqliteNonceCache(self.store, ttl)
                    if self.config.shared_nonces
                    else envelope.MemoryNonceCache(ttl)
                )
                cache = self._nonce_caches.setdefault(ttl, new)
        return cache

    def _creds_for(self, app_id: str) -> Credentials | None:
        return self.creds if app_id == self.creds.app_id else None

    @staticmethod
    def now(faults: Faults, service: str | None = None) -> datetime:
        return datetime.now(envelope.PLATFORM_TZ) + timedelta(seconds=faults.clock_skew_for(service))

    def _receipt(self, now: datetime) -> str:
        with self._receipt_lock:
            self._receipt_counter += 1
            n = self._receipt_counter
        return f"RC{envelope.format_timestamp(now)}{os.getpid() % 1000:03d}{n:09d}"

    def _count(self, service: str, code: str) -> None:
        with self.store.write() as db:
            Store.count(db, service, code)

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = environ.get("PATH_INFO", "") or "/"
        try:
            path = raw_path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            path = raw_path
        try:
            if path.startswith("/_sim/") or path == "/_sim":
                status, headers, body = self.inspection.handle(method, path, environ)
            elif path == "/viewer/report":
                status, headers, body = self._viewer(environ)
            elif path == "/" or path.startswith("/console/"):
                status, headers, body = self.console.handle(method, path, environ)
            else:
                spec = self._spec_for_path(path)
                if spec is None:
                    status, headers, body = json_response(404, {"error": f"未知的接口路径：{path}"})
                elif method != "POST":
                    status, headers, body = json_response(405, {"error": "接口只接受 POST"})
                else:
                    status, headers, body = self._protocol(spec, environ)
        except HttpError as exc:
            status, headers, body = json_response(exc.status, {"error": exc.message})
        except Exception:
            log.exception("simulator error on %s %s", method, path)
            status, headers, body = json_response(500, {"error": "模拟器内部错误"})
        start_response(status_line(status), [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _spec_for_path(self, path: str):
        try:
            return self.catalogue.by_path(path)
        except (KeyError, LookupError):
            return None

    # -- the wire protocol ---------------------------------------------------------------------
    def _protocol(self, spec, environ):
        body = read_body(environ)
        faults = self.faults.current()
        draw = self.faults.draw(faults, spec.code)
        now = self.now(faults, spec.code)
        self._opened.payload = None
        if draw.fired:
            with self.store.write() as db:
                for name in draw.fired:
                    Store.count(db, "_faults", name)
        if faults.latency_ms and faults.applies_to(spec.code):
            time.sleep(faults.latency_ms / 1000)
        if draw.http_5xx:
            self._count(spec.code, "HTTP500")
            self.journal.add(spec, body, None, http_status=500, code="HTTP500", fired=draw.fired)
            return (
                500,
                [("Content-Type", "text/plain; charset=utf-8")],
                "模拟平台内部错误（注入故障）".encode(),
            )
        profile = spec.profile
        if faults.force_code and faults.applies_to(spec.code):
            answer = Answer(faults.force_code, f"模拟平台返回码 {faults.force_code}（注入故障）")
        elif draw.rate_limit:
            answer = Answer("3001", MESSAGES["3001"], {"retryAfter": faults.retry_after})
        elif draw.error_5000:
            answer = Answer("5000", MESSAGES["5000"])
        elif spec.kind == "security":
            answer = self._security(spec, body, now)
        else:
            answer = self._envelope_call(spec, body, now, faults)
        if not answer.counted:
            self._count(spec.code, answer.code)
        # the answer's own time (after any latency and processing) and a fresh nonce (seal_response's
        # default): the client holds answers to the same window and replay rules as requests
        env = envelope.seal_response(
            answer.code,
            answer.message or MESSAGES.get(answer.code, ""),
            answer.data,
            creds=self.creds,
            profile=profile,
            timestamp=self.now(faults, spec.code),
        )
        self.journal.add(
            spec, body, self._opened.payload, answer=answer, env=env, fired=draw.fired, faults=faults
        )
        self._after(draw, faults, env)
        return json_response(200, env)

    def _after(self, draw: Draw, faults: Faults, env: dict) -> None:
        if draw.unsigned:
            env.pop("sign", None)
        elif draw.bad_signature:
            raw = bytearray(base64.b64decode(env["sign"]))
            raw[len(raw) // 2] ^= 0x5A
            env["sign"] = base64.b64encode(bytes(raw)).decode("ascii")
        if draw.timeout:
            time.sleep(faults.timeout_seconds)

    def _security(self, spec, body: bytes, now: datetime) -> Answer:
        try:
            request = json.loads(body)
        except ValueError:
            return Answer("1001", "请求不是合法的 JSON")
        if not isinstance(request, dict):
            return Answer("1001", "请求不是 JSON 对象")
        errors = spec.validate(request)
        if errors:
            return Answer("2001", MESSAGES["2001"], {"errors": errors})
        if self._creds_for(request.get("appId", "")) is None:
            return Answer("1001", f"未登记的 appId：{request.get('appId')}")
        if spec.code == "SECURITY_TIMESTAMP":
            return Answer("0", MESSAGES["0"], {"timestamp": envelope.format_timestamp(now)})
        return Answer("5000", f"模拟器未实现安全服务 {spec.code}")

    def _envelope_call(self, spec, body: bytes, now: datetime, faults: Faults) -> Answer:
        try:
            request = json.loads(body)
        except ValueError:
            return Answer("1001", "请求不是合法的 JSON")
        try:
            opened = envelope.open_request(
                request,
                creds_for_app=self._creds_for,
                profile=spec.profile,
                now=now,
                nonce_cache=self._nonce_cache(spec.profile),
            )
        except EnvelopeError as exc:
            return Answer(exc.code, exc.message)
        if opened.service_code != spec.code:
            return Answer("1001", f"serviceCode {opened.service_code} 与接口路径 {spec.path} 不符")
        if opened.version != spec.version:  # an older document version the catalogue still holds
            try:
                spec = self.catalogue.interface(spec.code, opened.version)
            except KeyError:
                return Answer(
                    "2001",
                    MESSAGES["2001"],
                    {
                        "errors": [
                            field_error(
                                "version", "version", f"接口版本应为 {spec.version}，收到 {opened.version}"
                            )
                        ]
                    },
                )
        payload = self._opened.payload = opened.payload
        reject_field = faults.reject_field(spec.code)
        if reject_field:  # the console's "validation error" switch of this interface
            message = "平台校验未通过（联调台注入的校验错误）"
            return Answer(
                "2001", MESSAGES["2001"], {"errors": [field_error(reject_field, "platformCheck", message)]}
            )
        if spec.kind in ("upload", "daily"):
            return self._upload(spec, payload, now, faults)
        if spec.kind == "void":
            return self._void(spec, payload, now, faults)
        if spec.kind == "query":
            if spec.code == self.quality_query_code:
                errors = list(spec.validate(payload))
                if errors:
                    return Answer("2001", MESSAGES["2001"], {"errors": errors})
                return self.quality.query(payload, opened.org_code)
            return self.queries.answer(spec, payload, now, opened.org_code)
        return Answer("5000", f"模拟器未实现接口类型 {spec.kind}")

    # -- uploads -------------------------------------------------------------------------------
    def _validate(self, spec, payload: dict, faults: Faults) -> list[dict]:
        errors = list(spec.validate(payload))
        if "fileContent" in payload:  # §6 checks; the spec's own file rules usually catch these first
            flagged = {e.get("field") for e in errors}
            errors += [
                e for e in envelope.check_file_fields(payload, spec.profile) if e["field"] not in flagged
            ]
        if not errors and spec.key:
            key = key_string(spec, payload)
            if key in faults.reject_keys:
                errors.append(
                    field_error(spec.key[-1], "platformCheck", f"平台校验未通过（模拟注入的校验错误）：{key}")
                )
        return errors

    def _missing_parents(self, db, spec, payload: dict) -> list[str]:
        """Parents (spec.parents, orgCode implied) this record needs and the platform does not hold."""
        missing = []
        for parent_code, parent_key in spec.parent_keys_of(payload):
            key = "|".join("" if v is None else str(v) for v in parent_key)
            rec = Store.get_record(db, parent_code, key)
            if rec is None or rec["voided"]:
                missing.append(f"{parent_code}（{key}）")
        return missing

    def _upload(self, spec, payload: dict, now: datetime, faults: Faults) -> Answer:
        errors = self._validate(spec, payload, faults)
        if errors:
            return Answer("2001", MESSAGES["2001"], {"errors": errors})
        key = key_string(spec, payload)
        receipt = self._receipt(now)
        with self.store.write() as db:
            missing = self._missing_parents(db, spec, payload)
            if missing:
                Store.count(db, spec.code, "2002")
                return Answer("2002", f"上级记录尚未上传：{'；'.join(missing)}", counted=True)
            if spec.code == REPLY:
                refused = self.quality.check_reply(db, payload)
                if refused is not None:
                    Store.count(db, spec.code, refused.code)
                    refused.counted = True
                    return refused
                self.quality.store_reply(db, payload, now)
            version = Store.upsert_record(
                db,
                interface=spec.code,
                key=key,
                payload=payload,
                receipt=receipt,
                now=envelope.format_timestamp(now),
                org_code=payload.get("orgCode"),
                id_no=id_no_of(payload),
            )
            Store.count(db, spec.code, "0")
        return Answer("0", MESSAGES["0"], {"receiptId": receipt, "version": version}, counted=True)

    def _void(self, spec, payload: dict, now: datetime, faults: Faults) -> Answer:
        errors = self._validate(spec, payload, faults)
        if errors:
            return Answer("2001", MESSAGES["2001"], {"errors": errors})
        key = key_string(spec, payload)
        receipt = self._receipt(now)
        stamp = envelope.format_timestamp(now)
        with self.store.write() as db:
            held = []
            for code in spec.voids or ():
                target = self.catalogue.interface(code)
                target_key = key_string(target, payload)
                rec = Store.get_record(db, code, target_key)
                if rec is not None:
                    held.append((code, target_key, rec))
            if not held:
                Store.count(db, spec.code, "2002")
                return Answer("2002", f"平台上没有该报告，无法作废：{key}", counted=True)
            info = {
                "voidedAt": stamp,
                "voidInterface": spec.code,
                "voidKey": key,
                "reason": payload.get("voidReason"),
            }
            for code, target_key, rec in held:
                if not rec["voided"]:
                    Store.void_record(db, code, target_key, info)
            version = Store.upsert_record(
                db,
                interface=spec.code,
                key=key,
                payload=payload,
                receipt=receipt,
                now=stamp,
                org_code=payload.get("orgCode"),
                id_no=id_no_of(payload),
            )
            Store.count(db, spec.code, "0")
        return Answer("0", MESSAGES["0"], {"receiptId": receipt, "version": version}, counted=True)

    # -- report viewer -------------------------------------------------------------------------
    def _viewer(self, environ):
        query = environ.get("QUERY_STRING", "")
        now = self.now(self.faults.current())
        try:
            fields = envelope.verify_browse_link(
                "http://viewer/report?" + query,
                public_key=self.creds.peer_public_key,
                profile=self.viewer_profile,
                now=now,
            )
        except LinkExpiredError:
            self._count("VIEWER", "403")
            return html_response(403, viewer.refusal_page("浏览链接已过期，请从医生工作站重新打开。"))
        except EnvelopeError as exc:
            self._count("VIEWER", "403")
            reason = (
                "浏览链接的有效期超出允许范围。" if exc.code == "1002" else "浏览链接签名无效或已被篡改。"
            )
            return html_response(403, viewer.refusal_page(reason))
        found = self.queries.find_report(fields.get("orgCode", ""), fields.get("reportId", ""))
        if found is None:
            self._count("VIEWER", "404")
            return html_response(404, viewer.refusal_page("平台上未找到该报告。", title="报告不存在"))
        self._count("VIEWER", "200")
        kind, report, patient = found
        return html_response(
            200, viewer.report_page(kind, report, patient, doctor_id=fields.get("doctorId", ""))
        )
