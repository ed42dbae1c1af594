"""Software UKey agent: the stand-in for the CA vendor's workstation client and its USB key.

In a hospital the vendor installs a local service on each management workstation that talks to
the USB key (GM/T 0016 / 0020 style calls) and exposes them to the browser on 127.0.0.1. This
agent offers the same shape over HTTP JSON with CORS, holding one SM2 key, its certificate(s)
and a PIN in a keystore file:

    python -m esign.ukey_agent init  --keystore var/ukey/lab.json --pin <PIN> --staff-no 1001 \\
        --ca-url http://127.0.0.1:8702 --app-id BJ-HOSP-LIS-ESIGN --app-secret-file var/ca/app_secret
    python -m esign.ukey_agent serve --keystore var/ukey/lab.json --port 8710

The private key is stored SM4-encrypted under a key derived from the PIN; six wrong PINs lock
the key (the counter lives in the keystore, like a real token's retry counter).

HTTP (all JSON):
  GET  /api/v1/status                       → {present, keySerial, vendor, loggedIn, locked, retriesLeft}
  GET  /api/v1/certs                        → {certs: [{certSn, subject, staffNo, issuer, notBefore, notAfter, keySerial, certificate}]}
  POST /api/v1/login   {certSn, pin}        → {ok} | 401 {code: PIN_INCORRECT|LOCKED, message, retriesLeft}
  POST /api/v1/sign    {certSn, data, pin?} → {signature, certificate, keySerial, algorithm}   (data, signature Base64)
  POST /api/v1/logout                       → {ok}
  POST /api/v1/remove | /api/v1/insert      → simulate pulling out / plugging in the key
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hospital_interop.municipal import gm

from . import certs

FORMAT = "soft-ukey/1"
MAX_RETRIES = 6
PBKDF2_ROUNDS = 60_000
VENDOR = "软件 UKey（模拟）"


def _derive(pin: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, PBKDF2_ROUNDS, dklen=32)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
    tmp.replace(path)


def create_keystore(path: Path, *, pin: str, key: gm.SM2PrivateKey, certificates: list[bytes],
                    serial: str | None = None, label: str = "") -> dict:
    if not (6 <= len(pin) <= 16):
        raise ValueError("PIN must be 6-16 characters")
    salt, key_salt, iv = os.urandom(16), os.urandom(16), os.urandom(16)
    store = {
        "format": FORMAT, "keySerial": serial or f"UK{secrets.token_hex(6).upper()}", "label": label,
        "pinSalt": salt.hex(), "pinCheck": _derive(pin, salt).hex(), "keySalt": key_salt.hex(), "iv": iv.hex(),
        "encryptedKey": base64.b64encode(gm.sm4_encrypt(_derive(pin, key_salt)[:16], key.to_pem(), "CBC", iv)).decode(),
        "certificates": [base64.b64encode(c).decode() for c in certificates],
        "retriesLeft": MAX_RETRIES,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, store)
    return store


class Token:
    """One (software) USB key: PIN check with a retry counter, login state, signing."""

    def __init__(self, path: Path):
        self.path = path
        self.store = json.loads(path.read_text())
        if self.store.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} keystore")
        self.lock = threading.Lock()
        self.present = True
        self._key: gm.SM2PrivateKey | None = None

    @property
    def serial(self) -> str:
        return self.store["keySerial"]

    def certificates(self) -> list[certs.Certificate]:
        return [certs.load_certificate(c) for c in self.store["certificates"]]

    def _cert(self, cert_sn: str) -> certs.Certificate | None:
        return next((c for c in self.certificates() if c.serial == cert_sn), None)

    def login(self, pin: str) -> tuple[bool, str, str]:
        """(ok, code, message)."""
        with self.lock:
            if not self.present:
                return False, "NO_DEVICE", "未检测到 UKey，请插入 UKey。"
            if self.store["retriesLeft"] <= 0:
                return False, "LOCKED", "UKey 已锁定（PIN 码错误次数过多），请联系 CA 管理员解锁。"
            check = _derive(pin or "", bytes.fromhex(self.store["pinSalt"])).hex()
            if not secrets.compare_digest(check, self.store["pinCheck"]):
                self.store["retriesLeft"] -= 1
                _write(self.path, self.store)
                left = self.store["retriesLeft"]
                if left <= 0:
                    return False, "LOCKED", "PIN 码错误，UKey 已锁定，请联系 CA 管理员解锁。"
                return False, "PIN_INCORRECT", f"PIN 码错误，还可尝试 {left} 次。"
            pem = gm.sm4_decrypt(_derive(pin, bytes.fromhex(self.store["keySalt"]))[:16],
                                 base64.b64decode(self.store["encryptedKey"]), "CBC", bytes.fromhex(self.store["iv"]))
            self._key = gm.load_private_key_pem(pem)
            if self.store["retriesLeft"] != MAX_RETRIES:
                self.store["retriesLeft"] = MAX_RETRIES
                _write(self.path, self.store)
            return True, "OK", "登录成功"

    def logout(self) -> None:
        with self.lock:
            self._key = None

    def status(self) -> dict:
        return {"present": self.present, "keySerial": self.serial if self.present else "", "vendor": VENDOR,
                "loggedIn": self._key is not None, "locked": self.store["retriesLeft"] <= 0,
                "retriesLeft": self.store["retriesLeft"]}


class Handler(BaseHTTPRequestHandler):
    token: Token
    allow_origin: str = "*"

    def log_message(self, fmt, *args):
        pass

    def _cors(self) -> None:
        origin = self.headers.get("Origin") or "*"
        self.send_header("Access-Control-Allow-Origin", origin if self.allow_origin == "*" else self.allow_origin)
        self.send_header("Vary", "Origin")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Allow-Private-Network", "true")

    def _json(self, status: int, obj: dict) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self):
        self.send_response(204)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        t = self.token
        if self.path == "/api/v1/status":
            return self._json(200, t.status())
        if self.path == "/api/v1/certs":
            if not t.present:
                return self._json(200, {"certs": []})
            return self._json(200, {"certs": [{
                "certSn": c.serial, "subject": c.subject_cn, "staffNo": c.subject_serial, "issuer": c.issuer_cn,
                "notBefore": c.not_before.isoformat(), "notAfter": c.not_after.isoformat(),
                "keySerial": t.serial, "certificate": c.b64} for c in t.certificates()]})
        self._json(404, {"code": "NOT_FOUND", "message": "不支持的接口"})

    def do_POST(self):
        t = self.token
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"code": "BAD_REQUEST", "message": "请求格式错误"})
        if self.path == "/api/v1/remove":
            t.present = False
            t.logout()
            return self._json(200, {"ok": True})
        if self.path == "/api/v1/insert":
            t.present = True
            return self._json(200, {"ok": True})
        if self.path == "/api/v1/logout":
            t.logout()
            return self._json(200, {"ok": True})
        if not t.present:
            return self._json(409, {"code": "NO_DEVICE", "message": "未检测到 UKey，请插入 UKey。"})
        if self.path == "/api/v1/login":
            if t._cert(body.get("certSn", "")) is None:
                return self._json(404, {"code": "NO_CERT", "message": "UKey 中没有所选证书。"})
            ok, code, message = t.login(str(body.get("pin", "")))
            if not ok:
                return self._json(401, {"code": code, "message": message, "retriesLeft": t.store["retriesLeft"]})
            return self._json(200, {"ok": True, "keySerial": t.serial})
        if self.path == "/api/v1/sign":
            cert = t._cert(body.get("certSn", ""))
            if cert is None:
                return self._json(404, {"code": "NO_CERT", "message": "UKey 中没有所选证书。"})
            if body.get("pin"):
                ok, code, message = t.login(str(body["pin"]))
                if not ok:
                    return self._json(401, {"code": code, "message": message, "retriesLeft": t.store["retriesLeft"]})
            if t._key is None:
                return self._json(401, {"code": "NOT_LOGGED_IN", "message": "UKey 未登录，请先输入 PIN 码登录。"})
            try:
                data = base64.b64decode(body.get("data", ""), validate=True)
            except ValueError:
                return self._json(400, {"code": "BAD_REQUEST", "message": "待签数据不是 Base64"})
            signature = t._key.sign(data)
            return self._json(200, {"signature": base64.b64encode(signature).decode(), "certificate": cert.b64,
                                    "certSn": cert.serial, "keySerial": t.serial, "algorithm": "SM3withSM2"})
        self._json(404, {"code": "NOT_FOUND", "message": "不支持的接口"})


def make_server(keystore: Path, host: str = "127.0.0.1", port: int = 8710, allow_origin: str = "*"):
    token = Token(keystore)
    httpd = ThreadingHTTPServer((host, port), type("BoundHandler", (Handler,), {"token": token,
                                                                                "allow_origin": allow_origin}))
    httpd.daemon_threads = True
    return httpd


def init_keystore(args) -> dict:
    """Generate the key on the 'UKey', have the CA issue its certificate, write the keystore."""
    from .client.reference import ReferenceVendorClient

    secret = Path(args.app_secret_file).read_text().strip().encode()
    client = ReferenceVendorClient(args.ca_url, args.app_id, secret)
    user = client.query_user(staff_no=args.staff_no)
    if user is None:
        raise SystemExit(f"staff number {args.staff_no} is not registered at the CA: register the signer first")
    key = gm.generate_sm2_key()
    serial = args.serial or f"UK{secrets.token_hex(6).upper()}"
    info = client.apply_ukey_certificate(user_id=user.user_id, public_key_hex=key.public_key().hex,
                                         key_serial=serial, valid_days=args.valid_days)
    return create_keystore(Path(args.keystore), pin=args.pin, key=key, serial=serial,
                           certificates=[base64.b64decode(info.certificate)], label=user.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m esign.ukey_agent", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a keystore: key pair, certificate from the CA, PIN")
    init.add_argument("--keystore", required=True)
    init.add_argument("--pin", required=True)
    init.add_argument("--staff-no", required=True)
    init.add_argument("--serial", help="UKey serial (default: random UK…)")
    init.add_argument("--ca-url", default="http://127.0.0.1:8702")
    init.add_argument("--app-id", default="BJ-HOSP-LIS-ESIGN")
    init.add_argument("--app-secret-file", required=True)
    init.add_argument("--valid-days", type=int, default=365)
    serve = sub.add_parser("serve", help="serve the keystore on a local port")
    serve.add_argument("--keystore", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8710)
    serve.add_argument("--allow-origin", default="*")
    args = parser.parse_args(argv)
    if args.command == "init":
        store = init_keystore(args)
        print(f"UKey {store['keySerial']} initialised in {args.keystore}")
        return
    httpd = make_server(Path(args.keystore), args.host, args.port, args.allow_origin)
    host, port = httpd.server_address[:2]
    print(f"UKey agent {httpd.RequestHandlerClass.token.serial} listening on http://{host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    sys.exit(main())
