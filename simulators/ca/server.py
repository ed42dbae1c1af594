"""HTTP front of the CA simulator: the signed service API, the phone app's endpoints, a test hook.

* ``POST /service/v1/{operation}``: the reference vendor protocol (HMAC-SM3 signed JSON).
* ``/app/…``: what the 协同签名 phone app does after scanning (plain JSON; the phone's own
  channel is out of scope) and a small HTML page to play the phone in the demo.
* ``POST /sim/v1/{revoke,freeze,reissue}``: test hooks (loopback only) that a real CA does in
  its own console: revoke or freeze a certificate, re-issue one with a given validity;
  ``POST /sim/v1/timestamp-fault``: make the timestamp service misbehave (tests of the checks).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import secrets
from datetime import timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from esign import certs, protocol
from esign.validators import id_number_error, mask_id_number, mobile_error, name_error, staff_no_error
from hospital_interop import logmask
from hospital_interop.municipal import gm

from .store import Authority, Store, iso, parse_iso, utcnow

log = logging.getLogger("ca-simulator")

LOGIN_QR_SECONDS = 120
CERTDOWN_QR_SECONDS = 300
AUTOSIGN_QR_SECONDS = 300
PUSHSIGN_SECONDS = 600
MAX_AUTOSIGN_MINUTES = 24 * 60
TIMESTAMP_FAULTS = ("", "digest", "key", "time")
ANSWERED = {"FINISH": "已确认签名", "REFUSE": "已拒绝", "EXPIRE": "已过期"}


class OpError(Exception):
    def __init__(self, code: str, message: str | None = None, field: str | None = None):
        self.code, self.field = code, field
        self.message = message or protocol.CODES.get(code, "")
        super().__init__(f"{code} {self.message}")


def _need(params: dict, *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise OpError("2001", f"缺少参数 {name}", name)


def _b64(params: dict, name: str) -> bytes:
    _need(params, name)
    try:
        return base64.b64decode(params[name], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise OpError("2001", f"参数 {name} 不是有效的 Base64", name) from None


class CA:
    """The operations, independent of HTTP."""

    def __init__(self, store: Store, authority: Authority, public_url: str, org: str):
        self.store, self.authority, self.public_url, self.org = store, authority, public_url.rstrip("/"), org
        self.timestamp_fault = ""  # test hook: a misbehaving timestamp service (see sim_timestamp_fault)

    # -- helpers ---------------------------------------------------------------------------------
    def _user(self, user_id: str):
        row = self.store.one("SELECT * FROM users WHERE user_id = ?", user_id)
        if row is None:
            raise OpError("3001")
        return row

    def _user_view(self, row) -> dict:
        cert = self.store.one(
            "SELECT cert_sn FROM certs WHERE user_id = ? AND media = 'CLOUD' AND is_current = 1",
            row["user_id"],
        )
        return {
            "userId": row["user_id"],
            "name": row["name"],
            "staffNo": row["staff_no"],
            "idType": row["id_type"],
            "idNumber": mask_id_number(row["id_number"]),
            "department": row["department"],
            "mobile": row["mobile"],
            "status": row["status"],
            "certSn": cert["cert_sn"] if cert else "",
        }

    def _cert_state(self, row) -> str:
        if row["status"] in ("REVOKED", "FROZEN"):
            return row["status"]
        now = utcnow()
        if now < parse_iso(row["not_before"]):
            return "NOT_YET_VALID"
        if now > parse_iso(row["not_after"]):
            return "EXPIRED"
        return "VALID"

    def _cert_view(self, row) -> dict:
        cert = certs.load_certificate(row["der"])
        return {
            "certSn": row["cert_sn"],
            "userId": row["user_id"],
            "media": row["media"],
            "keySerial": row["key_serial"],
            "subject": cert.subject_cn,
            "staffNo": cert.subject_serial,
            "issuer": cert.issuer_cn,
            "notBefore": row["not_before"],
            "notAfter": row["not_after"],
            "algorithm": protocol.SIGNATURE_ALGORITHM,
            "status": self._cert_state(row),
            "certificate": base64.b64encode(row["der"]).decode(),
        }

    def _store_cert(
        self, db, cert: certs.Certificate, user_id: str, media: str, key_serial: str = ""
    ) -> None:
        db.execute(
            "UPDATE certs SET is_current = 0 WHERE user_id = ? AND media = ? AND key_serial = ?",
            (user_id, media, key_serial),
        )
        db.execute(
            "INSERT INTO certs(cert_sn, user_id, media, key_serial, der, not_before, not_after, issued_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cert.serial,
                user_id,
                media,
                key_serial,
                cert.der,
                iso(cert.not_before),
                iso(cert.not_after),
                iso(utcnow()),
            ),
        )

    def _issue(self, user, public_key, not_before=None, not_after=None) -> certs.Certificate:
        now = utcnow()
        return self.authority.issue(
            public_key=public_key,
            name=user["name"],
            staff_no=user["staff_no"],
            user_id=user["user_id"],
            department=user["department"],
            org=self.org,
            not_before=not_before or now - timedelta(minutes=5),
            not_after=not_after or now + timedelta(days=365),
        )

    def _current_cloud_cert(self, user_id: str):
        row = self.store.one(
            "SELECT * FROM certs WHERE user_id = ? AND media = 'CLOUD' AND is_current = 1", user_id
        )
        if row is None:
            raise OpError("4001")
        return row

    def _usable_cert(self, row) -> None:
        state = self._cert_state(row)
        code = {"REVOKED": "4101", "FROZEN": "4102", "EXPIRED": "4103", "NOT_YET_VALID": "4104"}.get(state)
        if code:
            raise OpError(code)

    def _cloud_key(self, user_id: str) -> gm.SM2PrivateKey:
        row = self.store.one("SELECT private_pem FROM cloud_keys WHERE user_id = ?", user_id)
        return gm.load_private_key_pem(row["private_pem"])

    def _timestamp(self, digest_hex: str) -> str:
        """A timestamp token over ``digest_hex``, signed with the CA key (or broken on purpose:
        see :meth:`sim_timestamp_fault`)."""
        fault = self.timestamp_fault
        body = json.dumps(
            {
                "tsa": self.authority.cert.subject_cn,
                "time": iso(utcnow() - (timedelta(days=1) if fault == "time" else timedelta(0))),
                "digest": gm.sm3_hex(b"another digest") if fault == "digest" else digest_hex,
                "hashAlg": "SM3",
                "serial": secrets.token_hex(8).upper(),
            },
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        key = gm.generate_sm2_key() if fault == "key" else self.authority.key
        sig = key.sign(body)
        return base64.b64encode(body).decode() + "." + base64.b64encode(sig).decode()

    def _new_tx(
        self, db, kind: str, user_id: str | None, seconds: int, body: dict, with_qr: bool = True
    ) -> dict:
        tx_id = f"{kind[:2]}{utcnow():%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"
        token = secrets.token_urlsafe(18) if with_qr else None
        now = utcnow()
        db.execute(
            "INSERT INTO transactions(id, kind, token, user_id, status, body, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx_id,
                kind,
                token,
                user_id,
                protocol.TOSIGN,
                json.dumps(body, ensure_ascii=False),
                iso(now),
                iso(now + timedelta(seconds=seconds)),
            ),
        )
        out = {
            "transactionId": tx_id,
            "expiresAt": iso(now + timedelta(seconds=seconds)),
            "status": protocol.TOSIGN,
        }
        if token:
            out["qrContent"] = f"{self.public_url}/app/qr/{token}"
        return out

    def _tx(self, tx_id: str, kind: str | tuple[str, ...]):
        kinds = (kind,) if isinstance(kind, str) else kind
        row = self.store.one("SELECT * FROM transactions WHERE id = ?", tx_id)
        if row is None or row["kind"] not in kinds:
            raise OpError("6001" if "PUSHSIGN" not in kinds else "5003")
        if row["status"] == protocol.TOSIGN and utcnow() > parse_iso(row["expires_at"]):
            with self.store.tx() as db:
                db.execute(
                    "UPDATE transactions SET status = ? WHERE id = ? AND status = ?",
                    (protocol.EXPIRE, tx_id, protocol.TOSIGN),
                )
            row = self.store.one("SELECT * FROM transactions WHERE id = ?", tx_id)
        return row

    def _sign_with_cloud_key(self, user_id: str, data: bytes) -> dict:
        cert_row = self._current_cloud_cert(user_id)
        self._usable_cert(cert_row)
        signature = self._cloud_key(user_id).sign(data)
        return {
            "signature": base64.b64encode(signature).decode(),
            "certificate": base64.b64encode(cert_row["der"]).decode(),
            "certSn": cert_row["cert_sn"],
            "signedAt": iso(utcnow()),
            "timestampToken": self._timestamp(gm.sm3_hex(signature)),
            "algorithm": protocol.SIGNATURE_ALGORITHM,
        }

    # -- operations (the client interface) ------------------------------------------------------
    def op_addUser(self, p: dict) -> dict:
        _need(p, "name", "idNumber", "staffNo")
        id_type = str(p.get("idType") or "1")
        for field, check in (("name", name_error), ("staffNo", staff_no_error)):
            if err := check(p[field]):
                raise OpError("2001", err[1], field)
        if id_type == "1" and (err := id_number_error(p["idNumber"])):
            raise OpError("2001", err[1], "idNumber")
        if p.get("mobile") and (err := mobile_error(p["mobile"])):
            raise OpError("2001", err[1], "mobile")
        id_number = str(p["idNumber"]).strip().upper()
        with self.store.tx() as db:
            existing = db.execute(
                "SELECT user_id FROM users WHERE id_number = ? OR staff_no = ?", (id_number, p["staffNo"])
            ).fetchone()
            if existing:
                raise OpError("3002", f"用户已存在（{existing['user_id']}）")
            user_id = f"U{self.store.next_number(db, 'user'):08d}"
            db.execute(
                "INSERT INTO users(user_id, name, id_type, id_number, staff_no, department, mobile, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    p["name"].strip(),
                    id_type,
                    id_number,
                    p["staffNo"].strip(),
                    p.get("department") or "检验科",
                    p.get("mobile") or "",
                    iso(utcnow()),
                ),
            )
            key = gm.generate_sm2_key()
            db.execute(
                "INSERT INTO cloud_keys(user_id, private_pem) VALUES (?, ?)", (user_id, key.to_pem().decode())
            )
            user = db.execute("SELECT * FROM users WHERE user_id = ?", (user_id,)).fetchone()
            cert = self._issue(user, key.public_key())
            self._store_cert(db, cert, user_id, "CLOUD")
        log.info("user %s added, certificate %s", user_id, cert.serial)
        return {**self._user_view(self._user(user_id))}

    def op_modifyUser(self, p: dict) -> dict:
        _need(p, "userId")
        self._user(p["userId"])
        changes = {}
        if p.get("mobile"):
            if err := mobile_error(p["mobile"]):
                raise OpError("2001", err[1], "mobile")
            changes["mobile"] = p["mobile"]
        if p.get("name"):
            if err := name_error(p["name"]):
                raise OpError("2001", err[1], "name")
            changes["name"] = p["name"].strip()
        if p.get("department"):
            changes["department"] = p["department"]
        if not changes:
            raise OpError("2001", "没有要修改的字段", "mobile")
        with self.store.tx() as db:
            for column, value in changes.items():
                db.execute(f"UPDATE users SET {column} = ? WHERE user_id = ?", (value, p["userId"]))
        return self._user_view(self._user(p["userId"]))

    def op_queryUser(self, p: dict) -> dict:
        for field, column in (("userId", "user_id"), ("staffNo", "staff_no"), ("idNumber", "id_number")):
            if p.get(field):
                row = self.store.one(
                    f"SELECT * FROM users WHERE {column} = ?",
                    str(p[field]).strip().upper() if field == "idNumber" else p[field],
                )
                if row is None:
                    raise OpError("3001")
                return self._user_view(row)
        raise OpError("2001", "请提供 userId、staffNo 或 idNumber 之一", "userId")

    def op_getCertInfo(self, p: dict) -> dict:
        if p.get("certSn"):
            row = self.store.one("SELECT * FROM certs WHERE cert_sn = ?", p["certSn"])
        else:
            _need(p, "userId")
            self._user(p["userId"])
            row = self.store.one(
                "SELECT * FROM certs WHERE user_id = ? AND media = ? AND is_current = 1 "
                "ORDER BY issued_at DESC",
                p["userId"],
                p.get("media") or "CLOUD",
            )
        if row is None:
            raise OpError("4001")
        return self._cert_view(row)

    def op_applyCert(self, p: dict) -> dict:
        """Issue a certificate for a key generated on a UKey (the CA counter's job)."""
        _need(p, "userId", "publicKey", "keySerial")
        user = self._user(p["userId"])
        try:
            public_key = gm.load_public_key_hex(p["publicKey"])
        except ValueError:
            raise OpError("2001", "publicKey 不是 SM2 公钥", "publicKey") from None
        days = int(p.get("validDays") or 365)
        now = utcnow()
        cert = self._issue(user, public_key, now - timedelta(minutes=5), now + timedelta(days=days))
        with self.store.tx() as db:
            self._store_cert(db, cert, user["user_id"], "UKEY", p["keySerial"])
        return self._cert_view(self.store.one("SELECT * FROM certs WHERE cert_sn = ?", cert.serial))

    def op_enableAutoSign(self, p: dict) -> dict:
        _need(p, "userId", "minutes")
        self._user(p["userId"])
        try:
            minutes = int(p["minutes"])
        except (TypeError, ValueError):
            raise OpError("2001", "minutes 应为整数", "minutes") from None
        if not 1 <= minutes <= MAX_AUTOSIGN_MINUTES:
            raise OpError("2001", f"自动签名时长应在 1–{MAX_AUTOSIGN_MINUTES} 分钟之间", "minutes")
        with self.store.tx() as db:
            out = self._new_tx(db, "AUTOSIGN", p["userId"], AUTOSIGN_QR_SECONDS, {"minutes": minutes})
        return {"taskId": out.pop("transactionId"), **out, "minutes": minutes}

    def _autosign_view(self, row) -> dict:
        if row is None:
            return {"open": False, "status": "", "taskId": "", "validFrom": "", "validTo": ""}
        body = Store.body(row)
        valid_to = parse_iso(body.get("validTo"))
        is_open = row["status"] == protocol.FINISH and valid_to is not None and utcnow() < valid_to
        status = row["status"]
        if row["status"] == protocol.FINISH and not is_open:
            status = protocol.EXPIRE
        return {
            "open": is_open,
            "status": status,
            "taskId": row["id"],
            "minutes": body.get("minutes"),
            "validFrom": body.get("validFrom", ""),
            "validTo": body.get("validTo", ""),
        }

    def _latest_autosign(self, user_id: str):
        return self.store.one(
            "SELECT * FROM transactions WHERE user_id = ? AND kind = 'AUTOSIGN' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            user_id,
        )

    def op_disableAutoSign(self, p: dict) -> dict:
        _need(p, "userId")
        self._user(p["userId"])
        with self.store.tx() as db:
            db.execute(
                "UPDATE transactions SET status = 'CLOSED', finished_at = ? WHERE user_id = ? "
                "AND kind = 'AUTOSIGN' AND status IN ('TOSIGN', 'FINISH')",
                (iso(utcnow()), p["userId"]),
            )
        return self._autosign_view(self._latest_autosign(p["userId"]))

    def op_queryAutoSignTask(self, p: dict) -> dict:
        _need(p, "userId")
        self._user(p["userId"])
        row = self._latest_autosign(p["userId"])
        if row is not None:
            row = self._tx(row["id"], "AUTOSIGN")
        return self._autosign_view(row)

    def op_autoSign(self, p: dict) -> dict:
        _need(p, "userId")
        data = _b64(p, "data")
        self._user(p["userId"])
        task = self._autosign_view(self._latest_autosign(p["userId"]))
        if not task["open"]:
            raise OpError("5002" if task["status"] in (protocol.EXPIRE,) else "5001")
        result = self._sign_with_cloud_key(p["userId"], data)
        with self.store.tx() as db:
            out = self._new_tx(
                db, "AUTO", p["userId"], 0, {"bizNo": p.get("bizNo", ""), **result}, with_qr=False
            )
            db.execute(
                "UPDATE transactions SET status = ?, finished_at = ? WHERE id = ?",
                (protocol.FINISH, iso(utcnow()), out["transactionId"]),
            )
        return {"signDataId": out["transactionId"], "status": protocol.FINISH, **result}

    def op_pushSign(self, p: dict) -> dict:
        """A sign job the doctor confirms on the phone (collaborative signing without auto-sign)."""
        _need(p, "userId")
        data = _b64(p, "data")
        self._user(p["userId"])
        self._usable_cert(self._current_cloud_cert(p["userId"]))
        with self.store.tx() as db:
            out = self._new_tx(
                db,
                "PUSHSIGN",
                p["userId"],
                PUSHSIGN_SECONDS,
                {
                    "bizNo": p.get("bizNo", ""),
                    "title": p.get("title", ""),
                    "data": base64.b64encode(data).decode(),
                },
                with_qr=False,
            )
        return {"signDataId": out["transactionId"], "status": protocol.TOSIGN, "expiresAt": out["expiresAt"]}

    def op_getSignResult(self, p: dict) -> dict:
        _need(p, "signDataId")
        row = self._tx(p["signDataId"], ("PUSHSIGN", "AUTO"))
        body = Store.body(row)
        out = {"signDataId": row["id"], "status": row["status"], "bizNo": body.get("bizNo", "")}
        if row["status"] == protocol.FINISH:
            out.update(
                {
                    k: body[k]
                    for k in ("signature", "certificate", "certSn", "signedAt", "timestampToken", "algorithm")
                }
            )
        return out

    def _verify(self, certificate: str, data: bytes, signature: bytes) -> tuple[bool, certs.Certificate]:
        try:
            cert = certs.load_certificate(certificate)
        except certs.CertificateError:
            raise OpError("2001", "certificate 不是有效的证书", "certificate") from None
        return cert.verify(data, signature), cert

    def op_verifySign(self, p: dict) -> dict:
        _need(p, "certificate")
        ok, cert = self._verify(p["certificate"], _b64(p, "data"), _b64(p, "signature"))
        trusted = cert.signed_by(self.authority.cert.public_key)
        return {"valid": ok and trusted, "signatureValid": ok, "trusted": trusted, "certSn": cert.serial}

    def op_validateCert(self, p: dict) -> dict:
        _need(p, "certificate")
        try:
            cert = certs.load_certificate(p["certificate"])
        except certs.CertificateError:
            raise OpError("2001", "certificate 不是有效的证书", "certificate") from None
        row = self.store.one("SELECT * FROM certs WHERE cert_sn = ?", cert.serial)
        if not cert.signed_by(self.authority.cert.public_key) or row is None or bytes(row["der"]) != cert.der:
            state = "UNTRUSTED"
        else:
            state = self._cert_state(row)
        return {
            "status": state,
            "message": protocol.CERT_STATES[state],
            "certSn": cert.serial,
            "notBefore": iso(cert.not_before),
            "notAfter": iso(cert.not_after),
            "userId": row["user_id"] if row is not None and state != "UNTRUSTED" else "",
        }

    def op_downloadCert(self, p: dict) -> dict:
        _need(p, "userId")
        self._user(p["userId"])
        self._current_cloud_cert(p["userId"])
        with self.store.tx() as db:
            return self._new_tx(db, "CERTDOWN", p["userId"], CERTDOWN_QR_SECONDS, {})

    def op_queryCertDownload(self, p: dict) -> dict:
        _need(p, "transactionId")
        row = self._tx(p["transactionId"], "CERTDOWN")
        body = Store.body(row)
        return {"transactionId": row["id"], "status": row["status"], "certSn": body.get("certSn", "")}

    def op_createLoginQr(self, p: dict) -> dict:
        with self.store.tx() as db:
            return self._new_tx(db, "LOGIN", None, LOGIN_QR_SECONDS, {"purpose": p.get("purpose", "login")})

    def op_queryLoginQr(self, p: dict) -> dict:
        _need(p, "transactionId")
        row = self._tx(p["transactionId"], "LOGIN")
        out = {"transactionId": row["id"], "status": row["status"]}
        if row["status"] == protocol.FINISH:
            body = Store.body(row)
            out.update(
                {
                    "userId": row["user_id"],
                    **{k: body[k] for k in ("certSn", "certificate", "signature", "signedData", "token")},
                }
            )
        return out

    def op_timestamp(self, p: dict) -> dict:
        _need(p, "digest")
        return {"timestampToken": self._timestamp(p["digest"]), "time": iso(utcnow())}

    def op_getCaCert(self, p: dict) -> dict:
        return {"certificate": self.authority.cert.b64, "subject": self.authority.cert.subject_cn}

    # -- the phone app ---------------------------------------------------------------------------
    def app_scan(self, p: dict) -> dict:
        """The app scanned a QR code and the user tapped confirm or refuse."""
        _need(p, "qrContent", "staffNo")
        token = str(p["qrContent"]).rstrip("/").rsplit("/", 1)[-1]
        user = self.store.one("SELECT * FROM users WHERE staff_no = ?", p["staffNo"])
        if user is None:
            raise OpError("3001", "该工号未在签名服务器注册")
        row = self.store.one("SELECT * FROM transactions WHERE token = ?", token)
        if row is None:
            raise OpError("6001")
        row = self._tx(row["id"], row["kind"])
        if row["status"] != protocol.TOSIGN:
            raise OpError(
                "6002" if row["status"] == protocol.EXPIRE else "6001", f"二维码状态为 {row['status']}"
            )
        if row["user_id"] and row["user_id"] != user["user_id"]:
            raise OpError("6001", "该二维码不是发给当前用户的")
        refuse = p.get("action") == "refuse"
        body = Store.body(row)
        now = utcnow()
        if not refuse:
            if row["kind"] == "LOGIN":
                cert_row = self._current_cloud_cert(user["user_id"])
                self._usable_cert(cert_row)
                signed = f"login|{row['id']}".encode()
                body.update(
                    {
                        "certSn": cert_row["cert_sn"],
                        "certificate": base64.b64encode(cert_row["der"]).decode(),
                        "signedData": base64.b64encode(signed).decode(),
                        "signature": base64.b64encode(self._cloud_key(user["user_id"]).sign(signed)).decode(),
                        "token": secrets.token_urlsafe(24),
                    }
                )
            elif row["kind"] == "AUTOSIGN":
                body.update(
                    {"validFrom": iso(now), "validTo": iso(now + timedelta(minutes=int(body["minutes"])))}
                )
            elif row["kind"] == "CERTDOWN":
                cert_row = self._current_cloud_cert(user["user_id"])
                body.update({"certSn": cert_row["cert_sn"]})
        with self.store.tx() as db:
            if row["kind"] == "AUTOSIGN" and not refuse:  # one open authorisation at a time
                db.execute(
                    "UPDATE transactions SET status = 'CLOSED' WHERE user_id = ? AND kind = 'AUTOSIGN' "
                    "AND status = 'FINISH'",
                    (user["user_id"],),
                )
            db.execute(
                "UPDATE transactions SET status = ?, user_id = ?, body = ?, finished_at = ? WHERE id = ?",
                (
                    protocol.REFUSE if refuse else protocol.FINISH,
                    user["user_id"],
                    json.dumps(body, ensure_ascii=False),
                    iso(now),
                    row["id"],
                ),
            )
        out = {
            "kind": row["kind"],
            "transactionId": row["id"],
            "status": protocol.REFUSE if refuse else protocol.FINISH,
        }
        if row["kind"] == "CERTDOWN" and not refuse:
            out["certificate"] = self._cert_view(self._current_cloud_cert(user["user_id"]))["certificate"]
        return out

    def app_pending(self, staff_no: str) -> list[dict]:
        """The user's push sign jobs still waiting for the phone (expired ones are not listed), with
        the data to sign (Base64), which the app shows before the user confirms."""
        user = self.store.one("SELECT * FROM users WHERE staff_no = ?", staff_no)
        if user is None:
            return []
        rows = self.store.all(
            "SELECT * FROM transactions WHERE user_id = ? AND kind = 'PUSHSIGN' AND status = 'TOSIGN' "
            "ORDER BY created_at",
            user["user_id"],
        )
        now = utcnow()
        return [
            {
                "signDataId": r["id"],
                "title": Store.body(r).get("title", ""),
                "bizNo": Store.body(r).get("bizNo", ""),
                "data": Store.body(r).get("data", ""),
                "createdAt": r["created_at"],
                "expiresAt": r["expires_at"],
            }
            for r in rows
            if parse_iso(r["expires_at"]) > now
        ]

    def app_sign(self, p: dict) -> dict:
        _need(p, "signDataId", "staffNo")
        row = self._tx(p["signDataId"], "PUSHSIGN")
        user = self.store.one("SELECT * FROM users WHERE staff_no = ?", p["staffNo"])
        if user is None or user["user_id"] != row["user_id"]:
            raise OpError("5003", "该签名任务不是发给当前用户的")
        if row["status"] != protocol.TOSIGN:
            raise OpError("5003", f"该签名任务{ANSWERED.get(row['status'], '状态为 ' + row['status'])}")
        body = Store.body(row)
        if p.get("action") == "refuse":
            status = protocol.REFUSE
        else:
            body.update(self._sign_with_cloud_key(user["user_id"], base64.b64decode(body["data"])))
            status = protocol.FINISH
        with self.store.tx() as db:
            db.execute(
                "UPDATE transactions SET status = ?, body = ?, finished_at = ? WHERE id = ?",
                (status, json.dumps(body, ensure_ascii=False), iso(utcnow()), row["id"]),
            )
        return {"signDataId": row["id"], "status": status}

    # -- test hooks ------------------------------------------------------------------------------
    def sim_set_status(self, p: dict, status: str) -> dict:
        _need(p, "certSn")
        with self.store.tx() as db:
            n = db.execute(
                "UPDATE certs SET status = ?, revoked_at = ? WHERE cert_sn = ?",
                (status, iso(utcnow()), p["certSn"]),
            ).rowcount
        if not n:
            raise OpError("4001")
        return self._cert_view(self.store.one("SELECT * FROM certs WHERE cert_sn = ?", p["certSn"]))

    def sim_timestamp_fault(self, p: dict) -> dict:
        """Make the timestamp service misbehave until reset (``fault`` ""): ``digest`` (the token
        covers another digest), ``key`` (signed by a key that is not the CA's), ``time`` (a day old)."""
        fault = p.get("fault") or ""
        if fault not in TIMESTAMP_FAULTS:
            raise OpError("2001", f"fault 只能为 {'、'.join(f for f in TIMESTAMP_FAULTS if f)} 或空", "fault")
        self.timestamp_fault = fault
        return {"fault": fault}

    def sim_reissue(self, p: dict) -> dict:
        """Issue a certificate with the given validity: for the user's cloud key, or for a UKey key
        (``publicKey`` + ``keySerial``). It becomes the current one of that key."""
        _need(p, "userId", "notBefore", "notAfter")
        user = self._user(p["userId"])
        if p.get("publicKey"):
            _need(p, "keySerial")
            public_key, media, key_serial = gm.load_public_key_hex(p["publicKey"]), "UKEY", p["keySerial"]
        else:
            public_key, media, key_serial = self._cloud_key(user["user_id"]).public_key(), "CLOUD", ""
        cert = self._issue(user, public_key, parse_iso(p["notBefore"]), parse_iso(p["notAfter"]))
        with self.store.tx() as db:
            self._store_cert(db, cert, user["user_id"], media, key_serial)
        return self._cert_view(self.store.one("SELECT * FROM certs WHERE cert_sn = ?", cert.serial))


APP_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>协同签名（模拟）</title>
<style>body{{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;max-width:440px;margin:24px auto;padding:0 12px;color:#1f2733}}
input,button{{font:inherit;padding:8px;margin:4px 0;width:100%;box-sizing:border-box}}
button{{background:#1f5fa8;color:#fff;border:0;border-radius:4px;cursor:pointer}} button.refuse{{background:#6b7685}}
.card{{border:1px solid #d9dee6;border-radius:6px;padding:14px;margin:12px 0}} .muted{{color:#6b7685;font-size:13px}}
h2{{margin:0 0 8px}} h3{{font-size:16px;margin:0 0 6px}} .job{{border-top:1px solid #e4e8ee;padding:10px 0}}
.job:first-of-type{{border-top:0}} .buttons{{display:flex;gap:8px}} pre{{white-space:pre-wrap;word-break:break-all;
font-size:12px;background:#f5f7fa;padding:8px;border-radius:4px;max-height:240px;overflow:auto}}
#app-message{{padding:8px 12px;border-radius:4px;background:#e8f1fb}} #app-message.err{{background:#fbeaea;color:#8a1f1f}}
#app-message:empty{{display:none}}</style></head>
<body><h2>协同签名 APP（模拟）</h2>
<p class="muted">模拟手机端：按工号查看并确认推送来的签名请求；或输入二维码内容，确认扫码登录、自动签名授权、证书下载。</p>
<p id="app-message" role="status"{message_class}>{message}</p>
<section class="card" id="push-jobs"><h3>待确认的签名请求</h3>
<form method="get" action="/app/"><label>工号<input name="staffNo" id="push-staff" value="{staff}" required></label>
<button id="push-refresh">查看待签请求</button></form>
{jobs}
</section>
<section class="card" id="scan"><h3>扫码</h3><form method="post" action="/app/scan">
<label>工号<input name="staffNo" value="{staff}" required></label>
<label>二维码内容<input name="qrContent" value="{qr}" required></label>
<div class="buttons"><button name="action" value="confirm">确认</button>
<button name="action" value="refuse" class="refuse">拒绝</button></div>
</form></section></body></html>"""

JOB_ITEM = """<article class="job" data-sign-data-id="{id}"><div><strong class="title">{title}</strong></div>
<div class="muted">业务号 <span class="biz">{biz}</span> · 推送于 {created} · {expires} 前有效</div>
<details><summary>签名原文</summary><pre class="data">{data}</pre></details>
<form method="post" action="/app/sign"><input type="hidden" name="signDataId" value="{id}">
<input type="hidden" name="staffNo" value="{staff}"><div class="buttons">
<button name="action" value="confirm" class="confirm">确认签名</button>
<button name="action" value="refuse" class="refuse">拒绝</button></div></form></article>"""

BEIJING = timezone(timedelta(hours=8))


def _local_time(text: str | None) -> str:
    moment = parse_iso(text)
    return moment.astimezone(BEIJING).strftime("%H:%M:%S") if moment else ""


def _readable(data_b64: str) -> str:
    """The data to sign as the phone shows it: the text (JSON indented), never raw Base64 unless binary."""
    try:
        text = base64.b64decode(data_b64).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return data_b64
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=1)
    except ValueError:
        return text


def app_page(ca: CA, staff: str = "", qr: str = "", message: str = "", error: bool = False) -> bytes:
    """The demo phone: the staff number's pending push sign jobs (confirm or refuse each), and the
    scan form for login, auto-sign grant and certificate-download QR codes."""
    jobs = ""
    if staff:
        pending = ca.app_pending(staff)
        jobs = (
            "".join(
                JOB_ITEM.format(
                    id=html.escape(j["signDataId"]),
                    title=html.escape(j["title"] or "签名请求"),
                    biz=html.escape(j["bizNo"]),
                    created=_local_time(j["createdAt"]),
                    expires=_local_time(j["expiresAt"]),
                    data=html.escape(_readable(j["data"])),
                    staff=html.escape(staff),
                )
                for j in pending
            )
            or '<p class="muted" id="no-jobs">没有待确认的签名请求。</p>'
        )
    return APP_PAGE.format(
        staff=html.escape(staff),
        qr=html.escape(qr),
        message=html.escape(message),
        message_class=' class="err"' if error else "",
        jobs=jobs,
    ).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "CASimulator/1.0"
    ca: CA
    app_id: str
    secret: bytes

    def log_message(self, fmt, *args):  # quiet: one line per request at debug level
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode())

    def _read(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        return json.loads(raw or b"{}")

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/healthz":
            return self._json(200, {"ok": True, "ca": self.ca.authority.cert.subject_cn})
        if url.path.startswith("/app/qr/"):
            qr = f"{self.ca.public_url}{url.path}"
            return self._send(200, app_page(self.ca, qr=qr), "text/html; charset=utf-8")
        if url.path == "/app/v1/pending":
            staff = parse_qs(url.query).get("staffNo", [""])[0]
            return self._json(200, {"code": "0", "data": self.ca.app_pending(staff)})
        if url.path in ("/app", "/app/"):
            staff = parse_qs(url.query).get("staffNo", [""])[0].strip()
            return self._send(200, app_page(self.ca, staff=staff), "text/html; charset=utf-8")
        self._json(404, {"code": "1005", "message": "不支持的接口"})

    def do_POST(self):
        url = urlparse(self.path)
        try:
            params = self._read()
        except (ValueError, UnicodeDecodeError):
            return self._json(400, {"code": "2001", "message": "请求体不是 JSON"})
        if url.path.startswith("/service/v1/"):
            return self._service(url.path.rsplit("/", 1)[-1], params)
        routes = {
            "/app/v1/scan": self.ca.app_scan,
            "/app/v1/sign": self.ca.app_sign,
            "/sim/v1/revoke": lambda p: self.ca.sim_set_status(p, "REVOKED"),
            "/sim/v1/freeze": lambda p: self.ca.sim_set_status(p, "FROZEN"),
            "/sim/v1/reissue": self.ca.sim_reissue,
            "/sim/v1/timestamp-fault": self.ca.sim_timestamp_fault,
        }
        if url.path in ("/app/scan", "/app/sign"):  # the demo phone page's forms
            return self._app_form(url.path, params)
        if url.path.startswith("/sim/") and self.client_address[0] not in ("127.0.0.1", "::1"):
            return self._json(403, {"code": "1002", "message": "测试接口仅限本机"})
        handler = routes.get(url.path)
        if handler is None:
            return self._json(404, {"code": "1005", "message": "不支持的接口"})
        try:
            self._json(200, {"code": "0", "message": "成功", "data": handler(params)})
        except OpError as exc:
            self._json(200, {"code": exc.code, "message": exc.message, "field": exc.field})

    def _app_form(self, path: str, params: dict) -> None:
        staff = str(params.get("staffNo", "")).strip()
        refused = params.get("action") == "refuse"
        try:
            if path == "/app/scan":
                out = self.ca.app_scan(params)
                what = {"LOGIN": "扫码登录", "AUTOSIGN": "自动签名授权", "CERTDOWN": "移动证书下载"}.get(
                    out["kind"], out["kind"]
                )
            else:
                row = self.ca.store.one(
                    "SELECT * FROM transactions WHERE id = ?", params.get("signDataId", "")
                )
                title = Store.body(row).get("title", "") if row is not None else ""
                self.ca.app_sign(params)
                what = f"签名请求「{title}」" if title else "签名请求"
            msg, error = f"已{'拒绝' if refused else '确认'}{what}。", False
        except OpError as exc:
            msg, error = f"失败：{exc.message}", True
        page = app_page(self.ca, staff=staff, message=msg, error=error)
        self._send(200, page, "text/html; charset=utf-8")

    def _service(self, operation: str, params: dict) -> None:
        algorithm = params.get("signAlg") or "HMAC-SM3"

        def answer(code: str, data: dict | None = None, message: str | None = None, status: int = 200):
            body = protocol.sign_response(
                self.secret,
                code,
                data,
                message,
                algorithm if algorithm in protocol.SIGN_ALGORITHMS else "HMAC-SM3",
            )
            self._json(status, body)

        if params.get("appId") != self.app_id:
            return answer("1002", status=401)
        if algorithm not in protocol.SIGN_ALGORITHMS or not protocol.check_mac(
            self.secret, params, algorithm
        ):
            return answer("1001", status=401)
        try:
            ts = int(params.get("timestamp"))
        except (TypeError, ValueError):
            return answer("1003", status=401)
        if abs(protocol.now_ms() - ts) > protocol.TIMESTAMP_WINDOW_MS:
            return answer("1003", status=401)
        if not params.get("nonce") or not self.ca.store.remember_nonce(
            str(params["nonce"]), ts, protocol.TIMESTAMP_WINDOW_MS
        ):
            return answer("1004", status=401)
        handler = getattr(self.ca, f"op_{operation}", None)
        if handler is None or params.get("version") != protocol.VERSION:
            return answer("1005", status=404)
        op_params = {
            k: v
            for k, v in params.items()
            if k not in ("appId", "version", "timestamp", "nonce", "signAlg", "sign")
        }
        try:
            data = handler(op_params)
        except OpError as exc:
            return answer(exc.code, {"field": exc.field} if exc.field else None, exc.message)
        except Exception:
            log.exception("operation %s failed", operation)
            return answer("9999", status=500)
        answer("0", data)


class _Server(logmask.LoggedServerErrors, ThreadingHTTPServer):
    """A handler's unexpected exception is logged, masked like every log line."""


def make_server(
    host: str,
    port: int,
    db: Path,
    data_dir: Path,
    app_id: str,
    secret: bytes,
    public_url: str | None = None,
    org: str = "中国医学科学院肿瘤医院",
) -> ThreadingHTTPServer:
    store = Store(db)
    authority = Authority(data_dir)
    httpd = _Server((host, port), Handler)
    httpd.daemon_threads = True
    public = public_url or f"http://{host}:{httpd.server_address[1]}"
    handler = type(
        "BoundHandler",
        (Handler,),
        {"ca": CA(store, authority, public, org), "app_id": app_id, "secret": secret},
    )
    httpd.RequestHandlerClass = handler
    return httpd
