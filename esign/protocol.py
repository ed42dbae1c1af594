"""The reference vendor protocol's wire rules, shared by the client adapter and the CA simulator.

Pure Python (no Django). See ``docs/esign-protocol.md`` for the full description.

* Every request is ``POST {base}/service/v1/{operation}`` with a flat JSON object that carries
  ``appId``, ``version``, ``timestamp`` (ms since the epoch), ``nonce``, ``signAlg`` and the
  operation's parameters, plus ``sign``: the hex HMAC over the *signing string*.
* The signing string: every field except ``sign`` whose value is not null or empty, sorted by
  name, joined as ``k=v&k=v``; objects and arrays are written as compact JSON with sorted keys,
  booleans as ``true``/``false``.
* Every answer is ``{"code", "message", "data", "timestamp", "sign"}`` signed the same way with
  the same secret, so the client can tell a genuine answer from a proxy's error page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

from hospital_interop.municipal import gm

VERSION = "1.0"
SIGN_ALGORITHMS = ("HMAC-SM3", "HMAC-SHA256")
TIMESTAMP_WINDOW_MS = 5 * 60 * 1000
SIGNATURE_ALGORITHM = "SM3withSM2"
# The appId the demo registers on both sides: the CA simulator's default application,
# ``manage.py esign_demo``'s CA parameter and ``esign.ukey_agent init``'s default. A real CA issues its own.
DEMO_APP_ID = "BJ-HOSP-LIS-ESIGN"

# Result codes. "0" is success; the rest are the reference vendor's documented codes.
OK = "0"
CODES = {
    "0": "成功",
    "1001": "请求签名错误",
    "1002": "应用标识不存在或已停用",
    "1003": "请求时间戳超出允许范围",
    "1004": "请求重复提交",
    "1005": "不支持的接口或版本",
    "2001": "参数错误",
    "3001": "用户不存在",
    "3002": "用户已存在",
    "3003": "用户已停用",
    "4001": "证书不存在",
    "4101": "证书已吊销",
    "4102": "证书已冻结",
    "4103": "证书已过期",
    "4104": "证书尚未生效",
    "4105": "证书不是本 CA 签发",
    "5001": "未开启自动签名",
    "5002": "自动签名授权已过期",
    "5003": "签名任务不存在",
    "5004": "签名验证失败",
    "6001": "二维码业务不存在",
    "6002": "二维码已过期",
    "9999": "签名服务器内部错误",
}

# Sign / QR transaction states (the vendors' common vocabulary)
TOSIGN, FINISH, REFUSE, EXPIRE = "TOSIGN", "FINISH", "REFUSE", "EXPIRE"

# Certificate validation results
CERT_STATES = {
    "VALID": "有效",
    "UNTRUSTED": "非本 CA 签发",
    "EXPIRED": "已过期",
    "REVOKED": "已吊销",
    "FROZEN": "已冻结",
    "NOT_YET_VALID": "尚未生效",
}


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(v)


def signing_string(fields: dict) -> str:
    return "&".join(
        f"{k}={_value(fields[k])}"
        for k in sorted(fields)
        if k != "sign" and fields[k] is not None and fields[k] != ""
    )


def mac(secret: bytes, fields: dict, algorithm: str = "HMAC-SM3") -> str:
    data = signing_string(fields).encode("utf-8")
    if algorithm == "HMAC-SM3":
        return gm.hmac_sm3(secret, data).hex()
    if algorithm == "HMAC-SHA256":
        return hmac.new(secret, data, hashlib.sha256).hexdigest()
    raise ValueError(f"unsupported request signature algorithm {algorithm!r}")


def check_mac(secret: bytes, fields: dict, algorithm: str = "HMAC-SM3") -> bool:
    given = fields.get("sign")
    return isinstance(given, str) and hmac.compare_digest(given.lower(), mac(secret, fields, algorithm))


def now_ms() -> int:
    return int(time.time() * 1000)


def sign_request(app_id: str, secret: bytes, params: dict, algorithm: str = "HMAC-SM3") -> dict:
    body = {
        **params,
        "appId": app_id,
        "version": VERSION,
        "timestamp": now_ms(),
        "nonce": secrets.token_hex(12),
        "signAlg": algorithm,
    }
    body["sign"] = mac(secret, body, algorithm)
    return body


def sign_response(
    secret: bytes, code: str, data: dict | None, message: str | None = None, algorithm: str = "HMAC-SM3"
) -> dict:
    body = {
        "code": code,
        "message": message or CODES.get(code, ""),
        "data": data or {},
        "timestamp": now_ms(),
    }
    body["sign"] = mac(secret, body, algorithm)
    return body
