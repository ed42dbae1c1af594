"""The joint-debugging console's journal: every protocol request the simulator received, with its
decrypted payload and the answer given (code, message, data such as ``receiptId`` or ``errors``).

The records table holds what the platform *keeps* (one row per business key, accepted uploads
only); the journal holds what it was *sent*, rejected requests included, which is what an
integration engineer needs to see during 联调. It lives in the simulator database (table
``exchanges``, cleared by ``/_sim/reset``) and keeps the newest ``KEEP`` exchanges.

Where the payload comes from (``payload_source``):

* ``opened``: the platform opened the envelope (signature, timestamp, nonce and decryption passed);
* ``console``: the request was answered before it was opened (an injected 5xx, rate limit or 5000,
  or a 1001/1002/1003 refusal); the journal decrypted it with the registered app's SM4 key so the
  engineer still sees what was sent;
* ``plain``: a plain JSON request (the timestamp service);
* ``none``: nothing readable (not JSON, unknown app, undecryptable: the reason is kept).

Long strings (Base64 file contents) are kept as a short placeholder; the records table keeps the
full payload of every accepted upload. Nothing here is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

from hospital_interop.municipal import envelope
from hospital_interop.municipal.envelope import EnvelopeError

from .common import MESSAGES, key_string

log = logging.getLogger("simulators.platform.journal")

KEEP = 10_000  # newest exchanges kept
PRUNE_EVERY = 200
MAX_STRING = 2048  # longer strings are replaced by a placeholder
MAX_JSON = 256 * 1024
HEADER_FIELDS = (
    "appId",
    "orgCode",
    "serviceCode",
    "version",
    "timestamp",
    "nonce",
    "signType",
    "encryptType",
    "compressType",
    "iv",
)
COLUMNS = (
    "id",
    "interface",
    "received_at",
    "key",
    "http_status",
    "code",
    "message",
    "answer",
    "payload",
    "payload_source",
    "envelope",
    "faults",
)


class Journal:
    def __init__(self, store, creds) -> None:
        self.store = store
        self.creds = creds
        self._lock = threading.Lock()
        self._added = 0

    # -- writing (from the protocol handler; never raises) -------------------------------------
    def add(
        self,
        spec,
        body: bytes,
        payload: dict | None,
        *,
        answer=None,
        env: dict | None = None,
        http_status: int = 200,
        code: str | None = None,
        fired=(),
        faults=None,
    ) -> None:
        try:
            self._add(spec, body, payload, answer, env, http_status, code, fired, faults)
        except Exception:  # the journal must never change what the platform answers
            log.exception("console journal: could not store an exchange of %s", spec.code)

    def _add(self, spec, body, payload, answer, env, http_status, code, fired, faults) -> None:
        request = _json_or_none(body)
        source = "opened" if payload is not None else "none"
        if payload is None:
            payload, source = self._read_unopened(spec, request)
        key = None
        if spec.key and isinstance(payload, dict):
            key = key_string(spec, payload)
        if answer is not None:
            code = answer.code
            message = (env or {}).get("message") or answer.message or MESSAGES.get(code, "")
            data = answer.data
        else:
            message = "模拟平台内部错误（注入故障）" if code == "HTTP500" else MESSAGES.get(code or "", "")
            data = None
        notes = list(fired)
        if faults is not None:
            if faults.reject_field(spec.code) and code == "2001":
                notes.append("reject_field")
            if faults.clock_skew_for(spec.code):
                notes.append("clock_skew_seconds")
        header = None
        if isinstance(request, dict) and spec.kind != "security":
            header = {k: request[k] for k in HEADER_FIELDS if k in request}
            if isinstance(request.get("data"), str):
                header["data"] = f"〈密文 {len(request['data'])} 个字符〉"
            if isinstance(request.get("sign"), str):
                header["sign"] = f"〈签名 {len(request['sign'])} 个字符〉"
        row = (
            spec.code,
            datetime.now(envelope.PLATFORM_TZ).strftime("%Y-%m-%d %H:%M:%S"),
            key,
            http_status,
            code or "",
            message,
            _dump(data),
            _dump(payload),
            source,
            _dump(header),
            json.dumps(notes),
        )
        with self.store.write() as db:
            db.execute(
                f"INSERT INTO exchanges ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * (len(COLUMNS) - 1))})",
                row,
            )
            with self._lock:
                self._added += 1
                prune = self._added % PRUNE_EVERY == 0
            if prune:
                db.execute("DELETE FROM exchanges WHERE id <= (SELECT MAX(id) FROM exchanges) - ?", (KEEP,))

    def _read_unopened(self, spec, request) -> tuple[object, str]:
        if request is None:
            return {"联调台提示": "请求体不是合法的 JSON"}, "none"
        if spec.kind == "security":
            return request, "plain"
        if not isinstance(request, dict) or not isinstance(request.get("data"), str):
            return {"联调台提示": "请求不是带 data 字段的信封"}, "none"
        if request.get("appId") != self.creds.app_id:
            return {"联调台提示": f"未登记的 appId：{request.get('appId')}，无法解密"}, "none"
        try:
            return envelope.decode_payload(
                request["data"], request.get("iv"), spec.profile, self.creds.sm4_key
            ), "console"
        except EnvelopeError as exc:
            return {"联调台提示": f"无法解密：{exc.message}"}, "none"

    # -- reading (the console) -----------------------------------------------------------------
    def page(self, *, interface: str | None = None, key_part: str | None = None, offset: int, limit: int):
        """(exchanges newest first, total) of one interface and/or whose key contains ``key_part``."""
        clauses, params = [], []
        if interface:
            clauses.append("interface = ?")
            params.append(interface)
        if key_part:
            escaped = key_part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("key LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        db = self.store.read()
        total = db.execute(f"SELECT COUNT(*) FROM exchanges{where}", params).fetchone()[0]
        rows = db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM exchanges{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [_exchange(r) for r in rows], total

    def get(self, exchange_id: int) -> dict | None:
        row = (
            self.store.read()
            .execute(f"SELECT {', '.join(COLUMNS)} FROM exchanges WHERE id = ?", (exchange_id,))
            .fetchone()
        )
        return _exchange(row) if row else None


def _json_or_none(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _elide(value):
    if isinstance(value, str) and len(value) > MAX_STRING:
        return f"〈{len(value)} 个字符，联调台未保存；完整内容见 /_sim/records〉"
    if isinstance(value, dict):
        return {k: _elide(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_elide(v) for v in value]
    return value


def _dump(value) -> str | None:
    if value is None:
        return None
    text = json.dumps(_elide(value), ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_JSON:
        text = json.dumps({"联调台提示": f"内容过大（{len(text)} 个字符），未保存"}, ensure_ascii=False)
    return text


def _exchange(row) -> dict:
    return {
        "id": row["id"],
        "interface": row["interface"],
        "received_at": row["received_at"],
        "key": row["key"],
        "http_status": row["http_status"],
        "code": row["code"],
        "message": row["message"],
        "answer": json.loads(row["answer"]) if row["answer"] else None,
        "payload": json.loads(row["payload"]) if row["payload"] else None,
        "payload_source": row["payload_source"],
        "envelope": json.loads(row["envelope"]) if row["envelope"] else None,
        "faults": json.loads(row["faults"]),
    }
