"""Adapter for the reference vendor protocol (docs/esign-protocol.md): JSON over HTTP, appId +
HMAC-SM3 request and answer signatures, SM3withSM2 signatures and SM2 X.509 certificates."""

from __future__ import annotations

import base64
import logging

import requests

from esign import protocol

from .base import (
    AutoSignTask,
    CAError,
    CAUnavailable,
    CertInfo,
    CertValidation,
    QrTransaction,
    SigningServerClient,
    SignResult,
    UserInfo,
)

log = logging.getLogger(__name__)

# vendor code → normalised kind, for callers that branch on it
_KINDS = {
    "1001": "auth",
    "1002": "auth",
    "1003": "auth",
    "1004": "auth",
    "2001": "invalid",
    "3001": "no_user",
    "3002": "user_exists",
    "4001": "no_cert",
    "4101": "revoked",
    "4102": "frozen",
    "4103": "expired",
    "4104": "not_yet_valid",
    "4105": "untrusted",
    "5001": "no_auto_sign",
    "5002": "auto_sign_expired",
    "5003": "no_job",
    "6001": "no_qr",
    "6002": "qr_expired",
}


class _Answer(dict):
    """An answer's ``data``: a field the adapter needs and the server left out is a CAError
    naming it (a KeyError reached the signing pages as a 500)."""

    def __missing__(self, key):
        raise CAError("bad_answer", f"签名服务器的应答缺少 {key}，已拒绝。")


class ReferenceVendorClient(SigningServerClient):
    def __init__(
        self,
        base_url: str,
        app_id: str,
        secret: bytes,
        *,
        qr_base_url: str = "",
        algorithm: str = "HMAC-SM3",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.qr_base_url = (qr_base_url or base_url).rstrip("/")
        self.app_id, self.secret, self.algorithm, self.timeout = app_id, secret, algorithm, timeout
        self.http = session or requests.Session()
        self._ca_certificate: str | None = None

    # -- transport -------------------------------------------------------------------------------
    def call(self, operation: str, params: dict, *, qr: bool = False) -> dict:
        base = self.qr_base_url if qr else self.base_url
        body = protocol.sign_request(
            self.app_id, self.secret, {k: v for k, v in params.items() if v not in (None, "")}, self.algorithm
        )
        try:
            response = self.http.post(f"{base}/service/v1/{operation}", json=body, timeout=self.timeout)
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("CA %s: %s", operation, exc)
            raise CAUnavailable() from None
        if not isinstance(answer, dict) or not protocol.check_mac(self.secret, answer, self.algorithm):
            log.warning("CA %s: answer without a valid signature (HTTP %s)", operation, response.status_code)
            if answer.get("code") in ("1001", "1002") if isinstance(answer, dict) else False:
                raise CAError(
                    answer["code"],
                    "签名服务器拒绝了本系统的应用标识或验证密钥，请在统一代码表中核对 CA 应用 ID 与验证密钥。",
                    kind="auth",
                )
            raise CAUnavailable("签名服务器的应答未通过验签，已拒绝。请检查 CA 验证密钥设置。")
        code = str(answer.get("code"))
        data = answer.get("data") or {}
        if not isinstance(data, dict):  # signed, but not the protocol's shape
            log.warning("CA %s: answer data is a %s, not an object", operation, type(data).__name__)
            raise CAError("bad_answer", "签名服务器的应答格式不正确（data 不是对象），已拒绝。")
        if code != protocol.OK:
            raise CAError(
                code,
                answer.get("message") or protocol.CODES.get(code, "签名服务器返回错误"),
                field=data.get("field"),
                kind=_KINDS.get(code, "error"),
            )
        return _Answer(data)

    # -- mapping ---------------------------------------------------------------------------------
    @staticmethod
    def _user(d: dict) -> UserInfo:
        return UserInfo(
            user_id=d["userId"],
            name=d.get("name", ""),
            staff_no=d.get("staffNo", ""),
            id_number_masked=d.get("idNumber", ""),
            mobile=d.get("mobile", ""),
            department=d.get("department", ""),
            status=d.get("status", ""),
            cert_sn=d.get("certSn", ""),
        )

    @staticmethod
    def _task(d: dict) -> AutoSignTask:
        return AutoSignTask(
            task_id=d.get("taskId", ""),
            status=d.get("status", ""),
            is_open=bool(d.get("open")),
            valid_from=d.get("validFrom", ""),
            valid_to=d.get("validTo", ""),
            minutes=d.get("minutes"),
            qr_content=d.get("qrContent", ""),
            expires_at=d.get("expiresAt", ""),
        )

    @staticmethod
    def _sign(d: dict) -> SignResult:
        return SignResult(
            sign_data_id=d.get("signDataId", ""),
            status=d.get("status", ""),
            signature=d.get("signature", ""),
            certificate=d.get("certificate", ""),
            cert_sn=d.get("certSn", ""),
            signed_at=d.get("signedAt", ""),
            timestamp_token=d.get("timestampToken", ""),
            algorithm=d.get("algorithm", protocol.SIGNATURE_ALGORITHM),
        )

    @staticmethod
    def _qr(d: dict) -> QrTransaction:
        known = (
            "transactionId",
            "status",
            "qrContent",
            "expiresAt",
            "userId",
            "certSn",
            "certificate",
            "signedData",
            "signature",
            "token",
        )
        return QrTransaction(
            transaction_id=d.get("transactionId", ""),
            status=d.get("status", ""),
            qr_content=d.get("qrContent", ""),
            expires_at=d.get("expiresAt", ""),
            user_id=d.get("userId", ""),
            cert_sn=d.get("certSn", ""),
            certificate=d.get("certificate", ""),
            signed_data=d.get("signedData", ""),
            signature=d.get("signature", ""),
            token=d.get("token", ""),
            extra={k: v for k, v in d.items() if k not in known},
        )

    # -- operations ------------------------------------------------------------------------------
    def add_user(self, *, name, id_number, staff_no, department="", mobile="", id_type="1") -> UserInfo:
        return self._user(
            self.call(
                "addUser",
                {
                    "name": name,
                    "idType": id_type,
                    "idNumber": id_number,
                    "staffNo": staff_no,
                    "department": department,
                    "mobile": mobile,
                },
            )
        )

    def modify_user(self, *, user_id, mobile="", name="", department="") -> UserInfo:
        return self._user(
            self.call(
                "modifyUser", {"userId": user_id, "mobile": mobile, "name": name, "department": department}
            )
        )

    def query_user(self, *, user_id="", staff_no="", id_number="") -> UserInfo | None:
        try:
            return self._user(
                self.call("queryUser", {"userId": user_id, "staffNo": staff_no, "idNumber": id_number})
            )
        except CAError as exc:
            if exc.kind == "no_user":
                return None
            raise

    def get_cert_info(self, *, user_id="", cert_sn="", media="") -> CertInfo:
        d = self.call("getCertInfo", {"userId": user_id, "certSn": cert_sn, "media": media})
        return CertInfo(
            cert_sn=d["certSn"],
            subject=d.get("subject", ""),
            issuer=d.get("issuer", ""),
            not_before=d.get("notBefore", ""),
            not_after=d.get("notAfter", ""),
            algorithm=d.get("algorithm", ""),
            status=d.get("status", ""),
            certificate=d.get("certificate", ""),
            user_id=d.get("userId", ""),
            media=d.get("media", ""),
            key_serial=d.get("keySerial", ""),
        )

    def validate_certificate(self, *, certificate) -> CertValidation:
        d = self.call("validateCert", {"certificate": certificate})
        return CertValidation(
            status=d["status"],
            message=d.get("message", ""),
            cert_sn=d.get("certSn", ""),
            user_id=d.get("userId", ""),
        )

    def download_certificate(self, *, user_id) -> QrTransaction:
        return self._qr(self.call("downloadCert", {"userId": user_id}, qr=True))

    def query_certificate_download(self, *, transaction_id) -> QrTransaction:
        return self._qr(self.call("queryCertDownload", {"transactionId": transaction_id}, qr=True))

    def enable_auto_sign(self, *, user_id, minutes) -> AutoSignTask:
        return self._task(self.call("enableAutoSign", {"userId": user_id, "minutes": int(minutes)}, qr=True))

    def disable_auto_sign(self, *, user_id) -> AutoSignTask:
        return self._task(self.call("disableAutoSign", {"userId": user_id}))

    def query_auto_sign_task(self, *, user_id) -> AutoSignTask:
        return self._task(self.call("queryAutoSignTask", {"userId": user_id}))

    def auto_sign(self, *, user_id, data, biz_no="") -> SignResult:
        return self._sign(
            self.call(
                "autoSign",
                {
                    "userId": user_id,
                    "data": base64.b64encode(data).decode(),
                    "bizNo": biz_no,
                    "algorithm": protocol.SIGNATURE_ALGORITHM,
                },
            )
        )

    def push_sign(self, *, user_id, data, biz_no="", title="") -> SignResult:
        return self._sign(
            self.call(
                "pushSign",
                {
                    "userId": user_id,
                    "data": base64.b64encode(data).decode(),
                    "bizNo": biz_no,
                    "title": title,
                    "algorithm": protocol.SIGNATURE_ALGORITHM,
                },
            )
        )

    def get_sign_result(self, *, sign_data_id) -> SignResult:
        return self._sign(self.call("getSignResult", {"signDataId": sign_data_id}))

    def verify_signature(self, *, certificate, data, signature) -> bool:
        d = self.call(
            "verifySign",
            {"certificate": certificate, "data": base64.b64encode(data).decode(), "signature": signature},
        )
        return bool(d.get("valid"))

    def timestamp(self, *, digest_hex) -> str:
        return self.call("timestamp", {"digest": digest_hex})["timestampToken"]

    def ca_certificate(self) -> str:
        if self._ca_certificate is None:  # one question per client (a client serves one request)
            self._ca_certificate = self.call("getCaCert", {})["certificate"]
        return self._ca_certificate

    def create_login_qr(self) -> QrTransaction:
        return self._qr(self.call("createLoginQr", {"purpose": "login"}, qr=True))

    def query_login_qr(self, *, transaction_id) -> QrTransaction:
        return self._qr(self.call("queryLoginQr", {"transactionId": transaction_id}, qr=True))

    # -- beyond the interface: the CA counter's certificate application (UKey issuance) ---------
    def apply_ukey_certificate(
        self, *, user_id: str, public_key_hex: str, key_serial: str, valid_days: int = 365
    ) -> CertInfo:
        d = self.call(
            "applyCert",
            {
                "userId": user_id,
                "publicKey": public_key_hex,
                "keySerial": key_serial,
                "media": "UKEY",
                "validDays": valid_days,
            },
        )
        return CertInfo(
            cert_sn=d["certSn"],
            subject=d.get("subject", ""),
            issuer=d.get("issuer", ""),
            not_before=d.get("notBefore", ""),
            not_after=d.get("notAfter", ""),
            algorithm=d.get("algorithm", ""),
            status=d.get("status", ""),
            certificate=d.get("certificate", ""),
            user_id=d.get("userId", ""),
            media=d.get("media", ""),
            key_serial=d.get("keySerial", ""),
        )
