"""The vendor-neutral interface of the CA signing server, as the rest of the system sees it.

Every vendor adapter implements :class:`SigningServerClient`; services only ever call these
methods and read these dataclasses. A vendor error becomes :class:`CAError` with the vendor's
code and a Chinese message fit for the page; an unreachable or garbled server becomes
:class:`CAUnavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

# Normalised states
TOSIGN, FINISH, REFUSE, EXPIRE = "TOSIGN", "FINISH", "REFUSE", "EXPIRE"
CERT_VALID, CERT_REVOKED, CERT_EXPIRED = "VALID", "REVOKED", "EXPIRED"
CERT_FROZEN, CERT_NOT_YET_VALID, CERT_UNTRUSTED = "FROZEN", "NOT_YET_VALID", "UNTRUSTED"

CERT_STATE_MESSAGES = {
    CERT_VALID: "证书有效",
    CERT_REVOKED: "证书已吊销",
    CERT_EXPIRED: "证书已过期",
    CERT_FROZEN: "证书已冻结",
    CERT_NOT_YET_VALID: "证书尚未生效",
    CERT_UNTRUSTED: "证书不是受信任的 CA 签发",
}


class CAError(Exception):
    """The signing server answered with an error. ``kind`` is a normalised name for callers."""

    def __init__(self, code: str, message: str, field: str | None = None, kind: str = "error"):
        self.code, self.message, self.field, self.kind = code, message, field, kind
        super().__init__(f"CA {code}: {message}")


class CAUnavailable(CAError):
    def __init__(self, message: str = "签名服务器无法连接，请稍后再试或联系信息中心。"):
        super().__init__("unavailable", message, kind="unavailable")


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    name: str
    staff_no: str
    id_number_masked: str = ""
    mobile: str = ""
    department: str = ""
    status: str = ""
    cert_sn: str = ""


@dataclass(frozen=True)
class CertInfo:
    cert_sn: str
    subject: str
    issuer: str
    not_before: str
    not_after: str
    algorithm: str
    status: str
    certificate: str  # Base64 DER
    user_id: str = ""
    media: str = ""
    key_serial: str = ""


@dataclass(frozen=True)
class CertValidation:
    status: str  # CERT_* above
    message: str
    cert_sn: str
    user_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == CERT_VALID


@dataclass(frozen=True)
class AutoSignTask:
    task_id: str
    status: str  # TOSIGN (waiting for the phone), FINISH (granted), REFUSE, EXPIRE, CLOSED, "" (never)
    is_open: bool
    valid_from: str = ""
    valid_to: str = ""
    minutes: int | None = None
    qr_content: str = ""
    expires_at: str = ""


@dataclass(frozen=True)
class SignResult:
    sign_data_id: str
    status: str
    signature: str = ""  # Base64 DER SM3withSM2
    certificate: str = ""  # Base64 DER
    cert_sn: str = ""
    signed_at: str = ""
    timestamp_token: str = ""
    algorithm: str = "SM3withSM2"


@dataclass(frozen=True)
class QrTransaction:
    transaction_id: str
    status: str
    qr_content: str = ""
    expires_at: str = ""
    user_id: str = ""
    cert_sn: str = ""
    certificate: str = ""
    signed_data: str = ""  # Base64 of what the app signed to prove the login
    signature: str = ""
    token: str = ""
    extra: dict = field(default_factory=dict)


class SigningServerClient(ABC):
    """The operations of requirement 1.2.3 (1) plus the QR flows of (3) and (5)."""

    # users
    @abstractmethod
    def add_user(
        self,
        *,
        name: str,
        id_number: str,
        staff_no: str,
        department: str = "",
        mobile: str = "",
        id_type: str = "1",
    ) -> UserInfo: ...

    @abstractmethod
    def modify_user(
        self, *, user_id: str, mobile: str = "", name: str = "", department: str = ""
    ) -> UserInfo: ...

    @abstractmethod
    def query_user(
        self, *, user_id: str = "", staff_no: str = "", id_number: str = ""
    ) -> UserInfo | None: ...

    # certificates
    @abstractmethod
    def get_cert_info(self, *, user_id: str = "", cert_sn: str = "", media: str = "") -> CertInfo: ...

    @abstractmethod
    def validate_certificate(self, *, certificate: str) -> CertValidation: ...

    @abstractmethod
    def download_certificate(self, *, user_id: str) -> QrTransaction:
        """Start a mobile certificate download: the QR the app scans to receive the certificate."""

    @abstractmethod
    def query_certificate_download(self, *, transaction_id: str) -> QrTransaction: ...

    # auto-sign
    @abstractmethod
    def enable_auto_sign(self, *, user_id: str, minutes: int) -> AutoSignTask: ...

    @abstractmethod
    def disable_auto_sign(self, *, user_id: str) -> AutoSignTask: ...

    @abstractmethod
    def query_auto_sign_task(self, *, user_id: str) -> AutoSignTask: ...

    # signing
    @abstractmethod
    def auto_sign(self, *, user_id: str, data: bytes, biz_no: str = "") -> SignResult: ...

    @abstractmethod
    def push_sign(self, *, user_id: str, data: bytes, biz_no: str = "", title: str = "") -> SignResult:
        """A sign job the user confirms in the phone app; poll :meth:`get_sign_result`."""

    @abstractmethod
    def get_sign_result(self, *, sign_data_id: str) -> SignResult: ...

    @abstractmethod
    def verify_signature(self, *, certificate: str, data: bytes, signature: str) -> bool:
        """The server's own check of a signature (自动签名验证)."""

    @abstractmethod
    def timestamp(self, *, digest_hex: str) -> str: ...

    @abstractmethod
    def ca_certificate(self) -> str:
        """The CA's own certificate (Base64 DER): the key its timestamp tokens are checked with."""

    # QR login
    @abstractmethod
    def create_login_qr(self) -> QrTransaction: ...

    @abstractmethod
    def query_login_qr(self, *, transaction_id: str) -> QrTransaction: ...
