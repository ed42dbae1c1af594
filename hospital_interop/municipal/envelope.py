"""Sealing and opening municipal platform envelopes (platform-protocol.md §2, §3, §5, §6).

Request:  payload → UTF-8 JSON → gzip → SM4 (CBC, fresh IV) → Base64 → ``data``; every non-empty
string field except ``sign`` is signed (sorted ``k=v`` joined with ``&``) with SM2 (or HMAC-SM3).
The receiver checks, in this order: required fields → signature (1001, before any decryption)
→ timestamp window (1002) → nonce (1003) → decryption / decompression / JSON (1004). Responses are
checked the same way by the client (§3): a correctly signed answer whose timestamp is outside the
window or whose nonce was seen before is refused, so a captured answer cannot be replayed.

Decompression accepts any RFC 1952 stream, including several concatenated members (``cat a.gz
b.gz``), bounded in total output; bytes after the last member are refused.

gzip level: :data:`GZIP_LEVEL` = 1. On the JSON this platform carries, level 1 gives files within
a few percent of level 6 at 3–5x the speed, and embedded PDFs/images are already compressed, so
higher levels cost CPU for almost no bytes. ``mtime=0`` keeps the output deterministic.
Payloads are compressed by Intel ISA-L (``isal``, level 1) instead of zlib: any gzip reader opens
its output (one RFC 1952 member, mtime 0, OS byte 255 "unknown"). On a 27 MiB PDF-as-Base64 payload it
takes 0.05 s against zlib's 0.67 s with slightly smaller output (the CPU a 20 MiB lab PDF took from
the small records beside it, issue 20); on a 4 KiB JSON lab report 12 us against zlib's 18 us, for
1,157 bytes against 1,144 (issue 19). Only the compressed bytes changed, never what a reader decodes.

JSON is written by orjson and read by orjson where that gives the very bytes / values of the
standard ``json`` module, and by ``json`` otherwise (see :func:`json_bytes`, :func:`json_loads`):
4 KiB encode in 3 us + 7 us of guards against 39 us, decode in 15 us against 33 us (issue 19).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson
from isal import igzip

from hospital_interop.errors import field_error

from .gm import SM2PrivateKey, SM2PublicKey, hmac_sm3, sm3_hex, sm4_decrypt, sm4_encrypt
from .profile import Profile

__all__ = [
    "GZIP_LEVEL",
    "PLATFORM_TZ",
    "Credentials",
    "EnvelopeError",
    "LinkExpiredError",
    "MemoryNonceCache",
    "NonceStore",
    "OpenedRequest",
    "RedisNonceCache",
    "Response",
    "check_file_fields",
    "decode_payload",
    "encode_payload",
    "file_fields",
    "format_timestamp",
    "make_browse_link",
    "new_nonce",
    "open_request",
    "open_response",
    "parse_timestamp",
    "seal_request",
    "seal_response",
    "string_to_sign",
    "verify_browse_link",
]

GZIP_LEVEL = 1
# Platform time is Beijing time (Asia/Shanghai): UTC+8 all year, no DST since 1991, so a fixed
# offset is exact and needs no tz database.
PLATFORM_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

REQUEST_FIELDS = (
    "appId", "orgCode", "serviceCode", "version", "timestamp", "nonce",
    "signType", "encryptType", "compressType", "data", "sign",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Errors, credentials, results
# ---------------------------------------------------------------------------------------------

_CODE_TEXT = {
    "1001": "签名无效 / signature invalid",
    "1002": "时间戳超出允许范围 / timestamp outside the allowed window",
    "1003": "随机数重复 / nonce replayed",
    "1004": "解密或解压失败 / decryption or decompression failed",
}


class EnvelopeError(Exception):
    """A protocol-level rejection; ``code`` is the protocol's response code ("1001".."1004")."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        base = _CODE_TEXT.get(code, code)
        self.message = f"{base}: {detail}" if detail else base

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class LinkExpiredError(EnvelopeError):
    """A correctly signed browse link whose ``expires`` is in the past (code "1002")."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("1002", detail)
        self.args = (detail,)  # so that the exception pickles (Celery) with its own signature
        base = "浏览链接已过期 / browse link expired"
        self.message = f"{base}: {detail}" if detail else base


@dataclass(frozen=True)
class Credentials:
    """One side's view of an appId: its own signing key and the other side's verifying key."""

    app_id: str
    org_code: str
    sm4_key: bytes | None = field(default=None, repr=False)  # 16 bytes, issued per appId
    private_key: SM2PrivateKey | None = field(default=None, repr=False)  # own key, signs
    peer_public_key: SM2PublicKey | None = None  # other side's key, verifies
    app_secret: bytes | None = field(default=None, repr=False)  # HMAC-SM3 key (UTF-8 bytes)

    def __post_init__(self) -> None:
        if self.sm4_key is not None and len(self.sm4_key) != 16:
            raise ValueError("sm4_key must be 16 bytes")
        if isinstance(self.app_secret, str):
            object.__setattr__(self, "app_secret", self.app_secret.encode("utf-8"))


@dataclass(frozen=True)
class OpenedRequest:
    app_id: str
    org_code: str
    service_code: str
    version: str
    timestamp: datetime
    nonce: str
    payload: dict


@dataclass(frozen=True)
class Response:
    code: str
    message: str
    data: Any
    timestamp: datetime


# ---------------------------------------------------------------------------------------------
# Timestamps and nonces
# ---------------------------------------------------------------------------------------------


def format_timestamp(dt: datetime) -> str:
    """Aware datetime → platform time ``yyyyMMddHHmmssSSS``."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("timestamp must be an aware datetime")
    t = dt.astimezone(PLATFORM_TZ)
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}{t.microsecond // 1000:03d}"


_TS_RE = re.compile(r"\d{17}", re.ASCII)


def parse_timestamp(s: str) -> datetime:
    """``yyyyMMddHHmmssSSS`` (platform time) → aware datetime; ValueError if malformed."""
    if not isinstance(s, str) or not _TS_RE.fullmatch(s):
        raise ValueError(f"malformed timestamp {s!r}")
    return datetime(
        int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14]),
        int(s[14:17]) * 1000, tzinfo=PLATFORM_TZ,
    )  # fmt: skip


def new_nonce() -> str:
    """32 lowercase hex characters from the OS CSPRNG."""
    return secrets.token_hex(16)


def _ts(value: datetime | str) -> str:
    return value if isinstance(value, str) else format_timestamp(value)


class NonceStore(Protocol):
    """Where one side remembers the nonces it has seen, each for the store's TTL.

    ``add`` records the nonce and answers True if it was new, False if it was seen within the
    TTL; it must be atomic (two workers adding the same nonce: exactly one gets True). The TTL
    must cover the whole window a message is accepted in (2 x ``timestampWindowSeconds``, which
    ``nonceTtlSeconds`` does by the profile's own rule). Implementations: :class:`MemoryNonceCache`
    (one process), :class:`RedisNonceCache`, the client's Django-cache store and the simulator's
    SQLite store (several processes).
    """

    def add(self, app_id: str, nonce: str) -> bool: ...


class MemoryNonceCache:
    """In-process, thread-safe set of (appId, nonce) remembered for ``ttl`` seconds."""

    def __init__(self, ttl: float = 600, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()  # expiry order (constant ttl)
        self._lock = threading.Lock()

    def add(self, app_id: str, nonce: str) -> bool:
        """Record the nonce; False if it was already seen within the TTL."""
        now = self._clock()
        key = (app_id, nonce)
        with self._lock:
            order, seen = self._order, self._seen
            while order and order[0][0] <= now:
                _, old = order.popleft()
                seen.pop(old, None)
            if key in seen:
                return False
            expiry = now + self._ttl
            seen[key] = expiry
            order.append((expiry, key))
            return True

    def __len__(self) -> int:
        return len(self._seen)


class RedisNonceCache:
    """Nonce set shared by all processes: ``SET prefix+appId:nonce 1 NX EX ttl``."""

    def __init__(self, redis_client, ttl: int = 600, prefix: str = "hospital_interop:nonce:") -> None:
        self._redis = redis_client
        self._ttl = int(ttl)
        self._prefix = prefix

    def add(self, app_id: str, nonce: str) -> bool:
        return bool(self._redis.set(f"{self._prefix}{app_id}:{nonce}", 1, nx=True, ex=self._ttl))


# ---------------------------------------------------------------------------------------------
# String to sign, signatures
# ---------------------------------------------------------------------------------------------


def string_to_sign(envelope: dict) -> bytes:
    """Non-empty string fields except ``sign``, sorted by name (byte order), ``k=v`` joined by ``&``."""
    # Python orders str by code point, which is the UTF-8 byte order.
    return "&".join(
        [f"{k}={v}" for k, v in sorted(envelope.items()) if k != "sign" and isinstance(v, str) and v]
    ).encode("utf-8")  # a list, not a generator: join makes one anyway (~1 us less per envelope)


def _sign(message: bytes, creds: Credentials, profile: Profile) -> bytes:
    if profile.sign_type == "SM2":
        if creds.private_key is None:
            raise ValueError(f"no SM2 private key configured for appId {creds.app_id}")
        return creds.private_key.sign(
            message, signer_id=profile.signer_id, encoding=profile.signature_encoding
        )
    if not creds.app_secret:
        raise ValueError(f"no appSecret configured for appId {creds.app_id}")
    return hmac_sm3(creds.app_secret, message)


def _verify(message: bytes, signature: bytes, creds: Credentials, profile: Profile) -> bool:
    if profile.sign_type == "SM2":
        key = creds.peer_public_key
        return key is not None and key.verify(
            message, signature, signer_id=profile.signer_id, encoding=profile.signature_encoding
        )
    return bool(creds.app_secret) and hmac.compare_digest(hmac_sm3(creds.app_secret, message), signature)


def _b64decode_strict(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def _sign_field(envelope: dict, creds: Credentials, profile: Profile) -> str:
    return base64.b64encode(_sign(string_to_sign(envelope), creds, profile)).decode("ascii")


def _check_sign_field(envelope: dict, creds: Credentials, profile: Profile) -> None:
    sign = envelope.get("sign")
    if not isinstance(sign, str) or not sign:
        raise EnvelopeError("1001", "missing sign")
    try:
        signature = _b64decode_strict(sign)
    except (binascii.Error, ValueError):
        raise EnvelopeError("1001", "sign is not Base64") from None
    if not _verify(string_to_sign(envelope), signature, creds, profile):
        raise EnvelopeError("1001", "signature does not verify")


def _check_fresh(
    envelope: dict, app_id: str, profile: Profile, now: datetime | None, nonce_cache
) -> datetime:
    """The replay checks shared by requests and responses: timestamp within ±window of ``now``
    (1002; skipped when ``now`` is None), then the nonce never seen (1003). Returns the timestamp."""
    try:
        ts = parse_timestamp(envelope["timestamp"])
    except ValueError as exc:
        raise EnvelopeError("1002", str(exc)) from None
    if now is not None:
        skew = (ts - now).total_seconds()
        if abs(skew) > profile.timestamp_window_seconds:
            when = "ahead of" if skew > 0 else "behind"
            raise EnvelopeError(
                "1002", f"{abs(skew):.0f}s {when} platform time, window ±{profile.timestamp_window_seconds}s"
            )
    if not nonce_cache.add(app_id, envelope["nonce"]):
        raise EnvelopeError("1003", f"nonce {envelope['nonce']} already used")
    return ts


# ---------------------------------------------------------------------------------------------
# Payload encoding
# ---------------------------------------------------------------------------------------------


# Compact UTF-8 JSON; NaN/Infinity are not JSON and are refused at sealing time, not by the peer.
# These are the bytes of record: orjson below is only a faster way to the same bytes.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)

# orjson writes the same bytes as _JSON for str (same escapes, U+2028/U+2029 and emoji raw), ints
# within 64 bits, bools, None, lists, tuples, dicts with str keys and every finite float except
# those of decimal exponent -5 to -9: it writes 1e-05 as 0.00001 and 1e-07 as 1e-7, where repr()
# writes 1e-05 and 1e-07 (checked on 1.5 million doubles, tests/municipal/test_envelope_json.py).
# It writes NaN and ±Infinity as null, where _JSON raises ValueError. Everything else _JSON takes
# (ints beyond 64 bits, non-str keys, str/int/dict subclasses, lone surrogates, deep nesting)
# orjson refuses with JSONEncodeError; datetimes and dataclasses are passed through to a missing
# ``default``, i.e. refused too. So: orjson's output is used unless it failed, or holds one of
# "null", "e-" or "0.0000" (a null, a float of those exponents, or text that merely looks like one)
# and the payload holds a float; in those cases _JSON encodes the payload, exactly as before, with
# its exceptions.
# One widening: orjson also encodes plain Enum members, UUIDs and orjson.Fragment, which _JSON
# refuses with TypeError (no caller passes them: payloads are the specs' JSON types).
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


# json.dumps(value, ensure_ascii=False, separators=(",", ":")) as an encoder: the same text, but
# NaN and ±Infinity written as json writes them (NaN, Infinity) instead of refused; what the
# payloads are sealed at rest with (atrest.SealedJSONField) and measured by (payload_size)
DUMPS_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_bytes(payload: Any, encoder: json.JSONEncoder = _JSON) -> bytes:
    """``encoder.encode(payload).encode("utf-8")``, byte for byte, at orjson's speed where it can
    (``encoder``: compact, ``ensure_ascii=False``; ``_JSON`` or ``DUMPS_COMPACT``)."""
    try:
        out = orjson.dumps(payload, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return encoder.encode(payload).encode("utf-8")
    # ~2 us each on 4 KiB; a file as Base64 nearly always holds "null" somewhere, hence the walk
    if (b"null" in out or b"e-" in out or b"0.0000" in out) and _holds_a_float(payload):
        return encoder.encode(payload).encode("utf-8")
    return out


def _holds_a_float(value: Any) -> bool:
    """Whether a float is anywhere in a value orjson wrote. Without one, orjson's bytes are
    json's (the differences above are all floats' or refused by orjson): "null" is then a None
    or text, as "e-" and "0.0000" are text. ~5 us on an 84-field report, 1 us on a PDF's."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float):
            return True
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


# A JSON integer beyond 64 bits (at least 19 digits after "-" or at least 20 without) is read by
# orjson as a float, by json as an int. Outside strings an integer follows one of "[:,-" or JSON
# whitespace, or starts the text; _DIGIT_CLASS maps those to 2 and digits to 1, so 19 digits after
# a 2 (or at the start) flag the text, which json then reads. Digit runs inside strings (ID card
# numbers, bar codes) follow a quote or a letter and do not flag it; when they do, json reads it.
_DIGIT_CLASS = bytes(1 if 0x30 <= b <= 0x39 else 2 if b in b"[:,- \t\n\r" else 0 for b in range(256))
_LONG_INT = b"\x02" + b"\x01" * 19
_LONG_INT_START = b"\x01" * 19


def json_loads(raw: bytes) -> Any:
    """``json.loads(raw)`` (the values, and its exceptions), with orjson where the result is equal.

    Where both accept a text they give equal values (duplicate keys: the last wins in both). orjson
    refuses what json accepts beyond RFC 8259 (NaN/Infinity literals, a UTF-8 BOM, UTF-16/32, lone
    surrogates, numbers that overflow to infinity): json reads those, as before. The one widening:
    orjson nests up to 1024 deep where json stops at Python's recursion limit (~1000 less the
    caller's stack) with RecursionError."""
    t = raw.translate(_DIGIT_CLASS)
    if _LONG_INT in t or t.startswith(_LONG_INT_START):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def encode_payload(payload: Any, profile: Profile, sm4_key: bytes | None) -> tuple[str, str | None]:
    """JSON → gzip → SM4 → Base64. Returns (data, iv hex or None)."""
    raw = json_bytes(payload)
    if profile.compress_type == "GZIP":
        raw = igzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)
    iv_hex = None
    if profile.encrypt_type == "SM4":
        if sm4_key is None:
            raise ValueError("SM4 encryption needs an sm4Key")
        if profile.cipher_mode == "CBC":
            iv = secrets.token_bytes(16)
            iv_hex = iv.hex()
            raw = sm4_encrypt(sm4_key, raw, "CBC", iv)
        else:
            raw = sm4_encrypt(sm4_key, raw, "ECB")
    return base64.b64encode(raw).decode("ascii"), iv_hex


def _max_plain_bytes(profile: Profile) -> int:
    # Bomb guard for gunzip: a payload carries files as Base64 (4/3) plus business fields.
    return 4 * profile.max_file_bytes


def _gunzip(buf: bytes, limit: int) -> bytes:
    """Every member of an RFC 1952 stream (§2.2: a file may hold several), at most ``limit`` bytes
    in total. ``zlib.decompressobj(wbits=31)`` stops after one member and leaves the rest in
    ``unused_data``; ``gzip.decompress`` reads every member but has no output bound and tolerates
    trailing zero bytes. Here each member gets its own decompressor, the bound covers all of them,
    and anything after the last member that does not start a new one is refused."""
    out: list[bytes] = []
    total, rest = 0, buf
    while True:
        d = zlib.decompressobj(wbits=31)  # gzip container only
        room = limit - total
        chunk = d.decompress(rest, room + 1)  # never 0, which would mean "no limit"
        if len(chunk) > room:
            raise ValueError(f"decompressed payload exceeds {limit} bytes")
        if not d.eof:
            raise ValueError("truncated gzip stream")
        out.append(chunk)
        total += len(chunk)
        rest = d.unused_data
        if not rest:
            return b"".join(out)
        if not rest.startswith(b"\x1f\x8b"):
            raise ValueError(f"{len(rest)} bytes after the last gzip member")


def decode_payload(data: str, iv_hex: str | None, profile: Profile, sm4_key: bytes | None) -> Any:
    """Inverse of :func:`encode_payload`; any failure raises EnvelopeError("1004")."""
    try:
        raw = _b64decode_strict(data)
        if profile.encrypt_type == "SM4":
            if sm4_key is None:
                raise ValueError("no sm4Key configured")
            if profile.cipher_mode == "CBC":
                if not isinstance(iv_hex, str) or len(iv_hex) != 32:
                    raise ValueError("missing or malformed iv")
                raw = sm4_decrypt(sm4_key, raw, "CBC", bytes.fromhex(iv_hex))
            else:
                raw = sm4_decrypt(sm4_key, raw, "ECB")
        if profile.compress_type == "GZIP":
            raw = _gunzip(raw, _max_plain_bytes(profile))
        return json_loads(raw)
    except (ValueError, TypeError, RecursionError, zlib.error, binascii.Error) as exc:
        raise EnvelopeError("1004", str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def seal_request(
    payload: dict,
    *,
    service_code: str,
    version: str,
    creds: Credentials,
    profile: Profile,
    timestamp: datetime | str,
    nonce: str | None = None,
) -> dict:
    """Build the signed request envelope (§2); ``timestamp`` is platform time (datetime or string)."""
    data, iv = encode_payload(payload, profile, creds.sm4_key)
    env = {
        "appId": creds.app_id,
        "orgCode": creds.org_code,
        "serviceCode": service_code,
        "version": version,
        "timestamp": _ts(timestamp),
        "nonce": nonce or new_nonce(),
        "signType": profile.sign_type,
        "encryptType": profile.encrypt_type,
        "compressType": profile.compress_type,
    }
    if iv is not None:
        env["iv"] = iv
    env["data"] = data
    env["sign"] = _sign_field(env, creds, profile)
    return env


def open_request(
    envelope: dict,
    *,
    creds_for_app: Callable[[str], Credentials | None],
    profile: Profile,
    now: datetime,
    nonce_cache: NonceStore,
) -> OpenedRequest:
    """Platform side: check and open a request envelope, raising EnvelopeError with the protocol code."""
    if not isinstance(envelope, dict):
        raise EnvelopeError("1001", "envelope is not a JSON object")
    missing = [f for f in REQUEST_FIELDS if not isinstance(envelope.get(f), str) or not envelope[f]]
    if missing:
        raise EnvelopeError("1001", f"missing or empty fields: {', '.join(missing)}")
    if envelope["signType"] != profile.sign_type:
        raise EnvelopeError(
            "1001", f"signType {envelope['signType']} not accepted (expected {profile.sign_type})"
        )
    app_id = envelope["appId"]
    creds = creds_for_app(app_id)
    if creds is None:
        raise EnvelopeError("1001", f"unknown appId {app_id}")
    if envelope["orgCode"] != creds.org_code:
        raise EnvelopeError("1001", f"orgCode does not belong to appId {app_id}")

    _check_sign_field(envelope, creds, profile)

    ts = _check_fresh(envelope, app_id, profile, now, nonce_cache)

    if envelope["encryptType"] != profile.encrypt_type or envelope["compressType"] != profile.compress_type:
        raise EnvelopeError(
            "1004",
            f"encryptType/compressType {envelope['encryptType']}/{envelope['compressType']} not accepted "
            f"(expected {profile.encrypt_type}/{profile.compress_type})",
        )
    payload = decode_payload(envelope["data"], envelope.get("iv"), profile, creds.sm4_key)
    if not isinstance(payload, dict):
        raise EnvelopeError("1004", "payload is not a JSON object")
    return OpenedRequest(
        app_id=app_id,
        org_code=envelope["orgCode"],
        service_code=envelope["serviceCode"],
        version=envelope["version"],
        timestamp=ts,
        nonce=envelope["nonce"],
        payload=payload,
    )


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def seal_response(
    code: str,
    message: str,
    data: Any = None,
    *,
    creds: Credentials,
    profile: Profile,
    timestamp: datetime | str,
    nonce: str | None = None,
) -> dict:
    """Platform side: the signed response envelope (§3); ``data`` None leaves ``data`` out."""
    env = {"code": str(code), "message": message, "timestamp": _ts(timestamp), "nonce": nonce or new_nonce()}
    if data is not None:
        encoded, iv = encode_payload(data, profile, creds.sm4_key)
        if iv is not None:
            env["iv"] = iv
        env["data"] = encoded
    env["sign"] = _sign_field(env, creds, profile)
    return env


def open_response(
    envelope: dict, *, creds: Credentials, profile: Profile, now: datetime | None, nonce_cache: NonceStore
) -> Response:
    """Client side: check and open a response like a request (§3), raising EnvelopeError.

    Order: required fields and signature (1001) → timestamp within ±window of ``now``, the
    client's platform time (1002) → nonce never seen by ``nonce_cache`` (1003) → data (1004).
    ``now`` None skips only the window: for the timestamp service's answer (§5), which is what
    measures platform time and so has nothing to be compared with (see ``PlatformClient.refresh_time``).
    """
    if not isinstance(envelope, dict):
        raise EnvelopeError("1001", "response is not a JSON object")
    for name in ("code", "timestamp", "nonce"):
        if not isinstance(envelope.get(name), str) or not envelope[name]:
            raise EnvelopeError("1001", f"response without {name}")
    _check_sign_field(envelope, creds, profile)
    ts = _check_fresh(envelope, creds.app_id, profile, now, nonce_cache)
    data = envelope.get("data")
    if isinstance(data, str) and data:
        data = decode_payload(data, envelope.get("iv"), profile, creds.sm4_key)
    else:
        data = None
    message = envelope.get("message")
    return Response(
        code=envelope["code"], message=message if isinstance(message, str) else "", data=data, timestamp=ts
    )


# ---------------------------------------------------------------------------------------------
# Report browse links (§5)
# ---------------------------------------------------------------------------------------------

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}", re.ASCII)


def make_browse_link(
    viewer_url: str, fields: dict, *, private_key: SM2PrivateKey, profile: Profile, now: datetime
) -> str:
    """``viewer_url?fields..&expires=<unix s>&sign=<Base64url SM2 signature, unpadded>``."""
    parts = urlsplit(viewer_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for k, v in fields.items():
        if k in ("expires", "sign") or k in query:
            raise ValueError(f"browse link field {k!r} is reserved or duplicated")
        query[k] = str(v)
    query["expires"] = str(int(now.timestamp()) + profile.browse_link_lifetime_seconds)
    sig = private_key.sign(
        string_to_sign(query), signer_id=profile.signer_id, encoding=profile.signature_encoding
    )
    query["sign"] = base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def verify_browse_link(url: str, *, public_key: SM2PublicKey, profile: Profile, now: datetime) -> dict:
    """Check a browse link; returns its query fields (without ``sign``).

    Bad, missing or tampered signature → EnvelopeError("1001"); past ``expires`` → LinkExpiredError.
    """
    try:
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise EnvelopeError("1001", f"malformed link: {exc}") from None
    query = dict(pairs)
    if len(query) != len(pairs):
        raise EnvelopeError("1001", "duplicated query field")
    sign = query.pop("sign", "")
    if not _B64URL_RE.fullmatch(sign):
        raise EnvelopeError("1001", "missing or malformed sign")
    signature = base64.urlsafe_b64decode(sign.rstrip("=") + "=" * (-len(sign.rstrip("=")) % 4))
    if not public_key.verify(
        string_to_sign(query), signature, signer_id=profile.signer_id, encoding=profile.signature_encoding
    ):
        raise EnvelopeError("1001", "browse link signature does not verify")
    try:
        expires = int(query["expires"])
    except (KeyError, ValueError):
        raise EnvelopeError("1001", "missing or malformed expires") from None
    now_s = int(now.timestamp())  # whole seconds, like expires
    if now_s > expires:
        raise LinkExpiredError(f"expired {now_s - expires}s ago")
    if expires - now_s > profile.browse_link_lifetime_seconds + profile.timestamp_window_seconds:
        raise EnvelopeError("1002", "expires is further away than the allowed link lifetime")
    return query


# ---------------------------------------------------------------------------------------------
# Files (§6)
# ---------------------------------------------------------------------------------------------


def file_fields(file_name: str, content: bytes, file_type: str = "pdf") -> dict:
    """The §6 file fields for raw ``content``."""
    return {
        "fileName": file_name,
        "fileType": file_type,
        "fileSize": len(content),
        "fileHash": sm3_hex(content),
        "fileContent": base64.b64encode(content).decode("ascii"),
    }


def check_file_fields(d: dict, profile: Profile) -> list[dict]:
    """Platform-side checks of §6 file fields → ``[{"field", "rule", "message"}]`` (empty if fine).

    Rules: ``required``, ``type``, ``maxSize``, ``base64``, ``sizeMismatch``, ``hashMismatch``.
    """
    errors = []
    for name in ("fileName", "fileType", "fileHash", "fileContent"):
        if not isinstance(d.get(name), str) or not d[name]:
            errors.append(field_error(name, "required", f"缺少{name} / {name} is required"))
    size = d.get("fileSize")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        errors.append(
            field_error(
                "fileSize", "type", "fileSize必须为非负整数 / fileSize must be a non-negative integer"
            )
        )
        size = None
    elif size > profile.max_file_bytes:
        errors.append(
            field_error(
                "fileSize",
                "maxSize",
                f"文件超过{profile.max_file_bytes}字节 / file exceeds {profile.max_file_bytes} bytes",
            )
        )
    content = d.get("fileContent")
    if not isinstance(content, str) or not content:
        return errors
    if len(content) // 4 * 3 > profile.max_file_bytes + 2:
        if not any(e["rule"] == "maxSize" for e in errors):
            errors.append(
                field_error(
                    "fileContent",
                    "maxSize",
                    f"文件超过{profile.max_file_bytes}字节 / file exceeds {profile.max_file_bytes} bytes",
                )
            )
        return errors
    try:
        raw = _b64decode_strict(content)
    except (binascii.Error, ValueError):
        errors.append(
            field_error(
                "fileContent", "base64", "fileContent不是合法Base64 / fileContent is not valid Base64"
            )
        )
        return errors
    if size is not None and len(raw) != size:
        errors.append(
            field_error(
                "fileSize",
                "sizeMismatch",
                f"fileSize与内容长度{len(raw)}不符 / fileSize does not match the content length {len(raw)}",
            )
        )
    file_hash = d.get("fileHash")
    if isinstance(file_hash, str) and file_hash and sm3_hex(raw) != file_hash.lower():
        errors.append(
            field_error(
                "fileHash",
                "hashMismatch",
                "文件SM3摘要不一致 / fileHash does not match the SM3 of fileContent",
            )
        )
    return errors
