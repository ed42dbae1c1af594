"""Reads of the e-signature app. Nothing here changes a report or talks to the CA; the reads
that show patients (a module's report lists, a report under review) are audited."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.roles import ROLE_BY_CODE

from . import sealing
from .models import ReportSignature, ReviewReport, SignerProfile, SigningSession, SystemParameter
from .parameters import BY_KEY, PARAMETERS


def parameter(key: str) -> str:
    """The clear value of a unified-code-table parameter, or its default."""
    spec = BY_KEY[key]
    row = SystemParameter.objects.filter(key=key).first()
    if row is None:
        return spec.default
    return sealing.unseal(row.value) if spec.secret else row.value


def ca_enabled() -> bool:
    return parameter("CA_ENABLED") == "1"


def parameters_for_display() -> list[dict]:
    rows = {r.key: r for r in SystemParameter.objects.all()}
    out = []
    for spec in PARAMETERS:
        row = rows.get(spec.key)
        value = parameter(spec.key)
        out.append(
            {
                "key": spec.key,
                "label": spec.label,
                "description": spec.description,
                "secret": spec.secret,
                "value": value if not spec.secret else "",
                "shown": sealing.mask(value) if spec.secret else value,
                "is_set": bool(value),
                "updated_at": row.updated_at if row else None,
                "updated_by": row.updated_by if row else "",
            }
        )
    return out


def profile_for(user) -> SignerProfile | None:
    if not user.is_authenticated:
        return None
    return SignerProfile.objects.filter(user=user).first()


def person_ca_enabled(user) -> bool:
    """CA applies to a person unless staff management switched it off for them."""
    profile = profile_for(user)
    return profile is None or profile.ca_enabled


def active_sessions(user):
    return SigningSession.objects.filter(user=user, ended_at__isnull=True, expires_at__gt=timezone.now())


def active_session(user, workstation_id: str) -> SigningSession | None:
    """The user's signing session usable on this workstation (UKey preferred, then QR)."""
    sessions = list(active_sessions(user).filter(workstation_id=workstation_id).order_by("-started_at"))
    sessions.sort(key=lambda s: s.kind != SigningSession.Kind.UKEY)
    return sessions[0] if sessions else None


def module_counts() -> list[dict]:
    counts = {
        r["module"]: r
        for r in ReviewReport.objects.values("module").annotate(
            pending=Count(
                "id", filter=Q(status__in=[ReviewReport.Status.PENDING, ReviewReport.Status.SIGNING])
            ),
            approved=Count("id", filter=Q(status=ReviewReport.Status.APPROVED)),
        )
    }
    return [
        {
            "code": code,
            "name": name,
            "pending": counts.get(code, {}).get("pending", 0),
            "approved": counts.get(code, {}).get("approved", 0),
        }
        for code, name in ReviewReport.Module.choices
    ]


def reports_for_module(module: str, status: str = "pending", limit: int = 200):
    qs = ReviewReport.objects.filter(module=module).select_related("reviewer")
    if status == "pending":
        qs = qs.filter(status__in=[ReviewReport.Status.PENDING, ReviewReport.Status.SIGNING])
    elif status == "approved":
        qs = qs.filter(status=ReviewReport.Status.APPROVED).order_by("-reviewed_at")
    return list(qs[:limit])


def module_reports(module: str) -> dict:
    """A review module's page: the reports waiting and the latest approved (one audited read)."""
    pending, approved = (
        reports_for_module(module, "pending"),
        reports_for_module(module, "approved", limit=20),
    )
    audit.record(
        audit.Action.SEARCH,
        "esign.ReviewReport",
        detail={"module": module, "pending": len(pending), "approved": len(approved)},
    )
    return {"pending": pending, "approved": approved}


def patient_key(report: ReviewReport) -> str:
    """The patient key of the lab report under review ("" for a demo report bound to no lab version)."""
    return report.lab_version.report.patient_key if report.lab_version_id else ""


def report_for_review(pk: int) -> ReviewReport | None:
    """A report under review, for its page (patient, results): each view is audited."""
    report = ReviewReport.objects.select_related("lab_version__report").filter(pk=pk).first()
    if report is not None:
        audit.record(
            audit.Action.VIEW,
            "esign.ReviewReport",
            pk,
            patient=patient_key(report),
            detail={"report": report.report_id, "version": report.report_version},
        )
    return report


def latest_signature(report: ReviewReport) -> ReportSignature | None:
    return report.signatures.order_by("-signed_at", "-pk").first()


def lab_staff():
    """Users of the lab role (and anyone with a signer profile), with their CA settings."""
    lab = Group.objects.filter(name=ROLE_BY_CODE["lab"].name).first()
    users = (
        get_user_model()
        .objects.filter(Q(groups=lab) | Q(signer__isnull=False))
        .distinct()
        .select_related("signer")
        .order_by("username")
    )
    return list(users)


def signature_payload(sig: ReportSignature) -> dict:
    """A stored signature as the signing service hands it to the LIS (the embedded page's
    postMessage and ``GET /api/lab/v1/reviews/{reportId}/{version}``)."""
    return {
        "id": sig.pk,
        "reportId": sig.report_number,
        "reportVersion": sig.report_version,
        "signerName": sig.signer_name,
        "signerStaffNo": sig.signer_staff_no,
        "method": sig.method,
        "algorithm": sig.algorithm,
        "originalHash": sig.original_hash,
        "originalText": sig.original_text,
        "signatureValue": sig.signature,
        "certificate": sig.certificate,
        "certSerial": sig.cert_sn,
        "signedAt": timezone.localtime(sig.signed_at).isoformat(timespec="seconds"),
        "timestampToken": sig.timestamp_token,
        "timestampTime": (
            timezone.localtime(sig.timestamp_time).isoformat(timespec="seconds")
            if sig.timestamp_time
            else None
        ),
        "timestampVerified": sig.timestamp_verified,
    }
