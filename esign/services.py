"""Writes of the e-signature app: parameters, signer registration, UKey and QR signing sessions,
auto-sign, and signing on report approval.

Every failure a user can cause raises :class:`InvalidInput` (``errors`` = [{field, rule,
message}], nothing written) or :class:`SigningRefused` (one Chinese message for the page).
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.errors import InvalidInput, field_error
from hospital_interop.municipal import gm

from . import certs, content, sealing, selectors, timestamps
from .client import ADAPTERS, CAError, SigningServerClient
from .client.base import CERT_STATE_MESSAGES, FINISH, REFUSE, TOSIGN
from .models import ReportSignature, ReviewReport, SignerProfile, SigningSession, SignJob, SystemParameter
from .parameters import BY_KEY
from .signals import approval_withdrawn, review_approved, send_on_commit
from .validators import (
    id_number_error,
    mask_id_number,
    mobile_error,
    name_error,
    normalize_id_number,
    staff_no_error,
)

log = logging.getLogger(__name__)

SESSION_HOURS = 8  # a signing session lasts a working shift unless the user logs out first
CHALLENGE_SECONDS = 120


class SigningRefused(Exception):
    """A refusal to show the signer (Chinese ``message``); ``status`` 400 with the ``field`` for
    input that is malformed, 403 for a refusal of well-formed input."""

    def __init__(self, message: str, code: str = "refused", *, status: int = 403, field: str = ""):
        self.message, self.code, self.status, self.field = message, code, status, field
        super().__init__(message)


# ---------------------------------------------------------------------------------------------
# Unified code table
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def set_parameters(values: dict[str, str], *, actor: str = "") -> None:
    """Validate every given parameter, then write them all. A blank secret keeps the stored one."""
    errors, clean = [], {}
    for key, raw in values.items():
        spec = BY_KEY.get(key)
        if spec is None:
            errors.append(field_error(key, "unknown", "未知的参数代码。"))
            continue
        value = (raw or "").strip()
        if spec.secret and not value:
            continue
        if spec.check and (err := spec.check(value)):
            errors.append(field_error(key, err[0], f"{spec.label}：{err[1]}"))
            continue
        clean[key] = value
    if errors:
        raise InvalidInput(errors)
    for key, value in clean.items():
        spec = BY_KEY[key]
        SystemParameter.objects.update_or_create(
            key=key,
            defaults={
                "value": sealing.seal(value) if spec.secret else value,
                "description": spec.label,
                "is_secret": spec.secret,
                "updated_by": actor,
            },
        )
    log.info("parameters %s changed by %s", ",".join(sorted(clean)), actor)


def ca_client() -> SigningServerClient:
    """The configured adapter (settings.CA_SERVER + the unified code table)."""
    app_id, secret = selectors.parameter("CA_APP_ID"), selectors.parameter("CA_SECRET")
    if not app_id or not secret:
        raise CAError("config", "统一代码表尚未设置 CA 应用 ID 或 CA 验证密钥，请联系管理员。", kind="config")
    adapter = ADAPTERS[settings.CA_SERVER.get("ADAPTER", "reference")]
    return adapter(
        settings.CA_SERVER["BASE_URL"],
        app_id,
        secret.encode(),
        qr_base_url=selectors.parameter("CA_QR_URL"),
        algorithm=selectors.parameter("CA_SIGN_ALG"),
        timeout=float(settings.CA_SERVER.get("TIMEOUT_SECONDS", 10)),
    )


# ---------------------------------------------------------------------------------------------
# Signers: registration, phone number, staff management
# ---------------------------------------------------------------------------------------------


def _profile(user) -> SignerProfile:
    profile = selectors.profile_for(user)
    if profile is None or not profile.registered:
        raise SigningRefused("您尚未注册签名用户，请先在“签名用户注册”中完成注册。", "not_registered")
    return profile


def register_signer(
    user,
    *,
    staff_no: str,
    name: str,
    id_number: str,
    mobile: str = "",
    client: SigningServerClient | None = None,
) -> SignerProfile:
    staff_no, name, id_number, mobile = (
        staff_no.strip(),
        name.strip(),
        normalize_id_number(id_number),
        mobile.strip(),
    )
    errors = []
    for field, value, check in (
        ("staff_no", staff_no, staff_no_error),
        ("name", name, name_error),
        ("id_number", id_number, id_number_error),
    ):
        if err := check(value):
            errors.append(field_error(field, *err))
    if mobile and (err := mobile_error(mobile)):
        errors.append(field_error("mobile", *err))
    existing = selectors.profile_for(user)
    if existing is not None and existing.registered:
        errors.append(
            field_error("staff_no", "registered", f"当前账号已注册为签名用户（工号 {existing.staff_no}）。")
        )
    if staff_no and SignerProfile.objects.filter(staff_no=staff_no).exclude(user=user).exists():
        errors.append(field_error("staff_no", "unique", "该工号已被其他账号注册。"))
    if errors:
        raise InvalidInput(errors)
    client = client or ca_client()
    try:
        info = client.add_user(
            name=name, id_number=id_number, staff_no=staff_no, mobile=mobile, department="检验科"
        )
    except CAError as exc:
        if exc.kind == "user_exists":
            raise InvalidInput(
                [
                    field_error(
                        "staff_no",
                        "ca_exists",
                        "签名服务器中已存在该工号或身份证号的用户，请联系信息中心核对。",
                    )
                ]
            ) from None
        if exc.kind == "invalid":
            field = {"idNumber": "id_number", "staffNo": "staff_no", "name": "name", "mobile": "mobile"}.get(
                exc.field or "", "staff_no"
            )
            raise InvalidInput([field_error(field, "ca", exc.message)]) from None
        raise
    with transaction.atomic():
        profile, _ = SignerProfile.objects.get_or_create(user=user)
        profile.staff_no, profile.name, profile.mobile = staff_no, name, mobile
        profile.id_number_enc, profile.id_number_masked = sealing.seal(id_number), mask_id_number(id_number)
        profile.ca_user_id, profile.cert_sn, profile.registered_at = (
            info.user_id,
            info.cert_sn,
            timezone.now(),
        )
        profile.save()
    log.info("signer registered: user %s staff %s CA user %s", user.pk, staff_no, info.user_id)
    return profile


def change_mobile(user, mobile: str, client: SigningServerClient | None = None) -> SignerProfile:
    mobile = (mobile or "").strip()
    if err := mobile_error(mobile):
        raise InvalidInput([field_error("mobile", *err)])
    profile = selectors.profile_for(user)
    if profile is None or not profile.registered:
        raise InvalidInput([field_error("mobile", "not_registered", "请先注册签名用户，再修改手机号。")])
    if mobile == profile.mobile:
        raise InvalidInput([field_error("mobile", "unchanged", "新手机号与当前手机号相同。")])
    (client or ca_client()).modify_user(user_id=profile.ca_user_id, mobile=mobile)
    profile.mobile = mobile
    profile.save(update_fields=["mobile", "updated_at"])
    return profile


@transaction.atomic
def set_staff_ca(user, *, ukey_serial: str, ca_enabled: bool) -> SignerProfile:
    """Staff management: the UKey serial bound to a person and whether CA applies to them."""
    serial = (ukey_serial or "").strip().upper()
    if serial and not (4 <= len(serial) <= 64 and serial.replace("-", "").isalnum() and serial.isascii()):
        raise InvalidInput(
            [field_error("ukey_serial", "format", "UKey 唯一标识应为 4–64 位字母、数字或连字符。")]
        )
    other = (
        SignerProfile.objects.filter(ukey_serial=serial).exclude(user=user).select_related("user").first()
        if serial
        else None
    )
    if other:
        raise InvalidInput(
            [
                field_error(
                    "ukey_serial",
                    "unique",
                    f"该 UKey 已登记给 {other.name or other.user.get_username()}（工号 {other.staff_no or '—'}）。",
                )
            ]
        )
    profile, _ = SignerProfile.objects.select_for_update().get_or_create(user=user)
    profile.ukey_serial = serial or None
    profile.ca_enabled = ca_enabled
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError:
        raise InvalidInput([field_error("ukey_serial", "unique", "该 UKey 已登记给其他人员。")]) from None
    return profile


# ---------------------------------------------------------------------------------------------
# Signing sessions
# ---------------------------------------------------------------------------------------------


def new_workstation_id() -> str:
    return secrets.token_hex(16)


def issue_challenge() -> dict:
    """A one-time challenge for the UKey to sign; the view keeps it in the Django session."""
    return {
        "challenge": base64.b64encode(
            f"UKEY-LOGIN|{secrets.token_hex(16)}|{timezone.now().isoformat()}".encode()
        ).decode(),
        "issued_at": timezone.now().timestamp(),
    }


def _certificate(certificate_b64: str) -> certs.Certificate:
    try:
        return certs.load_certificate(certificate_b64)
    except certs.CertificateError:
        raise SigningRefused("证书无法读取，请确认 UKey 中的证书完好。", "bad_certificate") from None


def _check_with_ca(client: SigningServerClient, certificate_b64: str) -> None:
    validation = client.validate_certificate(certificate=certificate_b64)
    if not validation.ok:
        raise SigningRefused(
            f"{CERT_STATE_MESSAGES.get(validation.status, validation.message)}"
            f"（证书序列号 {validation.cert_sn}），不能用于电子签名。请联系 CA 管理员更新证书。",
            validation.status.lower(),
        )


def _local_cert_checks(cert: certs.Certificate) -> None:
    now = timezone.now()
    if now > cert.not_after:
        raise SigningRefused(
            f"证书已过期（证书序列号 {cert.serial}，有效期至 {timezone.localtime(cert.not_after):%Y-%m-%d}），"
            "不能用于电子签名。请联系 CA 管理员更新证书。",
            "expired",
        )
    if now < cert.not_before:
        raise SigningRefused(f"证书尚未生效（证书序列号 {cert.serial}）。", "not_yet_valid")


def _decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        raise SigningRefused(f"{what}格式错误。", "bad_input", status=400) from None


def _new_session(
    user,
    *,
    kind,
    cert: certs.Certificate,
    workstation_id,
    client_ip,
    django_session_key,
    key_serial="",
    ca_token="",
) -> SigningSession:
    now = timezone.now()
    return SigningSession.objects.create(
        user=user,
        kind=kind,
        workstation_id=workstation_id,
        client_ip=client_ip or None,
        django_session_key=django_session_key or "",
        cert_sn=cert.serial,
        certificate=cert.b64,
        key_serial=key_serial,
        ca_token=ca_token,
        started_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    )


def ukey_login(
    user,
    *,
    challenge: dict | None,
    signed_challenge: str,
    certificate: str,
    signature: str,
    key_serial: str,
    workstation_id: str,
    client_ip: str | None = None,
    django_session_key: str = "",
    client: SigningServerClient | None = None,
) -> SigningSession:
    """Verify the UKey's signature of our challenge and open a UKey session on this workstation."""
    if not challenge or challenge.get("challenge") != signed_challenge:
        raise SigningRefused("登录挑战码无效，请刷新页面后重试。", "bad_challenge")
    if timezone.now().timestamp() - challenge["issued_at"] > CHALLENGE_SECONDS:
        raise SigningRefused("登录挑战码已过期，请重新登录。", "bad_challenge")
    profile = _profile(user)
    if not profile.ca_enabled:
        raise SigningRefused("人员管理中未为您启用 CA 验证，无需电子签名登录。", "person_disabled")
    cert = _certificate(certificate)
    if not cert.verify(_decode_b64(signed_challenge, "挑战码"), _decode_b64(signature, "签名值")):
        raise SigningRefused("UKey 签名验证失败，请确认选择了正确的证书。", "bad_signature")
    key_serial = (key_serial or "").strip().upper()
    if profile.ukey_serial != key_serial:
        owner = (
            SignerProfile.objects.filter(ukey_serial=key_serial).exclude(user=user).first()
            if key_serial
            else None
        )
        if owner:
            raise SigningRefused(
                f"该 UKey（{key_serial}）已绑定给 {owner.name}（工号 {owner.staff_no}），不能用于当前账号。",
                "ukey_other_user",
            )
        if not profile.ukey_serial:
            raise SigningRefused(
                "人员管理中尚未为您登记 UKey，请联系管理员登记 UKey 唯一标识。", "ukey_not_bound"
            )
        raise SigningRefused(
            f"该 UKey（{key_serial or '未知'}）不是为您登记的 UKey，不能登录。", "ukey_not_bound"
        )
    if cert.subject_uid != profile.ca_user_id:
        raise SigningRefused(
            f"证书持有人为 {cert.subject_cn}（工号 {cert.subject_serial}），与当前账号不一致，不能登录。",
            "cert_other_user",
        )
    _local_cert_checks(cert)
    _check_with_ca(client or ca_client(), cert.b64)
    with transaction.atomic():
        SignerProfile.objects.select_for_update().get(pk=profile.pk)  # one UKey login per user at a time
        active = selectors.active_sessions(user).filter(kind=SigningSession.Kind.UKEY)
        elsewhere = active.exclude(workstation_id=workstation_id).first()
        if elsewhere:
            raise SigningRefused(
                f"您已在另一台管理机（IP {elsewhere.client_ip or '未知'}，"
                f"{timezone.localtime(elsewhere.started_at):%m-%d %H:%M} 登录）使用 UKey 签名。"
                "UKey 签名只能在一台管理机上使用，请先在该管理机执行“退出电子签名”；"
                f"若无法回到该管理机，该会话将于 {timezone.localtime(elsewhere.expires_at):%m-%d %H:%M} "
                "自动结束，届时即可在本机登录。",
                "other_workstation",
            )
        active.update(ended_at=timezone.now(), end_reason="同一管理机重新登录")
        session = _new_session(
            user,
            kind=SigningSession.Kind.UKEY,
            cert=cert,
            workstation_id=workstation_id,
            client_ip=client_ip,
            django_session_key=django_session_key,
            key_serial=key_serial,
        )
    log.info(
        "UKey session %s opened for user %s (cert %s, key %s)", session.pk, user.pk, cert.serial, key_serial
    )
    return session


def start_qr_login(user, client: SigningServerClient | None = None):
    _profile(user)
    return (client or ca_client()).create_login_qr()


def poll_qr_login(
    user,
    transaction_id: str,
    *,
    workstation_id: str,
    client_ip: str | None = None,
    django_session_key: str = "",
    client: SigningServerClient | None = None,
) -> tuple[str, SigningSession | None]:
    """(status, session): FINISH opens a QR session; TOSIGN / REFUSE / EXPIRE pass through."""
    profile = _profile(user)
    client = client or ca_client()
    result = client.query_login_qr(transaction_id=transaction_id)
    if result.status != FINISH:
        return result.status, None
    if result.user_id != profile.ca_user_id:
        raise SigningRefused(
            "扫码确认的是其他人员的协同签名账号，与当前登录账号不一致，登录已拒绝。", "qr_other_user"
        )
    cert = _certificate(result.certificate)
    signed = _decode_b64(result.signed_data, "登录原文")
    if signed != f"login|{transaction_id}".encode() or not cert.verify(
        signed, _decode_b64(result.signature, "签名值")
    ):
        raise SigningRefused("扫码登录的签名验证失败，登录已拒绝。", "bad_signature")
    if cert.subject_uid != profile.ca_user_id:
        raise SigningRefused("扫码登录返回的证书不属于当前账号，登录已拒绝。", "cert_other_user")
    _local_cert_checks(cert)
    _check_with_ca(client, cert.b64)
    with transaction.atomic():
        selectors.active_sessions(user).filter(
            kind=SigningSession.Kind.QR, workstation_id=workstation_id
        ).update(ended_at=timezone.now(), end_reason="同一管理机重新登录")
        session = _new_session(
            user,
            kind=SigningSession.Kind.QR,
            cert=cert,
            workstation_id=workstation_id,
            client_ip=client_ip,
            django_session_key=django_session_key,
            ca_token=result.token,
        )
    log.info("QR session %s opened for user %s", session.pk, user.pk)
    return FINISH, session


def end_sessions(
    user,
    *,
    workstation_id: str | None = None,
    django_session_key: str | None = None,
    reason: str = "退出电子签名",
) -> int:
    """退出电子签名: close the user's UKey and QR sessions (on one workstation, or everywhere)."""
    qs = selectors.active_sessions(user)
    if workstation_id is not None:
        qs = qs.filter(workstation_id=workstation_id)
    if django_session_key is not None:
        qs = qs.filter(django_session_key=django_session_key)
    return qs.update(ended_at=timezone.now(), end_reason=reason)


# ---------------------------------------------------------------------------------------------
# Auto-sign and mobile certificate download
# ---------------------------------------------------------------------------------------------


def auto_sign_status(user, client: SigningServerClient | None = None):
    profile = selectors.profile_for(user)
    if profile is None or not profile.registered:
        return None
    return (client or ca_client()).query_auto_sign_task(user_id=profile.ca_user_id)


def enable_auto_sign(user, minutes: int, client: SigningServerClient | None = None):
    if not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        raise InvalidInput([field_error("minutes", "range", "自动签名时长应在 1–1440 分钟之间。")])
    return (client or ca_client()).enable_auto_sign(user_id=_profile(user).ca_user_id, minutes=minutes)


def disable_auto_sign(user, client: SigningServerClient | None = None):
    return (client or ca_client()).disable_auto_sign(user_id=_profile(user).ca_user_id)


def start_certificate_download(user, client: SigningServerClient | None = None):
    return (client or ca_client()).download_certificate(user_id=_profile(user).ca_user_id)


def poll_certificate_download(user, transaction_id: str, client: SigningServerClient | None = None):
    _profile(user)
    return (client or ca_client()).query_certificate_download(transaction_id=transaction_id)


# ---------------------------------------------------------------------------------------------
# Review: a lab report version opened for review, and the text its signature covers
# ---------------------------------------------------------------------------------------------


def open_review(lab_version, module: str, *, candidates: list[dict] | None = None) -> ReviewReport:
    """Put one lab report version (``mutual_recognition.lab.models.LabReportVersion``) up for review
    in ``module``: the one way a lab report enters the review modules.

    The review holds exactly the facts its signature will cover, copied from the version as its
    PDF prints them (``content.version_facts``, built by the lab app), and names the reviewer the
    LIS named. Opening the same version again returns its review; a new version is a new review,
    so an approval or signature of version 1 never covers version 2: an older version still
    waiting in a queue leaves it (``superseded``). ``candidates`` ([{staffNo, name}], the LIS's
    reviewer candidates) are kept for the queue to show.
    """
    if module not in ReviewReport.Module.values:
        raise InvalidInput([field_error("module", "choice", f"审核模块 {module!r} 不存在。")])
    report_id = lab_version.report.report_id
    existing = ReviewReport.objects.filter(report_id=report_id, report_version=lab_version.version).first()
    if existing is not None:
        if existing.lab_version_id != lab_version.pk:
            raise InvalidInput(
                [
                    field_error(
                        "reportId",
                        "conflict",
                        f"报告 {report_id} 第 {lab_version.version} 版"
                        "已有一份不是由该检验报告版本生成的审核记录。",
                    )
                ]
            )
        if candidates is not None and existing.reviewer_candidates != candidates:
            existing.reviewer_candidates = candidates
            existing.save(update_fields=["reviewer_candidates"])
        return existing
    try:
        facts = content.version_facts(lab_version)
    except content.ContentUnreadable as exc:
        raise InvalidInput(exc.errors) from None
    c = lab_version.content
    patient, specimen, reviewer = facts["patient"], facts["specimen"], facts["reviewer"]
    try:
        with transaction.atomic():
            report = ReviewReport.objects.create(
                module=module,
                report_id=report_id,
                report_version=lab_version.version,
                lab_version=lab_version,
                patient_name=patient["name"],
                patient_id=patient["patientId"],
                sex=patient["sex"],
                age=patient["age"],
                specimen=specimen["type"],
                specimen_no=specimen["no"],
                title=facts["title"],
                items=facts["items"],
                reported_by=(c.get("testDoctor") or {}).get("name", ""),
                collected_at=parse_time((c.get("specimen") or {}).get("sampledAt", "")),
                tested_at=parse_time(c.get("reportedAt", "")),
                reviewer_staff_no=reviewer["staffNo"],
                reviewer_name=reviewer["name"],
                reviewer_candidates=candidates or [],
            )
            older = ReviewReport.objects.filter(
                report_id=report_id,
                report_version__lt=lab_version.version,
                status__in=(ReviewReport.Status.PENDING, ReviewReport.Status.SIGNING),
            )
            older.update(
                status=ReviewReport.Status.SUPERSEDED,
                review_note=f"已被第 {lab_version.version} 版取代，无需审核",
            )
    except IntegrityError:  # opened at the same moment by another request
        return ReviewReport.objects.get(report_id=report_id, report_version=lab_version.version)
    log.info("lab report %s v%s opened for review in %s", report_id, lab_version.version, module)
    return report


def review_facts(report: ReviewReport, *, unnamed_reviewer: dict) -> dict:
    """The signed facts as the review module shows them (``esign.content.report_facts``).

    The reviewer is the one the report names; a report that names nobody (the demo reports)
    takes ``unnamed_reviewer`` ({staffNo, name}: the signer, or on verification the stored signer).
    """
    named = (
        {"staffNo": report.reviewer_staff_no, "name": report.reviewer_name}
        if report.reviewer_staff_no
        else unnamed_reviewer
    )
    return content.report_facts(
        report_id=report.report_id,
        version=report.report_version,
        title=report.title,
        patient={
            "name": report.patient_name,
            "sex": report.sex,
            "age": report.age,
            "patientId": report.patient_id,
        },
        specimen={"type": report.specimen, "no": report.specimen_no},
        items=report.items,
        reviewer=named,
    )


def current_facts(report: ReviewReport, *, unnamed_reviewer: dict) -> dict:
    """The facts of the report's CURRENT content: from its lab version when it has one (what the
    PDF prints now), else from the review itself. Raises ``ContentUnreadable`` when the lab
    content no longer maps through the dictionaries."""
    if report.lab_version_id is None:
        return review_facts(report, unnamed_reviewer=unnamed_reviewer)
    versions = ReviewReport._meta.get_field(
        "lab_version"
    ).related_model.objects  # read fresh: content may change
    return content.version_facts(versions.select_related("report").get(pk=report.lab_version_id))


def _signing_text(report: ReviewReport, profile: SignerProfile) -> str:
    """The canonical text ``profile`` may sign for ``report`` now, recomputed from the current
    content; refuses a signer who is not the reviewer the report names, and a review whose
    facts no longer agree with its lab version's current content."""
    signer = {"staffNo": profile.staff_no, "name": profile.name}
    facts = review_facts(report, unnamed_reviewer=signer)
    named = facts["reviewer"]
    if named["staffNo"] != profile.staff_no:
        raise SigningRefused(
            f"报告 {report.report_id} 第 {report.report_version} 版的审核者为 {named['name']}（工号 {named['staffNo']}），"
            f"当前签名人为 {profile.name}（工号 {profile.staff_no}）。只能由报告所列审核者本人签名，审核未完成。",
            "not_reviewer",
        )
    if report.lab_version_id is not None:
        try:
            lab = current_facts(report, unnamed_reviewer=signer)
        except content.ContentUnreadable:
            lab = None
        if lab != facts:
            raise SigningRefused(
                f"报告 {report.report_id} 第 {report.report_version} 版的审核内容与检验系统中该版本的当前内容不一致"
                "（报告内容已变更），不能签名，审核未完成。",
                "content_changed",
            )
    return content.canonical_text(facts)


@dataclass(frozen=True)
class Approval:
    report: ReviewReport
    outcome: str  # "signed" | "unsigned" | "pending_phone"
    message: str
    signature: ReportSignature | None = None
    sign_job: SignJob | None = None


def _signing_required(user) -> bool:
    return selectors.ca_enabled() and selectors.person_ca_enabled(user)


def _pending(report_pk: int) -> ReviewReport:
    report = ReviewReport.objects.select_for_update().get(pk=report_pk)
    if report.status == ReviewReport.Status.APPROVED:
        raise SigningRefused(
            f"报告 {report.report_id} 已由 {report.reviewer} 审核，无需重复审核。", "already"
        )
    if report.status == ReviewReport.Status.SIGNING:
        raise SigningRefused(f"报告 {report.report_id} 正在等待协同签名 APP 确认签名。", "signing")
    if report.status == ReviewReport.Status.SUPERSEDED:
        raise SigningRefused(
            f"报告 {report.report_id} 第 {report.report_version} 版已被新版本取代，请审核最新版本。",
            "superseded",
        )
    return report


def _approve_unsigned(report_pk: int, user) -> Approval:
    with transaction.atomic():
        report = _pending(report_pk)
        report.status, report.reviewer, report.reviewed_at, report.signed = (
            ReviewReport.Status.APPROVED,
            user,
            timezone.now(),
            False,
        )
        report.review_note = (
            "CA 未启用，审核未进行电子签名"
            if not selectors.ca_enabled()
            else "该人员未启用 CA 验证，审核未进行电子签名"
        )
        report.save()
        _audit_approval(report, ReviewReport.Status.PENDING.label, "unsigned")
        send_on_commit(review_approved, report, signature=None)
    return Approval(report, "unsigned", f"报告 {report.report_id} 已审核。{report.review_note}。")


def _require_session(user, workstation_id: str) -> SigningSession:
    session = selectors.active_session(user, workstation_id)
    if session is None:
        raise SigningRefused(
            "CA 已启用：请先进行电子签名登录（UKey 或二维码扫码）后再审核报告。", "no_session"
        )
    return session


def prepare_ukey_signing(report_pk: int, user, *, workstation_id: str) -> dict:
    """The content the UKey must sign for this approval (the view keeps it in the Django session)."""
    profile = _profile(user)
    session = _require_session(user, workstation_id)
    if session.kind != SigningSession.Kind.UKEY:
        raise SigningRefused("当前为二维码签名登录，无需 UKey 签名。", "not_ukey")
    report = ReviewReport.objects.get(pk=report_pk)
    if report.status != ReviewReport.Status.PENDING:
        raise SigningRefused(f"报告 {report.report_id} 不是待审核状态。", "already")
    text = _signing_text(report, profile)
    return {
        "report": report_pk,
        "text": text,
        "data": base64.b64encode(text.encode()).decode(),
        "certSn": session.cert_sn,
        "session": session.pk,
    }


def _timestamp_authority(client: SigningServerClient) -> certs.Certificate:
    """The CA certificate that signs timestamp tokens (asked before any row is locked)."""
    try:
        return certs.load_certificate(client.ca_certificate())
    except certs.CertificateError:
        raise SigningRefused(
            "签名服务器返回的 CA 证书无法读取，无法验证时间戳，审核未完成。", "bad_timestamp"
        ) from None


def _store_signature(
    report: ReviewReport,
    user,
    profile: SignerProfile,
    *,
    method,
    text: str,
    signature_b64: str,
    certificate_b64: str,
    signed_at,
    timestamp_token: str,
    authority: certs.Certificate,
    earliest,
    session,
    sign_data_id: str = "",
) -> ReportSignature:
    """Every check of the signing path, then the signature row (``report`` is locked by the caller).

    The signed text must be the canonical text of the report's current content for this signer
    (the reviewer it names); the SM2 signature must verify over exactly that text with the
    certificate; the certificate must be the signer's (subject UID = their CA user id); the
    timestamp token must cover this signature value, be the CA's and carry a sane time.
    """
    cert = _certificate(certificate_b64)
    if text != _signing_text(report, profile):
        raise SigningRefused(
            "签名原文不是该报告版本当前内容的规范文本（报告内容在签名过程中已变更），审核未完成。"
            "请重新审核签名。",
            "content_changed",
        )
    signature = _decode_b64(signature_b64, "签名值")
    if not cert.verify(text.encode("utf-8"), signature):
        raise SigningRefused("签名值验证失败：签名与报告内容不一致，审核未完成。", "bad_signature")
    if cert.subject_uid != profile.ca_user_id:
        raise SigningRefused("签名证书不属于当前审核人，审核未完成。", "cert_other_user")
    stamp = timestamps.verify(timestamp_token, signature=signature, authority=authority, earliest=earliest)
    if not stamp.ok:
        raise SigningRefused(f"时间戳无效：{stamp.message}审核未完成。", "bad_timestamp")
    before = report.get_status_display()
    report.status, report.reviewer, report.reviewed_at, report.signed = (
        ReviewReport.Status.APPROVED,
        user,
        timezone.now(),
        True,
    )
    report.review_note = ""
    report.save()
    signature = ReportSignature.objects.create(
        report=report,
        report_number=report.report_id,
        report_version=report.report_version,
        signer=user,
        signer_name=profile.name,
        signer_staff_no=profile.staff_no,
        method=method,
        original_text=text,
        original_hash=content.text_hash(text),
        signature=signature_b64,
        certificate=cert.b64,
        cert_sn=cert.serial,
        signed_at=signed_at,
        timestamp_token=timestamp_token,
        timestamp_verified=True,
        timestamp_time=stamp.time,
        timestamp_serial=stamp.serial[:64],
        sign_data_id=sign_data_id,
        session=session,
    )
    _audit_approval(report, before, method)
    send_on_commit(review_approved, report, signature=signature)
    return signature


def _audit_approval(report: ReviewReport, before: str, how: str) -> None:
    """A report approved (and how it was signed), for the security trail."""
    audit.record(
        audit.Action.SIGN,
        "esign.ReviewReport",
        report.pk,
        patient=selectors.patient_key(report),
        changes={"status": [before, report.get_status_display()]},
        detail={"report": report.report_id, "version": report.report_version, "signed": how},
    )


def parse_time(value: str):
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else timezone.now()
    except ValueError:
        return timezone.now()


def _ca_refusal(exc: CAError) -> SigningRefused:
    hints = {
        "revoked": "证书已吊销，不能用于电子签名，审核未完成。请联系 CA 管理员重新办理证书。",
        "expired": "证书已过期，不能用于电子签名，审核未完成。请联系 CA 管理员更新证书。",
        "frozen": "证书已冻结，不能用于电子签名，审核未完成。",
        "not_yet_valid": "证书尚未生效，不能用于电子签名，审核未完成。",
        "no_auto_sign": "未开启自动签名授权，请先在“自动签名”中开启并在协同签名 APP 上确认。",
        "auto_sign_expired": "自动签名授权已到期，请重新开启自动签名。",
    }
    return SigningRefused(hints.get(exc.kind, f"签名服务器：{exc.message}"), exc.kind)


def approve_report(
    report_pk: int,
    user,
    *,
    workstation_id: str,
    prepared: dict | None = None,
    ukey_signature: str = "",
    ukey_certificate: str = "",
    client: SigningServerClient | None = None,
) -> Approval:
    """Approve one report. CA disabled: approve unsigned. UKey session: check the signature the
    UKey made over ``prepared['text']`` (made with the UKey login certificate). QR session:
    auto-sign inside its window, else push a sign job to the phone (the report waits in SIGNING
    until :func:`finish_sign_job`). Every signature passes :func:`_store_signature`'s checks."""
    if not _signing_required(user):
        return _approve_unsigned(report_pk, user)
    started = timezone.now()
    profile = _profile(user)
    session = _require_session(user, workstation_id)
    client = client or ca_client()
    if session.kind == SigningSession.Kind.UKEY:
        if not prepared or prepared.get("report") != report_pk or prepared.get("session") != session.pk:
            raise SigningRefused("缺少 UKey 签名，请在本页重新点击“审核并签名”。", "no_signature")
        cert = _certificate(ukey_certificate)
        if cert.serial != session.cert_sn:
            raise SigningRefused("签名所用证书与 UKey 登录证书不一致，审核未完成。", "cert_mismatch")
        _local_cert_checks(cert)
        _check_with_ca(client, cert.b64)
        token = client.timestamp(digest_hex=gm.sm3_hex(_decode_b64(ukey_signature, "签名值")))
        authority = _timestamp_authority(client)
        with transaction.atomic():
            report = _pending(report_pk)
            sig = _store_signature(
                report,
                user,
                profile,
                method=ReportSignature.Method.UKEY,
                text=prepared["text"],
                signature_b64=ukey_signature,
                certificate_b64=cert.b64,
                signed_at=timezone.now(),
                timestamp_token=token,
                authority=authority,
                earliest=started,
                session=session,
            )
            SigningSession.objects.filter(pk=session.pk).update(last_seen_at=timezone.now())
        return Approval(
            report, "signed", f"报告 {report.report_id} 已审核并完成 UKey 电子签名。", signature=sig
        )
    return _collaborative_sign(report_pk, user, profile, session, client)


def _collaborative_sign(report_pk, user, profile, session, client) -> Approval:
    """QR / collaborative signing: auto-sign inside the open grant, else a sign job on the phone."""
    report = ReviewReport.objects.get(pk=report_pk)
    text = _signing_text(report, profile)
    task = client.query_auto_sign_task(user_id=profile.ca_user_id)
    if task.is_open:
        return _auto_sign_one(report_pk, user, profile, session, text, client)
    try:
        job = client.push_sign(
            user_id=profile.ca_user_id,
            data=text.encode(),
            biz_no=report.report_id,
            title=f"{report.get_module_display()}报告审核 {report.report_id}",
        )
    except CAError as exc:
        raise _ca_refusal(exc) from None
    with transaction.atomic():
        report = _pending(report_pk)
        report.status = ReviewReport.Status.SIGNING
        report.save(update_fields=["status"])
        sign_job = SignJob.objects.create(
            report=report,
            user=user,
            session=session,
            sign_data_id=job.sign_data_id,
            original_text=text,
            status=TOSIGN,
        )
    return Approval(
        report,
        "pending_phone",
        f"已向协同签名 APP 推送报告 {report.report_id} 的签名请求，请在手机上确认。",
        sign_job=sign_job,
    )


def _auto_sign_one(report_pk, user, profile, session, text, client) -> Approval:
    report = ReviewReport.objects.get(pk=report_pk)
    started = timezone.now()
    try:
        result = client.auto_sign(user_id=profile.ca_user_id, data=text.encode(), biz_no=report.report_id)
    except CAError as exc:
        raise _ca_refusal(exc) from None
    _local_cert_checks(_certificate(result.certificate))
    authority = _timestamp_authority(client)
    with transaction.atomic():
        report = _pending(report_pk)
        sig = _store_signature(
            report,
            user,
            profile,
            method=ReportSignature.Method.AUTO,
            text=text,
            signature_b64=result.signature,
            certificate_b64=result.certificate,
            signed_at=parse_time(result.signed_at),
            timestamp_token=result.timestamp_token,
            authority=authority,
            earliest=started,
            session=session,
            sign_data_id=result.sign_data_id,
        )
    return Approval(report, "signed", f"报告 {report.report_id} 已审核并完成自动签名。", signature=sig)


def finish_sign_job(report_pk: int, user, client: SigningServerClient | None = None) -> Approval | None:
    """Poll the phone sign job of a report in SIGNING; None while the phone has not answered."""
    job = (
        SignJob.objects.filter(report_id=report_pk, user=user, status=TOSIGN).order_by("-created_at").first()
    )
    if job is None:
        report = ReviewReport.objects.get(pk=report_pk)
        return Approval(report, "signed" if report.signed else "unsigned", "该报告没有等待确认的签名任务。")
    client = client or ca_client()
    result = client.get_sign_result(sign_data_id=job.sign_data_id)
    if result.status == TOSIGN:
        return None
    profile = _profile(user)
    authority = _timestamp_authority(client) if result.status == FINISH else None
    try:
        with transaction.atomic():
            report = ReviewReport.objects.select_for_update().get(pk=report_pk)
            if report.status != ReviewReport.Status.SIGNING:  # superseded or withdrawn meanwhile
                SignJob.objects.filter(pk=job.pk).update(status="INVALID", finished_at=timezone.now())
                return Approval(
                    report,
                    "refused",
                    f"报告 {report.report_id} 第 {report.report_version} 版已不在等待签名状态"
                    f"（{report.get_status_display()}），手机上的签名不再使用。",
                )
            job.status, job.finished_at = result.status, timezone.now()
            job.save(update_fields=["status", "finished_at"])
            if result.status != FINISH:
                report.status = ReviewReport.Status.PENDING
                report.save(update_fields=["status"])
                word = "拒绝" if result.status == REFUSE else "超时未确认"
                return Approval(
                    report, "refused", f"协同签名 APP {word}签名，报告 {report.report_id} 仍为待审核。"
                )
            sig = _store_signature(
                report,
                user,
                profile,
                method=ReportSignature.Method.PHONE,
                text=job.original_text,
                signature_b64=result.signature,
                certificate_b64=result.certificate,
                signed_at=parse_time(result.signed_at),
                timestamp_token=result.timestamp_token,
                authority=authority,
                earliest=job.created_at,
                session=job.session,
                sign_data_id=job.sign_data_id,
            )
    except SigningRefused:
        # this job's answer can never pass: close it, and the report waits for a new review
        SignJob.objects.filter(pk=job.pk).update(status="INVALID", finished_at=timezone.now())
        ReviewReport.objects.filter(pk=report_pk, status=ReviewReport.Status.SIGNING).update(
            status=ReviewReport.Status.PENDING
        )
        raise
    return Approval(report, "signed", f"报告 {report.report_id} 已审核并完成手机确认签名。", signature=sig)


def withdraw_approval(report_pk: int, user, *, reason: str) -> ReviewReport:
    """撤销审核: an approved version goes back to the queue, unsigned. Its signature rows stay (the
    history) but no longer count (``signature_block`` reads signed reviews only). Only the
    reviewer who approved it, or a CA administrator, may withdraw it, with a reason.

    The lab upload hears ``approval_withdrawn`` after commit (mutual_recognition.lab.reviews):
    uploads of that version not yet sent are voided; one the platform already holds stays until
    the version is approved and signed again, which re-sends it as a change (3.3 re-submission)."""
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 100:
        raise InvalidInput([field_error("reason", "length", "请填写撤销审核的原因（2–100 个字）。")])
    with transaction.atomic():
        report = ReviewReport.objects.select_for_update().get(pk=report_pk)
        if report.status != ReviewReport.Status.APPROVED:
            raise SigningRefused(
                f"报告 {report.report_id} 第 {report.report_version} 版不是已审核状态"
                f"（{report.get_status_display()}），无需撤销。",
                "not_approved",
            )
        if report.reviewer_id != user.pk and not user.has_perm("esign.manage_ca"):
            raise SigningRefused(
                f"报告 {report.report_id} 由 {report.reviewer} 审核，只能由审核者本人或 CA 管理员撤销审核。",
                "not_reviewer",
            )
        newer = ReviewReport.objects.filter(
            report_id=report.report_id, report_version__gt=report.report_version
        ).exists()
        if newer:
            raise SigningRefused(
                f"报告 {report.report_id} 已有更新的版本，第 {report.report_version} 版不能再撤销审核。",
                "superseded",
            )
        before = report.get_status_display()
        report.status, report.reviewer, report.reviewed_at, report.signed = (
            ReviewReport.Status.PENDING,
            None,
            None,
            False,
        )
        report.review_note = f"已撤销审核：{reason}"[:200]
        report.save()
        audit.record(
            audit.Action.UPDATE,
            "esign.ReviewReport",
            report.pk,
            patient=selectors.patient_key(report),
            changes={"status": [before, report.get_status_display()]},
            detail={"report": report.report_id, "version": report.report_version, "withdrawn": True},
        )
        send_on_commit(approval_withdrawn, report, reason=reason)
    log.info("approval of review %s withdrawn by user %s", report.pk, user.pk)
    return report


# ---------------------------------------------------------------------------------------------
# The embedded signing page (esign.embed): the signer proves who they are with the UKey or the QR
# ---------------------------------------------------------------------------------------------


def _embed_profile(profile: SignerProfile | None, who: str) -> SignerProfile:
    if profile is None or not profile.registered:
        raise SigningRefused(f"{who}不是本系统的签名用户，请先在“签名用户注册”中注册。", "not_registered")
    if not profile.ca_enabled:
        raise SigningRefused(
            f"人员管理中未为 {profile.name}（工号 {profile.staff_no}）启用 CA 验证。", "person_disabled"
        )
    if not selectors.ca_enabled():
        raise SigningRefused("统一代码表中 CA 未启用，不能电子签名。", "ca_disabled")
    return profile


def _ukey_signer(certificate_b64: str, key_serial: str) -> tuple[SignerProfile, certs.Certificate]:
    """The signer whose UKey this is: the certificate's subject is their CA user and the UKey serial
    is the one staff management bound to them."""
    cert = _certificate(certificate_b64)
    profile = _embed_profile(
        SignerProfile.objects.select_related("user").filter(ca_user_id=cert.subject_uid).first()
        if cert.subject_uid
        else None,
        f"证书持有人 {cert.subject_cn}（工号 {cert.subject_serial}）",
    )
    serial = (key_serial or "").strip().upper()
    if not profile.ukey_serial:
        raise SigningRefused(
            f"人员管理中尚未为 {profile.name} 登记 UKey，请联系管理员登记 UKey 唯一标识。", "ukey_not_bound"
        )
    if profile.ukey_serial != serial:
        raise SigningRefused(
            f"该 UKey（{serial or '未知'}）不是为 {profile.name} 登记的 UKey，不能签名。", "ukey_not_bound"
        )
    _local_cert_checks(cert)
    return profile, cert


def embed_sign_data(report_pk: int, *, certificate: str, key_serial: str) -> dict:
    """The text the UKey must sign for this report version: {data (Base64), certSn, signer}."""
    profile, cert = _ukey_signer(certificate, key_serial)
    report = ReviewReport.objects.get(pk=report_pk)
    if report.status != ReviewReport.Status.PENDING:
        raise SigningRefused(
            f"报告 {report.report_id} 第 {report.report_version} 版不是待审核状态（{report.get_status_display()}）。",
            "already",
        )
    text = _signing_text(report, profile)
    return {
        "data": base64.b64encode(text.encode()).decode(),
        "certSn": cert.serial,
        "signer": f"{profile.name}（工号 {profile.staff_no}）",
    }


def embed_sign_ukey(
    report_pk: int,
    *,
    certificate: str,
    signature: str,
    key_serial: str,
    client: SigningServerClient | None = None,
) -> Approval:
    """Approve and sign with the UKey on the embedded page: the same checks and the same stored
    signature as the review page (``_store_signature``), the signer named by the UKey."""
    started = timezone.now()
    profile, cert = _ukey_signer(certificate, key_serial)
    client = client or ca_client()
    _check_with_ca(client, cert.b64)
    report = ReviewReport.objects.get(pk=report_pk)
    text = _signing_text(report, profile)
    if not cert.verify(text.encode("utf-8"), _decode_b64(signature, "签名值")):
        raise SigningRefused("签名值验证失败：签名与报告内容不一致，审核未完成。", "bad_signature")
    token = client.timestamp(digest_hex=gm.sm3_hex(_decode_b64(signature, "签名值")))
    authority = _timestamp_authority(client)
    with transaction.atomic():
        report = _pending(report_pk)
        sig = _store_signature(
            report,
            profile.user,
            profile,
            method=ReportSignature.Method.UKEY,
            text=text,
            signature_b64=signature,
            certificate_b64=cert.b64,
            signed_at=timezone.now(),
            timestamp_token=token,
            authority=authority,
            earliest=started,
            session=None,
        )
    log.info("review %s signed on the embedded page (UKey, user %s)", report.pk, profile.user_id)
    return Approval(report, "signed", f"报告 {report.report_id} 已审核并完成 UKey 电子签名。", signature=sig)


def embed_qr_start(client: SigningServerClient | None = None):
    """A login QR code for the 协同签名 APP: scanning it names the signer."""
    return (client or ca_client()).create_login_qr()


def embed_qr_poll(
    report_pk: int, transaction_id: str, client: SigningServerClient | None = None
) -> tuple[str, Approval | None]:
    """(status, approval): until the APP confirms the scan, its status (TOSIGN / REFUSE / EXPIRE);
    then the scanning signer approves: auto-signed inside their grant, else a sign job on the
    phone (``pending_phone``; :func:`embed_poll_sign_job` finishes it)."""
    client = client or ca_client()
    result = client.query_login_qr(transaction_id=transaction_id)
    if result.status != FINISH:
        return result.status, None
    cert = _certificate(result.certificate)
    signed = _decode_b64(result.signed_data, "登录原文")
    if signed != f"login|{transaction_id}".encode() or not cert.verify(
        signed, _decode_b64(result.signature, "签名值")
    ):
        raise SigningRefused("扫码的签名验证失败，签名已拒绝。", "bad_signature")
    if not result.user_id or cert.subject_uid != result.user_id:
        raise SigningRefused("扫码返回的证书不属于扫码人员，签名已拒绝。", "cert_other_user")
    profile = _embed_profile(
        SignerProfile.objects.select_related("user").filter(ca_user_id=result.user_id).first(),
        f"扫码人员 {cert.subject_cn}（工号 {cert.subject_serial}）",
    )
    _local_cert_checks(cert)
    _check_with_ca(client, cert.b64)
    return FINISH, _collaborative_sign(report_pk, profile.user, profile, None, client)


def embed_poll_sign_job(report_pk: int, client: SigningServerClient | None = None) -> Approval | None:
    """The phone's answer to the sign job of a report in SIGNING (None while it has not answered)."""
    job = SignJob.objects.filter(report_id=report_pk, status=TOSIGN).order_by("-created_at").first()
    report = ReviewReport.objects.get(pk=report_pk)
    if job is None:
        return Approval(report, "signed" if report.signed else "unsigned", "该报告没有等待确认的签名任务。")
    return finish_sign_job(report_pk, job.user, client=client)


def batch_approve(
    report_pks: list[int], user, *, workstation_id: str, client: SigningServerClient | None = None
) -> list[Approval | SigningRefused]:
    """Batch approval: unsigned when CA is off, else auto-sign within the open authorisation."""
    if not report_pks:
        raise InvalidInput([field_error("reports", "required", "请至少勾选一份报告。")])
    results: list[Approval | SigningRefused] = []
    if not _signing_required(user):
        for pk in report_pks:
            try:
                results.append(_approve_unsigned(pk, user))
            except SigningRefused as exc:
                results.append(exc)
        return results
    profile = _profile(user)
    session = _require_session(user, workstation_id)
    client = client or ca_client()
    task = client.query_auto_sign_task(user_id=profile.ca_user_id)
    if not task.is_open:
        raise SigningRefused(
            "批量审核使用自动签名：请先开启自动签名授权并在协同签名 APP 上确认。", "no_auto_sign"
        )
    for pk in report_pks:
        try:
            text = _signing_text(ReviewReport.objects.get(pk=pk), profile)
            results.append(_auto_sign_one(pk, user, profile, session, text, client))
        except SigningRefused as exc:
            results.append(exc)
            if exc.code in ("revoked", "expired", "frozen", "auto_sign_expired", "no_auto_sign"):
                remaining = len(report_pks) - len(results)
                results.extend([SigningRefused(exc.message, exc.code)] * remaining)
                break
    return results


# ---------------------------------------------------------------------------------------------
# Verification and the lab upload's view of a signature
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    valid: bool
    checks: list[dict]  # {name, ok, detail}
    content_changed: bool = False  # the report's current content is no longer the signed text
    current_hash: str = ""  # SM3 of the canonical text of the current content ('' if unreadable)


def verify_signature(signature: ReportSignature, client: SigningServerClient | None = None) -> Verification:
    """Re-check a stored signature: text vs its SM3, the SM2 signature vs its certificate, the
    report's CURRENT content vs the signed text, the signer vs the reviewer it names, the
    timestamp token, and (for reference) the certificate's state at the CA now."""
    text = signature.original_text.encode("utf-8")
    checks = []
    hash_ok = gm.sm3_hex(text) == signature.original_hash
    checks.append(
        {
            "name": "原文摘要（SM3）",
            "ok": hash_ok,
            "detail": "原文与签名时的摘要一致" if hash_ok else "原文已被改动，与签名时的摘要不一致",
        }
    )
    try:
        cert = certs.load_certificate(signature.certificate)
        raw_signature = base64.b64decode(signature.signature)
        sig_ok = cert.verify(text, raw_signature)
        cert_ok = cert.serial == signature.cert_sn
    except (certs.CertificateError, ValueError, binascii.Error):
        cert, raw_signature, sig_ok, cert_ok = None, b"", False, False
    checks.append(
        {
            "name": "签名值（SM3withSM2）",
            "ok": sig_ok,
            "detail": "签名值与原文、签名证书公钥匹配" if sig_ok else "签名值与原文不匹配",
        }
    )
    checks.append(
        {
            "name": "证书序列号",
            "ok": cert_ok,
            "detail": f"{signature.cert_sn}（{cert.subject_cn if cert else '证书无法读取'}）",
        }
    )

    report = signature.report
    version_ok = (signature.report_number, signature.report_version) == (
        report.report_id,
        report.report_version,
    )
    checks.append(
        {
            "name": "报告版本",
            "ok": version_ok,
            "detail": f"签名覆盖报告单号 {signature.report_number} 第 {signature.report_version} 版"
            + ("" if version_ok else f"，不是报告 {report.report_id} 第 {report.report_version} 版"),
        }
    )
    try:
        facts = current_facts(
            report, unnamed_reviewer={"staffNo": signature.signer_staff_no, "name": signature.signer_name}
        )
    except content.ContentUnreadable:
        facts = None
    current_hash = content.text_hash(content.canonical_text(facts)) if facts else ""
    current_ok = current_hash == signature.original_hash
    checks.append(
        {
            "name": "报告当前内容",
            "ok": current_ok,
            "detail": (
                "报告当前内容的规范文本与签名原文一致"
                if current_ok
                else f"报告内容已在签名后变更：当前内容的 SM3 为 {current_hash or '（无法按当前字典解析）'}，"
                f"与签名原文的 SM3 {signature.original_hash} 不一致"
            ),
        }
    )
    named = (facts or {}).get("reviewer", {})
    reviewer_ok = bool(named) and named.get("staffNo") == signature.signer_staff_no
    checks.append(
        {
            "name": "签名人即报告审核者",
            "ok": reviewer_ok,
            "detail": (
                f"签名人 {signature.signer_name}（工号 {signature.signer_staff_no}）"
                + (
                    "即报告所列审核者"
                    if reviewer_ok
                    else f"不是报告所列审核者 {named.get('name', '')}（工号 {named.get('staffNo', '')}）"
                )
            ),
        }
    )

    server_ok = None
    stamp = None
    try:
        client = client or ca_client()
        server_ok = client.verify_signature(
            certificate=signature.certificate, data=text, signature=signature.signature
        )
        checks.append(
            {
                "name": "签名服务器验证",
                "ok": server_ok,
                "detail": "签名服务器确认签名有效" if server_ok else "签名服务器认为签名无效",
            }
        )
        stamp = timestamps.verify(
            signature.timestamp_token,
            signature=raw_signature,
            authority=certs.load_certificate(client.ca_certificate()),
        )
        state = client.validate_certificate(certificate=signature.certificate)
        checks.append(
            {
                "name": "证书当前状态",
                "ok": None,
                "detail": CERT_STATE_MESSAGES.get(state.status, state.message)
                + "（仅供参考：签名时证书有效）",
            }
        )
    except CAError as exc:
        checks.append({"name": "签名服务器验证", "ok": None, "detail": f"未能连接签名服务器：{exc.message}"})
    except certs.CertificateError:
        checks.append({"name": "签名服务器验证", "ok": None, "detail": "签名服务器返回的 CA 证书无法读取"})
    if stamp is not None:
        checks.append(
            {
                "name": "可信时间戳",
                "ok": stamp.ok,
                "detail": stamp.message
                + (
                    f"（{timezone.localtime(stamp.time):%Y-%m-%d %H:%M:%S}）"
                    if stamp.ok and stamp.time
                    else ""
                ),
            }
        )
    else:
        checks.append(
            {
                "name": "可信时间戳",
                "ok": None,
                "detail": "签名时已验证"
                if signature.timestamp_verified
                else "未验证（本签名的时间戳未经检查）",
            }
        )
    valid = (
        hash_ok
        and sig_ok
        and cert_ok
        and version_ok
        and current_ok
        and reviewer_ok
        and server_ok is not False
    )
    return Verification(valid, checks, content_changed=hash_ok and not current_ok, current_hash=current_hash)


def signature_block(report_id: str, version: int, facts: dict) -> dict | None:
    """The signature of version ``version`` of report ``report_id`` whose content has ``facts``
    (``esign.content.report_facts``, built by the lab side from that version's content), for
    the PDF and the index; None unless a signature matches all of: report number, version, the
    SM3 of the canonical text of ``facts`` (and that text), a signer who is the reviewer the
    facts name, and an SM2 signature that verifies over the text with its certificate.

    Keys: reportId, reportVersion, originalText, originalHash (SM3 hex of the UTF-8 text),
    hashAlgorithm ("SM3"), signatureAlgorithm ("SM3withSM2"), signatureValue (Base64 DER r,s),
    certificate (Base64 DER), certSerial (hex), signerName, signerStaffNo, signedAt (ISO 8601
    with offset), timestampToken (from the CA's timestamp service), timestampVerified (true only
    when the token was verified at signing and names this signature's digest), method ("ukey" |
    "auto" | "phone").
    """
    if facts.get("reportId") != report_id or facts.get("reportVersion") != version:
        return None
    text = content.canonical_text(facts)
    rows = ReportSignature.objects.filter(
        report_number=report_id,
        report_version=version,
        original_hash=content.text_hash(text),
        signer_staff_no=facts["reviewer"]["staffNo"],
        report__signed=True,
    ).order_by("-signed_at", "-pk")
    for sig in rows:
        try:
            cert, raw = (
                certs.load_certificate(sig.certificate),
                base64.b64decode(sig.signature, validate=True),
            )
        except (certs.CertificateError, ValueError, binascii.Error):
            continue
        if (
            sig.original_text != text
            or cert.serial != sig.cert_sn
            or not cert.verify(text.encode("utf-8"), raw)
        ):
            continue
        return {
            "reportId": report_id,
            "reportVersion": version,
            "originalText": sig.original_text,
            "originalHash": sig.original_hash,
            "hashAlgorithm": "SM3",
            "signatureAlgorithm": sig.algorithm,
            "signatureValue": sig.signature,
            "certificate": sig.certificate,
            "certSerial": sig.cert_sn,
            "signerName": sig.signer_name,
            "signerStaffNo": sig.signer_staff_no,
            "signedAt": timezone.localtime(sig.signed_at).isoformat(timespec="seconds"),
            "timestampToken": sig.timestamp_token,
            "timestampVerified": sig.timestamp_verified and timestamps.covers(sig.timestamp_token, raw),
            "method": sig.method,
        }
    return None
