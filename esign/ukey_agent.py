"""Software UKey agent: the stand-in for the CA vendor's workstation client and its USB key.

In a hospital the vendor installs a local service on each management workstation that talks to
the USB key (GM/T 0016 / 0020 style calls) and exposes them to the browser on 127.0.0.1. This
agent offers the same shape over HTTP JSON with CORS, holding one SM2 key, its certificate(s)
and a PIN in a keystore file:

    python -m esign.ukey_agent init  --keystore var/ukey/lab.json --pin <PIN> --staff-no 1001 \\
        --ca-url http://127.0.0.1:8702 --app-id BJ-HOSP-LIS-ESIGN --app-secret-file var/ca/app_secret
    python -m esign.ukey_agent serve --keystore var/ukey/lab.json --port 8710 \\
        --allow-origin https://lis.hospital.example [--allow-origin …] [--idle-logout 300]

The private key is stored SM4-encrypted under a key derived from the PIN; six wrong PINs lock
the key (the counter lives in the keystore, like a real token's retry counter).

Only the hospital-interop pages may use the key (docs/esign-protocol.md, "The workstation UKey
client"): every request is first checked — peer on loopback, `Host` a loopback name with this
agent's port, `Origin` (when sent) one of the configured `--allow-origin` values — and refused
with 403 before anything else, the PIN check included, so a foreign page neither gets a
signature nor burns a PIN retry. CORS headers are sent to allowed origins only. Signing needs
the PIN in the signing request itself, once per batch; the decrypted key is never kept between
requests. `login` only verifies the PIN; that "logged in" state authorises nothing and ends
after `--idle-logout` seconds without a PIN-verified operation.

HTTP (all JSON; POST bodies `application/json`):
  GET  /api/v1/status                         → {present, keySerial, vendor, loggedIn, locked, retriesLeft}
  GET  /api/v1/certs                          → {certs: [{certSn, subject, staffNo, issuer, notBefore, notAfter, keySerial, certificate}]}
  POST /api/v1/login   {certSn, pin}          → {ok, keySerial} | 401 {code: PIN_INCORRECT|LOCKED, message, retriesLeft}
  POST /api/v1/sign    {certSn, pin, items}   → {signatures, certificate, certSn, keySerial, algorithm}
                                                 (items, signatures: Base64, same order; 401 PIN_REQUIRED without pin)
  POST /api/v1/logout                         → {ok}
  POST /api/v1/remove | /api/v1/insert        → simulate pulling out / plugging in the key
  any request from elsewhere                  → 403 {code: FORBIDDEN_ORIGIN|FORBIDDEN_HOST|FORBIDDEN_PEER, message}
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from hospital_interop import logmask
from hospital_interop.municipal import gm

from . import certs, protocol

FORMAT = "soft-ukey/1"
MAX_RETRIES = 6
PBKDF2_ROUNDS = 60_000
VENDOR = "软件 UKey（模拟）"
# The demo web server (scripts/demo.sh, `manage.py runserver`): the pages' origin unless configured.
DEFAULT_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")
DEFAULT_IDLE_LOGOUT = 300.0  # seconds
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
MAX_BATCH = 100  # data items per signing request
MAX_BODY = 4 * 1024 * 1024  # bytes per request body
PIN_LENGTH = (6, 16)

log = logging.getLogger("esign.ukey_agent")


def _derive(pin: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, PBKDF2_ROUNDS, dklen=32)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
    tmp.replace(path)


def create_keystore(
    path: Path,
    *,
    pin: str,
    key: gm.SM2PrivateKey,
    certificates: list[bytes],
    serial: str | None = None,
    label: str = "",
) -> dict:
    if not (6 <= len(pin) <= 16):
        raise ValueError("PIN must be 6-16 characters")
    salt, key_salt, iv = os.urandom(16), os.urandom(16), os.urandom(16)
    store = {
        "format": FORMAT,
        "keySerial": serial or f"UK{secrets.token_hex(6).upper()}",
        "label": label,
        "pinSalt": salt.hex(),
        "pinCheck": _derive(pin, salt).hex(),
        "keySalt": key_salt.hex(),
        "iv": iv.hex(),
        "encryptedKey": base64.b64encode(
            gm.sm4_encrypt(_derive(pin, key_salt)[:16], key.to_pem(), "CBC", iv)
        ).decode(),
        "certificates": [base64.b64encode(c).decode() for c in certificates],
        "retriesLeft": MAX_RETRIES,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, store)
    return store


def parse_origin(value: str) -> str:
    """A configured page origin, serialised as browsers send it in `Origin`.

    `scheme://host[:port]`, scheme http or https, lower case, the default port left out, no path,
    query or credentials. Raises ValueError for anything else (a wildcard included): the agent
    compares the `Origin` header with these strings exactly."""
    text = value.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or "*" in text:
        raise ValueError(f"{value!r} is not an http(s) origin")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} has more than scheme, host and port")
    port = parts.port  # ValueError when it is not a number in range
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def is_loopback_host(header: str | None, port: int) -> bool:
    """Whether a `Host` header names this agent: a loopback name with the agent's port.

    Anything else is DNS rebinding (a foreign name resolved to 127.0.0.1) or not meant for us."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        name, bracket, rest = host.partition("]")
        name += bracket
    else:
        name, colon, rest = host.partition(":")
        rest = colon + rest
    if rest and not (rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit()):
        return False
    return name in LOOPBACK_NAMES and (int(rest[1:]) if rest else 80) == port


class Refused(Exception):
    """A request the agent answers with an error: HTTP status, code, Chinese message, optional field/rule."""

    def __init__(self, status: int, code: str, message: str, *, field: str = "", rule: str = "", **extra):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.answer = {
            "code": code,
            "message": message,
            **({"field": field, "rule": rule} if field else {}),
            **extra,
        }


class Token:
    """One (software) USB key: PIN check with a retry counter, signing, the idle-limited login state.

    The private key is decrypted with the PIN inside each PIN-verified call and dropped after it;
    nothing that signs survives a request."""

    def __init__(self, path: Path, idle_logout: float = DEFAULT_IDLE_LOGOUT):
        self.path = path
        self.store = json.loads(path.read_text())
        if self.store.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} keystore")
        self.lock = threading.Lock()
        self.present = True
        self.idle_logout = idle_logout
        self._verified_at: float | None = None  # monotonic time of the last PIN-verified operation

    @property
    def serial(self) -> str:
        return self.store["keySerial"]

    @property
    def logged_in(self) -> bool:
        at = self._verified_at
        return at is not None and time.monotonic() - at < self.idle_logout

    def certificates(self) -> list[certs.Certificate]:
        return [certs.load_certificate(c) for c in self.store["certificates"]]

    def certificate(self, cert_sn: str) -> certs.Certificate | None:
        return next((c for c in self.certificates() if c.serial == cert_sn), None)

    def _unlock(self, pin: str) -> gm.SM2PrivateKey:
        """Verify the PIN (a wrong one counts against the retries) and decrypt the key. Caller holds the lock."""
        if not self.present:
            raise Refused(409, "NO_DEVICE", "未检测到 UKey，请插入 UKey。")
        if self.store["retriesLeft"] <= 0:
            raise Refused(
                401, "LOCKED", "UKey 已锁定（PIN 码错误次数过多），请联系 CA 管理员解锁。", retriesLeft=0
            )
        check = _derive(pin, bytes.fromhex(self.store["pinSalt"])).hex()
        if not secrets.compare_digest(check, self.store["pinCheck"]):
            self.store["retriesLeft"] -= 1
            _write(self.path, self.store)
            left = self.store["retriesLeft"]
            if left <= 0:
                raise Refused(401, "LOCKED", "PIN 码错误，UKey 已锁定，请联系 CA 管理员解锁。", retriesLeft=0)
            raise Refused(401, "PIN_INCORRECT", f"PIN 码错误，还可尝试 {left} 次。", retriesLeft=left)
        if self.store["retriesLeft"] != MAX_RETRIES:
            self.store["retriesLeft"] = MAX_RETRIES
            _write(self.path, self.store)
        self._verified_at = time.monotonic()
        pem = gm.sm4_decrypt(
            _derive(pin, bytes.fromhex(self.store["keySalt"]))[:16],
            base64.b64decode(self.store["encryptedKey"]),
            "CBC",
            bytes.fromhex(self.store["iv"]),
        )
        return gm.load_private_key_pem(pem)

    def login(self, pin: str) -> None:
        """Verify the PIN only (VerifyPIN): it opens the idle-limited login state, which authorises nothing."""
        with self.lock:
            self._unlock(pin)

    def sign_batch(self, pin: str, items: list[bytes]) -> list[bytes]:
        """Sign every item of one batch after verifying the PIN given with it; SM3withSM2, DER (r, s)."""
        with self.lock:
            key = self._unlock(pin)
            return [key.sign(data) for data in items]

    def logout(self) -> None:
        with self.lock:
            self._verified_at = None

    def status(self) -> dict:
        return {
            "present": self.present,
            "keySerial": self.serial if self.present else "",
            "vendor": VENDOR,
            "loggedIn": self.present and self.logged_in,
            "locked": self.store["retriesLeft"] <= 0,
            "retriesLeft": self.store["retriesLeft"],
        }


def _text_field(body: dict, name: str, label: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise Refused(400, "BAD_REQUEST", f"{label}应为字符串。", field=name, rule="type")
    return value


def _pin(body: dict) -> str:
    pin = _text_field(body, "pin", "PIN 码")
    if not pin:
        raise Refused(
            401, "PIN_REQUIRED", "签名需要输入 PIN 码（每批签名输入一次）。", field="pin", rule="required"
        )
    if not PIN_LENGTH[0] <= len(pin) <= PIN_LENGTH[1]:
        raise Refused(400, "BAD_REQUEST", "PIN 码应为 6–16 位。", field="pin", rule="length")
    return pin


def _items(body: dict) -> list[bytes]:
    """The batch to sign: a non-empty list of at most MAX_BATCH Base64 strings, decoded."""
    items = body.get("items")
    if items is None or items == []:
        raise Refused(
            400,
            "BAD_REQUEST",
            "待签数据不能为空：items 应为至少一项 Base64 数据的列表。",
            field="items",
            rule="required",
        )
    if not isinstance(items, list):
        raise Refused(400, "BAD_REQUEST", "items 应为 Base64 字符串的列表。", field="items", rule="type")
    if len(items) > MAX_BATCH:
        raise Refused(
            400, "BAD_REQUEST", f"一批最多签署 {MAX_BATCH} 项数据。", field="items", rule="max_count"
        )
    decoded = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, str):
            raise Refused(
                400, "BAD_REQUEST", f"第 {n} 项待签数据应为 Base64 字符串。", field="items", rule="type"
            )
        if not item:
            raise Refused(400, "BAD_REQUEST", f"第 {n} 项待签数据为空。", field="items", rule="required")
        try:
            decoded.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            raise Refused(
                400, "BAD_REQUEST", f"第 {n} 项待签数据不是有效的 Base64。", field="items", rule="base64"
            ) from None
    return decoded


class Handler(BaseHTTPRequestHandler):
    """HTTP front of the token. Every request passes `_admit` first; CORS only for allowed origins."""

    token: Token
    allowed_origins: frozenset[str] = frozenset(DEFAULT_ORIGINS)
    server_version = "SoftUKeyAgent/1"
    timeout = 30  # seconds per socket operation: a client that stalls mid-request does not hold a thread

    def log_message(self, fmt, *args):
        pass

    # -- who may talk to the key ----------------------------------------------------------------

    def _origin(self) -> str | None:
        origins = self.headers.get_all("Origin") or []
        return origins[0] if len(origins) == 1 else ("" if origins else None)

    def _admit(self) -> None:
        """Refuse (403) a request not from this workstation's hospital-interop page, before anything else.

        * the peer must be on loopback;
        * `Host` must be a loopback name with this agent's port (DNS rebinding sends the rebound name);
        * `Origin`, when present, must be one of the allowed origins (`null` never is);
        * without `Origin`, a browser still marks a foreign page's request `Sec-Fetch-Site: cross-site`
          (navigation, `<script src>`): only requests a browser did not mark (a local program such as
          curl or the tests) or marked `none` (typed by the user) are served."""
        port = self.server.server_address[1]
        if not ipaddress.ip_address(self.client_address[0].split("%")[0]).is_loopback:
            raise Refused(403, "FORBIDDEN_PEER", "UKey 客户端只接受本机请求。")
        if len(self.headers.get_all("Host") or []) != 1 or not is_loopback_host(
            self.headers.get("Host"), port
        ):
            raise Refused(
                403,
                "FORBIDDEN_HOST",
                f"请求地址不是本机 UKey 客户端（应为 127.0.0.1:{port} 或 localhost:{port}）。",
            )
        origin = self._origin()
        if origin is None:
            if self.headers.get("Sec-Fetch-Site", "none").strip().lower() != "none":
                raise Refused(403, "FORBIDDEN_ORIGIN", "该网页无权使用本机 UKey。")
        elif origin not in self.allowed_origins:
            raise Refused(
                403, "FORBIDDEN_ORIGIN", "该网页无权使用本机 UKey：UKey 客户端只接受已配置的检验系统地址。"
            )

    def _cors(self, *, preflight: bool = False) -> None:
        self.send_header("Vary", "Origin")
        origin = self._origin()
        if not origin or origin not in self.allowed_origins:
            return
        self.send_header("Access-Control-Allow-Origin", origin)
        if preflight:
            self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
            self.send_header("Access-Control-Max-Age", "600")
            if self.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
                self.send_header("Access-Control-Allow-Private-Network", "true")

    def _send(self, status: int, obj: dict | None, *, cors: bool = True, preflight: bool = False) -> None:
        body = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        if cors:
            self._cors(preflight=preflight)
        else:
            self.send_header("Vary", "Origin")
        self.send_header("Cache-Control", "no-store")
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, route) -> None:
        try:
            self._admit()
        except Refused as exc:
            log.warning(
                "refused %s %s: %s (Origin %r, Host %r, peer %s)",
                self.command,
                self.path.split("?")[0],
                exc.code,
                self._origin(),
                self.headers.get("Host"),
                self.client_address[0],
            )
            return self._send(exc.status, exc.answer, cors=False)
        try:
            status, answer = route()
        except Refused as exc:
            status, answer = exc.status, exc.answer
        self._send(status, answer, preflight=self.command == "OPTIONS")

    # -- routes ---------------------------------------------------------------------------------

    def do_OPTIONS(self):
        self._handle(lambda: (204, None))

    def do_GET(self):
        self._handle(self._get)

    def do_POST(self):
        self._handle(self._post)

    def _get(self) -> tuple[int, dict]:
        t = self.token
        if self.path == "/api/v1/status":
            return 200, t.status()
        if self.path == "/api/v1/certs":
            if not t.present:
                return 200, {"certs": []}
            return 200, {
                "certs": [
                    {
                        "certSn": c.serial,
                        "subject": c.subject_cn,
                        "staffNo": c.subject_serial,
                        "issuer": c.issuer_cn,
                        "notBefore": c.not_before.isoformat(),
                        "notAfter": c.not_after.isoformat(),
                        "keySerial": t.serial,
                        "certificate": c.b64,
                    }
                    for c in t.certificates()
                ]
            }
        raise Refused(404, "NOT_FOUND", "不支持的接口")

    def _body(self) -> dict:
        """The JSON object posted; 415 / 413 / 400 otherwise (a JSON content type also forces a browser preflight)."""
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise Refused(
                415, "UNSUPPORTED_MEDIA_TYPE", "请求内容应为 JSON（Content-Type: application/json）。"
            )
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise Refused(400, "BAD_REQUEST", "请求缺少有效的 Content-Length。", field="body", rule="length")
        # more digits than MAX_BODY has is too large without int(), which refuses 4,300+ digits
        if len(raw_length.lstrip("0")) > len(str(MAX_BODY)) or int(raw_length) > MAX_BODY:
            raise Refused(
                413,
                "TOO_LARGE",
                f"请求内容超过 {MAX_BODY // (1024 * 1024)} MB。",
                field="body",
                rule="max_size",
            )
        raw = self.rfile.read(int(raw_length))
        try:
            body = json.loads(raw or b"{}")
        except (UnicodeDecodeError, ValueError):
            raise Refused(
                400, "BAD_REQUEST", "请求格式错误：不是有效的 JSON。", field="body", rule="json"
            ) from None
        if not isinstance(body, dict):
            raise Refused(400, "BAD_REQUEST", "请求格式错误：应为 JSON 对象。", field="body", rule="type")
        return body

    def _chosen_cert(self, body: dict) -> certs.Certificate:
        cert = self.token.certificate(_text_field(body, "certSn", "证书序列号"))
        if cert is None:
            raise Refused(404, "NO_CERT", "UKey 中没有所选证书。", field="certSn", rule="exists")
        return cert

    def _post(self) -> tuple[int, dict]:
        t = self.token
        body = self._body()
        if self.path == "/api/v1/remove":
            t.present = False
            t.logout()
            return 200, {"ok": True}
        if self.path == "/api/v1/insert":
            t.present = True
            return 200, {"ok": True}
        if self.path == "/api/v1/logout":
            t.logout()
            return 200, {"ok": True}
        if self.path not in ("/api/v1/login", "/api/v1/sign"):
            raise Refused(404, "NOT_FOUND", "不支持的接口")
        if not t.present:
            raise Refused(409, "NO_DEVICE", "未检测到 UKey，请插入 UKey。")
        cert = self._chosen_cert(body)
        if self.path == "/api/v1/login":
            t.login(_pin(body))
            return 200, {"ok": True, "keySerial": t.serial}
        items = _items(body)  # checked before the PIN: a malformed request costs no retry
        signatures = t.sign_batch(_pin(body), items)
        return 200, {
            "signatures": [base64.b64encode(s).decode() for s in signatures],
            "certificate": cert.b64,
            "certSn": cert.serial,
            "keySerial": t.serial,
            "algorithm": "SM3withSM2",
        }


def _loopback_bind(host: str) -> tuple[str, socket.AddressFamily]:
    """The agent listens on loopback only (the browser on this workstation is its only client)."""
    if host == "localhost":
        return "127.0.0.1", socket.AF_INET
    address = ipaddress.ip_address(host)  # ValueError for a name
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    return host, socket.AF_INET6 if address.version == 6 else socket.AF_INET


def make_server(
    keystore: Path,
    host: str = "127.0.0.1",
    port: int = 8710,
    allow_origins: Iterable[str] = DEFAULT_ORIGINS,
    idle_logout: float = DEFAULT_IDLE_LOGOUT,
):
    """The agent's HTTP server on a loopback address, answering the given page origins only."""
    address, family = _loopback_bind(host)
    origins = frozenset(parse_origin(o) for o in allow_origins)
    if not origins:
        raise ValueError("at least one allowed origin is needed")
    server_class = type(
        "AgentServer", (logmask.LoggedServerErrors, ThreadingHTTPServer), {"address_family": family}
    )
    httpd = server_class(
        (address, port),
        type("BoundHandler", (Handler,), {"token": Token(keystore, idle_logout), "allowed_origins": origins}),
    )
    httpd.daemon_threads = True
    return httpd


def init_keystore(args) -> dict:
    """Generate the key on the 'UKey', have the CA issue its certificate, write the keystore."""
    from .client.reference import ReferenceVendorClient

    secret = Path(args.app_secret_file).read_text().strip().encode()
    client = ReferenceVendorClient(args.ca_url, args.app_id, secret)
    user = client.query_user(staff_no=args.staff_no)
    if user is None:
        raise SystemExit(
            f"staff number {args.staff_no} is not registered at the CA: register the signer first"
        )
    key = gm.generate_sm2_key()
    serial = args.serial or f"UK{secrets.token_hex(6).upper()}"
    info = client.apply_ukey_certificate(
        user_id=user.user_id,
        public_key_hex=key.public_key().hex,
        key_serial=serial,
        valid_days=args.valid_days,
    )
    return create_keystore(
        Path(args.keystore),
        pin=args.pin,
        key=key,
        serial=serial,
        certificates=[base64.b64decode(info.certificate)],
        label=user.name,
    )


def _argument(convert, what: str):
    def parse(value: str):
        try:
            return convert(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what}: {exc}") from None

    parse.__name__ = what
    return parse


def _loopback_host(value: str) -> str:
    _loopback_bind(value)
    return value


def _positive_seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m esign.ukey_agent", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a keystore: key pair, certificate from the CA, PIN")
    init.add_argument("--keystore", required=True)
    init.add_argument("--pin", required=True)
    init.add_argument("--staff-no", required=True)
    init.add_argument("--serial", help="UKey serial (default: random UK…)")
    init.add_argument("--ca-url", default="http://127.0.0.1:8702")
    init.add_argument("--app-id", default=protocol.DEMO_APP_ID)
    init.add_argument("--app-secret-file", required=True)
    init.add_argument("--valid-days", type=int, default=365)
    serve = sub.add_parser("serve", help="serve the keystore on a local port")
    serve.add_argument("--keystore", required=True)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        type=_argument(_loopback_host, "loopback address"),
        help="loopback address to listen on (default 127.0.0.1)",
    )
    serve.add_argument("--port", type=int, default=8710)
    serve.add_argument(
        "--allow-origin",
        dest="allow_origins",
        action="append",
        type=_argument(parse_origin, "origin"),
        metavar="ORIGIN",
        help="origin of the hospital-interop pages allowed to use the key, e.g. "
        "https://lis.hospital.example; repeat for several (default: "
        + " and ".join(DEFAULT_ORIGINS)
        + ", the demo server)",
    )
    serve.add_argument(
        "--idle-logout",
        type=_argument(_positive_seconds, "seconds"),
        default=DEFAULT_IDLE_LOGOUT,
        metavar="SECONDS",
        help=f"log the key out after this long without a PIN-verified operation "
        f"(default {DEFAULT_IDLE_LOGOUT:g})",
    )
    args = parser.parse_args(argv)
    if args.command == "init":
        store = init_keystore(args)
        print(f"UKey {store['keySerial']} initialised in {args.keystore}")
        return
    logmask.basic_config(
        logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )  # masked, like every process
    origins = args.allow_origins or list(DEFAULT_ORIGINS)
    httpd = make_server(Path(args.keystore), args.host, args.port, origins, args.idle_logout)
    host, port = httpd.server_address[:2]
    print(
        f"UKey agent {httpd.RequestHandlerClass.token.serial} listening on http://{host}:{port}, "
        f"pages allowed from {', '.join(sorted(httpd.RequestHandlerClass.allowed_origins))}",
        flush=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    sys.exit(main())
