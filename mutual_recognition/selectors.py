"""Reads of mutual recognition: recognised results, statistics, the audit log.

Reads that show a patient's data are audited here, in the selector the page or API calls (one
``audit.record`` each), so the pages and APIs stay free to parse their input as they like."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from hospital_interop.audit import services as audit

from .models import AuditEntry, Decision, Encounter

RECOGNIZED = Q(decision=Decision.Value.RECOGNIZED)
REFUSED = Q(decision=Decision.Value.REFUSED)


# --------------------------------------------------------------------------- recognised results


def result_row(d: Decision, charge_codes: dict[str, str] | None = None) -> dict:
    """One decision as the exam and lab systems receive it (requirements 1.3 6, 1.4 7)."""
    row = {
        "visitId": d.encounter.visit_id,
        "orderId": d.order_id,
        "kind": d.kind,
        "recognitionStatus": "recognized" if d.recognized else "refused",
        "recognitionMark": "HR" if d.recognized else "",
        "orderItemCode": d.order_item_code,
        "orderItemName": d.order_item_name,
        "subItemCode": d.sub_item_code,
        "subItemName": d.sub_item_name,
        "standardCode": d.standard_code,
        "standardName": d.standard_name,
        "externalOrgCode": d.external_org_code,
        "externalOrgName": d.external_org_name,
        "externalReportId": d.external_report_id,
        "externalDateTime": d.external_at.isoformat() if d.external_at else "",
        "validUntil": d.valid_until.isoformat() if d.valid_until else "",
        "deptCode": d.dept_code,
        "deptName": d.dept_name,
        "standardDeptCode": d.std_dept_code,
        "standardDeptName": d.std_dept_name,
        "doctorId": d.doctor_staff_no,
        "doctorName": d.doctor_name,
        "decidedAt": d.decided_at.isoformat(),
        "chargeAvoided": str(d.charge_avoided),
    }
    if d.kind == "lab":
        r = d.result
        row.update(
            resultValue=r.get("value", ""),
            unit=r.get("unit", ""),
            referenceRange=r.get("range", ""),
            abnormalFlagCode=r.get("flag", ""),
            chargeItemCode=(charge_codes or {}).get(d.sub_item_code, ""),
        )
    else:
        r = d.result
        row.update(
            findings=r.get("findings", ""),
            impression=r.get("impression", ""),
            resultName=r.get("resultName", ""),
            studyInstanceUid=r.get("studyUid", ""),
        )
    if not d.recognized:
        row.update(
            refusalReasonCode=d.platform_reason_code, refusalReasonName=d.reason_name, refusalNote=d.note
        )
    return row


def current_visit(staff_no: str, *, patient_key: str = "", visit_id: str = "") -> bool:
    """Whether the patient (or the visit) is in a current visit of this doctor: an encounter the HIS
    registered with them as 接诊医师 within ``RECOGNITION_CURRENT_VISIT_HOURS``. Their own patient
    needs no stated reason to be looked up."""
    if not staff_no or not (patient_key or visit_id):
        return False
    since = timezone.now() - timedelta(hours=settings.RECOGNITION_CURRENT_VISIT_HOURS)
    qs = Encounter.objects.filter(doctor_staff_no=staff_no, updated_at__gte=since)
    qs = qs.filter(id_key=patient_key) if patient_key else qs.filter(visit_id=visit_id)
    return qs.exists()


def decisions_for(
    *,
    visit_id: str = "",
    patient_key: str = "",
    kind: str = "",
    recognized_only: bool = False,
    reason: dict | None = None,
) -> list[Decision]:
    """Current decisions of a visit and/or a patient (``patient_key``: ``patients.models.id_key``).
    ``reason``: why a staff member looked (``patients.lookup.reason_from``), kept in the audit entry."""
    qs = Decision.objects.select_related("encounter").filter(current=True)
    if visit_id:
        qs = qs.filter(encounter__visit_id=visit_id)
    if patient_key:
        qs = qs.filter(encounter__id_key=patient_key)
    if kind:
        qs = qs.filter(kind=kind)
    if recognized_only:
        qs = qs.filter(RECOGNIZED)
    decisions = list(qs.order_by("-decided_at", "order_id", "standard_code")[:500])
    audit.record(
        audit.Action.SEARCH,
        "mutual_recognition.Decision",
        visit_id,
        patient=patient_key or _visit_patient(visit_id, decisions),
        detail={
            "by": "patient" if patient_key else "visitId",
            "kind": kind,
            "found": len(decisions),
            **(reason or {}),
        },
    )
    return decisions


def _visit_patient(visit_id: str, decisions: list[Decision]) -> str:
    if decisions:
        return decisions[0].encounter.id_key
    return Encounter.objects.filter(visit_id=visit_id).values_list("id_key", flat=True).first() or ""


def visit_decisions(visit_id: str) -> tuple[Encounter | None, list[Decision]]:
    """A visit and its current decisions, oldest first (the HIS reads back what was decided)."""
    enc = Encounter.objects.filter(visit_id=visit_id).first()
    if enc is None:
        return None, []
    decisions = list(enc.decisions.filter(current=True).order_by("decided_at", "id"))
    audit.record(
        audit.Action.VIEW,
        "mutual_recognition.Encounter",
        enc.pk,
        patient=enc.id_key,
        detail={"what": "互认决定回读", "visit": visit_id, "found": len(decisions)},
    )
    return enc, decisions


def charge_codes() -> dict[str, str]:
    from dictionaries.models import LabSubItem

    return dict(LabSubItem.objects.exclude(charge_item=None).values_list("code", "charge_item__code"))


# --------------------------------------------------------------------------- statistics


@dataclass
class StatsFilter:
    start: date
    end: date
    kind: str = ""
    dept: str = ""

    @classmethod
    def last_days(cls, days: int = 30, today: date | None = None) -> StatsFilter:
        today = today or date.today()
        return cls(today - timedelta(days=days - 1), today)


def _rate(rec: int, ref: int) -> float | None:
    return round(100.0 * rec / (rec + ref), 1) if rec + ref else None


def _grouped(qs, fields: tuple[str, ...], order: str = "-total") -> list[dict]:
    rows = (
        qs.values(*fields)
        .annotate(
            recognized=Count("id", filter=RECOGNIZED),
            refused=Count("id", filter=REFUSED),
            total=Count("id"),
            charge=Sum("charge_avoided"),
        )
        .order_by(order, *fields)
    )
    out = []
    for r in rows:
        r["rate"] = _rate(r["recognized"], r["refused"])
        r["charge"] = r["charge"] or Decimal(0)
        out.append(r)
    return out


def statistics(f: StatsFilter) -> dict:
    qs = Decision.objects.filter(current=True, decided_at__date__gte=f.start, decided_at__date__lte=f.end)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.dept:
        qs = qs.filter(dept_code=f.dept)
    totals = qs.aggregate(
        recognized=Count("id", filter=RECOGNIZED),
        refused=Count("id", filter=REFUSED),
        charge=Sum("charge_avoided"),
        patients=Count("encounter__id_key", distinct=True),
    )
    totals["charge"] = totals["charge"] or Decimal(0)
    totals["total"] = totals["recognized"] + totals["refused"]
    totals["rate"] = _rate(totals["recognized"], totals["refused"])
    span = (f.end - f.start).days + 1
    trunc, label = (
        (TruncDate, "%m-%d")
        if span <= 45
        else ((TruncWeek, "%m-%d周") if span <= 200 else (TruncMonth, "%Y-%m"))
    )
    periods = {
        r["period"]: r
        for r in qs.annotate(period=trunc("decided_at"))
        .values("period")
        .annotate(recognized=Count("id", filter=RECOGNIZED), refused=Count("id", filter=REFUSED))
        .order_by("period")
    }
    series = []
    if trunc is TruncDate:
        for i in range(span):
            day = f.start + timedelta(days=i)
            r = periods.get(day, {"recognized": 0, "refused": 0})
            series.append(
                {"label": day.strftime(label), "recognized": r["recognized"], "refused": r["refused"]}
            )
    else:
        for period, r in periods.items():
            p = period.date() if hasattr(period, "date") else period
            series.append(
                {"label": p.strftime(label), "recognized": r["recognized"], "refused": r["refused"]}
            )
    reasons = list(
        qs.filter(REFUSED)
        .values("platform_reason_code", "reason_name")
        .annotate(n=Count("id"))
        .order_by("-n", "platform_reason_code")
    )
    refused_total = sum(r["n"] for r in reasons) or 1
    for r in reasons:
        r["share"] = round(100.0 * r["n"] / refused_total, 1)
    return {
        "totals": totals,
        "series": series,
        "by_dept": _grouped(qs, ("dept_code", "dept_name", "std_dept_name")),
        "by_doctor": _grouped(qs, ("doctor_staff_no", "doctor_name", "dept_name")),
        "by_item": _grouped(qs, ("kind", "standard_code", "standard_name")),
        "reasons": reasons,
    }


# --------------------------------------------------------------------------- audit log


@dataclass
class AuditFilter:
    start: date | None = None
    end: date | None = None
    action: str = ""
    doctor: str = ""
    patient_key: str = ""  # patients.models.id_key of the ID number searched for
    report_id: str = ""
    visit_id: str = ""


def search_audit(f: AuditFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[AuditEntry], int]:
    qs = AuditEntry.objects.all()
    if f.start:
        qs = qs.filter(at__date__gte=f.start)
    if f.end:
        qs = qs.filter(at__date__lte=f.end)
    if f.action:
        qs = qs.filter(action=f.action)
    if f.doctor:
        qs = qs.filter(Q(doctor_staff_no=f.doctor) | Q(doctor_name=f.doctor))
    if f.patient_key:
        qs = qs.filter(patient_key=f.patient_key)
    if f.report_id:
        qs = qs.filter(report_id=f.report_id.strip())
    if f.visit_id:
        qs = qs.filter(visit_id=f.visit_id.strip())
    total = qs.count()
    entries = list(qs.order_by("-at", "-id")[offset : offset + limit])
    audit.record(
        audit.Action.SEARCH,
        "mutual_recognition.AuditEntry",
        patient=f.patient_key,
        detail={"filter": _audit_criteria(f), "offset": offset, "found": total},
    )
    return entries, total


def _audit_criteria(f: AuditFilter) -> dict:
    """The search as the trail records it: the ID number only as the entry's patient digest."""
    return {k: str(v) for k, v in f.__dict__.items() if v and k != "patient_key"}
