"""Checking the CA's timestamp token before anything calls a signature "trusted-timestamped".

The reference vendor's token (docs/esign-protocol.md, "Cryptography") is
``Base64(JSON{tsa, time, digest, hashAlg, serial}) "." Base64(SM3withSM2 signature of that JSON)``,
signed with the CA's key. A token is good when:

* it parses, and ``hashAlg`` is SM3;
* ``digest`` is the SM3 of the exact signature value it stamps (so it covers this signature and
  no other);
* its signature verifies with the CA certificate's public key (and ``tsa`` names that CA);
* its ``time`` is sane: not before the signing started (less the allowed clock skew) and not
  after now (plus the skew).

Pure Python (no Django): the verification page and the signing path both use it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hospital_interop.municipal import gm

from .certs import Certificate

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class TimestampCheck:
    ok: bool
    message: str  # Chinese, for the page / the refusal
    time: datetime | None = None
    serial: str = ""


def _bad(message: str, time: datetime | None = None, serial: str = "") -> TimestampCheck:
    return TimestampCheck(False, message, time, serial)


def read(token: str) -> tuple[dict, bytes, bytes] | None:
    """(claims, signed bytes, signature) of a token, or None when it is not of that shape."""
    try:
        body_b64, sig_b64 = (token or "").split(".")
        body, sig = base64.b64decode(body_b64, validate=True), base64.b64decode(sig_b64, validate=True)
        claims = json.loads(body.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (claims, body, sig) if isinstance(claims, dict) else None


def covers(token: str, signature: bytes) -> bool:
    """True if the token names the SM3 digest of ``signature`` (no CA key needed)."""
    parsed = read(token)
    return (
        parsed is not None
        and parsed[0].get("hashAlg") == "SM3"
        and parsed[0].get("digest") == gm.sm3_hex(signature)
    )


def verify(
    token: str,
    *,
    signature: bytes,
    authority: Certificate,
    earliest: datetime | None = None,
    now: datetime | None = None,
) -> TimestampCheck:
    """Check ``token`` for the signature value ``signature`` against the CA certificate ``authority``."""
    parsed = read(token)
    if parsed is None:
        return _bad("时间戳格式无法识别。")
    claims, body, sig = parsed
    serial = str(claims.get("serial") or "")
    try:
        at = datetime.fromisoformat(str(claims.get("time") or "").replace("Z", "+00:00"))
    except ValueError:
        return _bad("时间戳中的时间无法识别。", serial=serial)
    if at.tzinfo is None:
        return _bad("时间戳中的时间缺少时区。", serial=serial)
    if claims.get("hashAlg") != "SM3" or claims.get("digest") != gm.sm3_hex(signature):
        return _bad("时间戳所盖的摘要不是本签名值的 SM3 摘要。", at, serial)
    if not authority.public_key.verify(body, sig) or claims.get("tsa") != authority.subject_cn:
        return _bad(f"时间戳不是 CA（{authority.subject_cn}）签发的。", at, serial)
    now = now or datetime.now(UTC)
    if earliest is not None and at < earliest - CLOCK_SKEW:
        return _bad(f"时间戳时间 {at.isoformat()} 早于签名开始时间。", at, serial)
    if at > now + CLOCK_SKEW:
        return _bad(f"时间戳时间 {at.isoformat()} 晚于当前时间。", at, serial)
    return TimestampCheck(True, "时间戳由 CA 签发，覆盖本签名值", at, serial)
