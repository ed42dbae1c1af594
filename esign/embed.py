"""The signing service the LIS's own review screen embeds (需求 1.2.3(8)): a page that opens on one
report version, asks for the UKey (PIN) or the 协同签名 APP (QR), signs, and hands signature,
certificate and timestamp back to the LIS page that opened it (``postMessage`` to that origin
only) — the same ``ReportSignature`` the review pages store, so the approval starts the upload
the same way.

The LIS asks for a link (``POST /api/lab/v1/reviews/{reportId}/{version}/signing-link`` with its
page's origin, which must be one of ``LIS_SIGN_ORIGINS`` in the unified code table). The link is
``/esign/embed/<token>/``: a Django-signed, salted token of the review's id, the origin and the
expiry — no patient data — valid for ``LINK_MINUTES``. The token in the path is the page's only
credential: the page runs in a cross-site frame, where the session and CSRF cookies are not sent,
so its requests carry the token instead, and the signer proves who they are with the UKey
(certificate bound to their signer profile and UKey serial) or by scanning the QR code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.utils import timezone

from hospital_interop.errors import InvalidInput, field_error

from . import selectors
from .models import ReviewReport
from .parameters import origins

SALT = "esign.embed.v1"
LINK_MINUTES = 30


class EmbedLinkError(Exception):
    def __init__(self, message: str, status: int = 403):
        self.message, self.status = message, status
        super().__init__(message)


@dataclass(frozen=True)
class EmbedContext:
    review_id: int
    origin: str
    expires: int  # epoch seconds


def allowed_origins() -> list[str]:
    return origins(selectors.parameter("LIS_SIGN_ORIGINS"))


def signing_link(report_id: str, version: int, origin) -> dict | None:
    """{url, expiresAt} of the signing page of a version submitted for review; None when it was not
    submitted. InvalidInput: origin missing or not allowed (400), the version no longer signable (409)."""
    review = ReviewReport.objects.filter(
        report_id=report_id, report_version=version, lab_version__isnull=False
    ).first()
    if not isinstance(origin, str) or not origin:
        raise InvalidInput([field_error("origin", "required", "请填写 LIS 审核界面的源 origin。")])
    allowed = allowed_origins()
    if origin.rstrip("/") not in allowed:
        raise InvalidInput(
            [
                field_error(
                    "origin",
                    "notAllowed",
                    f"源 {origin[:100]} 不在统一代码表“LIS 签名页允许的源”（LIS_SIGN_ORIGINS）中"
                    + (f"：允许 {' '.join(allowed)}。" if allowed else "：尚未设置，请联系信息中心。"),
                )
            ]
        )
    if review is None:
        return None
    if review.status in (ReviewReport.Status.SUPERSEDED,):
        raise InvalidInput(
            [
                field_error(
                    "version", "superseded", f"报告 {report_id} 第 {version} 版已被新版本取代，不能再签名。"
                )
            ],
            status=409,
        )
    expires = timezone.now() + timedelta(minutes=LINK_MINUTES)
    token = signing.dumps(
        {"r": review.pk, "o": origin.rstrip("/"), "e": int(expires.timestamp())}, salt=SALT, compress=True
    )
    return {
        "url": f"/esign/embed/{token}/",
        "expiresAt": timezone.localtime(expires).isoformat(timespec="seconds"),
    }


def context(token: str) -> EmbedContext:
    try:
        data = signing.loads(token, salt=SALT, max_age=LINK_MINUTES * 60)
    except signing.SignatureExpired:
        raise EmbedLinkError("签名页链接已过期，请在 LIS 中重新打开签名。") from None
    except signing.BadSignature:
        raise EmbedLinkError("签名页链接无效，请在 LIS 中重新打开签名。") from None
    ctx = EmbedContext(int(data["r"]), str(data["o"]), int(data["e"]))
    if ctx.origin not in allowed_origins():
        raise EmbedLinkError("LIS 的源已不在允许列表中，签名页不可用，请联系信息中心。")
    return ctx
