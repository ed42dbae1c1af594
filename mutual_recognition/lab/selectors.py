"""Reads of the lab report flow: report status, transfer monitor, platform report lists (1.2.1 5-6)
compared with the hospital's own reports, and external recognised lab results (1.2.2 3).

Reads that show a patient's data (a report, its PDF, a report list, the platform's lists, the
live external query) are audited here, one ``audit.record`` each, not in the views."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from esign.models import ReviewReport
from esign.selectors import signature_payload
from hospital_interop.audit import services as audit
from hospital_interop.municipal.client import Outcome
from hospital_interop.municipal.gm import sm3_hex
from hospital_interop.patients import facts as shared
from hospital_interop.uploads.models import OutboxRecord
from mutual_recognition.external import platform_client
from mutual_recognition.models import Decision, id_key

from . import index, payloads, pdf
from .conf import TransferConfig
from .models import LabArchivedPdf, LabReport, LabReportVersion, LabTransfer, LabTransferLog

T = LabTransfer.State
HEAVY = ("pdf_record__payload", "detail_record__payload")  # the PDF travels Base64 in the payload


# --------------------------------------------------------------------------- report status


def _record(r: OutboxRecord | None) -> dict | None:
    if r is None:
        return None
    return {
        "id": r.pk,
        "interface": r.interface,
        "version": r.version,
        "state": r.state,
        "stateName": r.get_state_display(),
        "code": r.last_code,
        "message": r.last_message,
        "receipt": r.receipt,
        "acceptedAt": r.accepted_at.isoformat() if r.accepted_at else None,
    }


def transfer_dict(t: LabTransfer) -> dict:
    return {
        "id": t.pk,
        "stem": t.stem,
        "reportVersion": t.report_version,
        "state": t.state,
        "stateName": t.get_state_display(),
        "reason": t.reason,
        "disposition": t.disposition,
        "discoveredAt": t.discovered_at.isoformat(),
        "acceptedAt": t.accepted_at.isoformat() if t.accepted_at else None,
        "clearedAt": t.cleared_at.isoformat() if t.cleared_at else None,
        "pdfUpload": _record(t.pdf_record),
        "detailUpload": _record(t.detail_record),
    }


def report_status(report_id: str) -> dict | None:
    report = LabReport.objects.filter(report_id=report_id).first()
    if report is None:
        return None
    transfers = (
        LabTransfer.objects.filter(report_id=report_id)
        .select_related("pdf_record", "detail_record")
        .defer(*HEAVY)
    )
    return {
        "reportId": report.report_id,
        "version": report.version,
        "status": report.status,
        "approvedAt": report.approved_at.isoformat(),
        "archivedAt": report.archived_at.isoformat() if report.archived_at else None,
        "versions": [
            {
                "version": v.version,
                "approvedAt": v.approved_at.isoformat(),
                "archivedAt": v.archived_at.isoformat() if v.archived_at else None,
                "pdfFile": v.pdf_file,
                "pdfSm3": v.pdf_sm3,
                "signed": v.signed,
            }
            for v in report.versions.order_by("-version")
        ],
        "transfers": [transfer_dict(t) for t in transfers],
    }


@dataclass(frozen=True)
class VersionPdf:
    """A version's PDF for the page: ``data`` (archived bytes or a preview) or ``problem``."""

    data: bytes = b""
    file_name: str = ""
    preview: bool = False
    problem: str = ""  # Chinese; set when there is nothing to show
    status: int = 200  # 410: archived bytes not kept; 409: no preview under the current dictionaries


def version_pdf(report_id: str, version: int) -> VersionPdf | None:
    """An archived version: exactly the bytes archived (their SM3 is the version's ``pdf_sm3``),
    never rendered again. A version not archived yet: a preview, marked so, without signature.
    None when the report or the version does not exist."""
    v = (
        LabReportVersion.objects.select_related("report")
        .filter(report__report_id=report_id, version=version)
        .first()
    )
    if v is None:
        return None
    audit.record(
        audit.Action.VIEW,
        "lab.LabReportVersion",
        f"{report_id}/v{version}",
        patient=v.report.patient_key,
        detail={"what": "检验报告 PDF"},
    )
    if v.archived_at:
        kept = LabArchivedPdf.objects.filter(version=v).first()
        data = bytes(kept.data) if kept is not None else b""
        if not data or sm3_hex(data) != v.pdf_sm3:
            return VersionPdf(
                problem=f"报告 {report_id} 第 {version} 版已归档，但本系统没有与归档摘要一致的 PDF 原件"
                f"（归档文件名 {v.pdf_file}），不能重新生成。请在归档目录中查看该文件"
                f"（加密保存为 {v.pdf_file}.sm4，用 manage.py open_sealed_file 解密）。",
                status=410,
            )
        return VersionPdf(data=data, file_name=v.pdf_file or f"{index.stem_for(report_id, version)}.pdf")
    mapped = payloads.map_content(v.content)
    if mapped.errors:
        return VersionPdf(
            problem="报告内容无法按当前字典生成预览：" + "；".join(e["message"] for e in mapped.errors[:3]),
            status=409,
        )
    return VersionPdf(
        data=pdf.render(mapped, preview=True),
        preview=True,
        file_name=f"{index.stem_for(report_id, version)}_preview.pdf",
    )


def report_page(report_id: str) -> dict | None:
    """A local report for its page: versions, the current content mapped, its transfers and log."""
    report = LabReport.objects.filter(report_id=report_id).first()
    if report is None:
        return None
    versions = list(report.versions.order_by("-version"))
    current = versions[0] if versions else None
    audit.record(audit.Action.VIEW, "lab.LabReport", report_id, patient=report.patient_key)
    return {
        "report": report,
        "versions": versions,
        "current": current,
        "mapped": payloads.map_content(current.content) if current else None,
        "transfers": LabTransfer.objects.filter(report_id=report_id)
        .select_related("pdf_record", "detail_record")
        .defer(*HEAVY),
        "log": LabTransferLog.objects.filter(report_id=report_id).order_by("-at", "-id")[:100],
    }


@dataclass
class ReportFilter:
    q: str = ""  # report number, title or visit number
    patient_key: str = ""  # patients.models.id_key of the ID number searched for
    status: str = ""
    start: date | None = None
    end: date | None = None


def search_reports(f: ReportFilter, limit: int = 100) -> list[dict]:
    qs = LabReport.objects.all()
    q = f.q.strip()
    if q:
        qs = qs.filter(Q(report_id__icontains=q) | Q(visit_id=q) | Q(title__icontains=q))
    if f.patient_key:
        qs = qs.filter(patient_key=f.patient_key)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.start:
        qs = qs.filter(reported_at__gte=_day_start(f.start))
    if f.end:
        qs = qs.filter(reported_at__lt=_day_start(f.end + timedelta(days=1)))
    reports = list(qs.order_by("-reported_at", "-id")[:limit])
    latest = {}
    for t in (
        LabTransfer.objects.filter(report_id__in=[r.report_id for r in reports])
        .exclude(state=T.SUPERSEDED)
        .select_related("pdf_record", "detail_record")
        .defer(*HEAVY)
        .order_by("report_id", "report_version", "discovered_at")
    ):
        latest[t.report_id] = t
    audit.record(
        audit.Action.SEARCH,
        "lab.LabReport",
        patient=f.patient_key,
        detail={"q": q, "status": f.status, "found": len(reports)},
    )
    return [{"report": r, "transfer": latest.get(r.report_id)} for r in reports]


# --------------------------------------------------------------------------- transfer monitor


def folder_summary(cfg: TransferConfig | None = None) -> dict:
    cfg = cfg or TransferConfig.from_settings()
    pdfs = indexes = others = 0
    oldest = None
    try:
        for entry in os.scandir(cfg.drop_dir):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if entry.name.endswith(index.PDF_EXT):
                pdfs += 1
            elif entry.name.endswith(index.INDEX_EXT):
                indexes += 1
            else:
                others += 1
            mtime = entry.stat().st_mtime
            oldest = mtime if oldest is None else min(oldest, mtime)
    except FileNotFoundError:
        pass
    quarantined = 0
    try:
        quarantined = sum(1 for e in os.scandir(cfg.quarantine_dir) if e.is_dir())
    except FileNotFoundError:
        pass
    return {
        "drop_dir": cfg.drop_dir,
        "archive_dir": cfg.archive_dir,
        "quarantine_dir": cfg.quarantine_dir,
        "pdfs": pdfs,
        "indexes": indexes,
        "others": others,
        "quarantine_folders": quarantined,
        "oldest": datetime.fromtimestamp(oldest, tz=timezone.get_current_timezone()) if oldest else None,
    }


def transfer_counts() -> dict:
    today = _day_start(timezone.localdate())
    by_state = dict(LabTransfer.objects.values_list("state").annotate(n=Count("id")))
    return {
        "enqueued": by_state.get(T.ENQUEUED, 0) + by_state.get(T.DISCOVERED, 0),
        "accepted_today": LabTransfer.objects.filter(accepted_at__gte=today).count(),
        "cleared_today": LabTransfer.objects.filter(cleared_at__gte=today).count(),
        "quarantined": by_state.get(T.QUARANTINED, 0),
        "attention": LabTransfer.objects.filter(state=T.ENQUEUED)
        .filter(Q(pdf_record__state="attention") | Q(detail_record__state="attention"))
        .count(),
    }


def recent_transfers(state: str = "", q: str = "", limit: int = 100) -> list[LabTransfer]:
    qs = LabTransfer.objects.select_related("pdf_record", "detail_record").defer(*HEAVY)
    if state:
        qs = qs.filter(state=state)
    if q:
        qs = qs.filter(Q(report_id__icontains=q) | Q(stem__icontains=q))
    return list(qs.order_by("-discovered_at", "-id")[:limit])


def transfer_log(q: str = "", event: str = "", limit: int = 200) -> list[LabTransferLog]:
    qs = LabTransferLog.objects.all()
    if q:
        qs = qs.filter(Q(report_id__icontains=q) | Q(file_name__icontains=q))
    if event:
        qs = qs.filter(event=event)
    return list(qs.order_by("-at", "-id")[:limit])


# --------------------------------------------------------------------------- platform report lists


@dataclass
class PlatformList:
    rows: list[dict] = field(default_factory=list)
    total: int = 0
    error: str = ""
    truncated: bool = False
    missing: list[dict] = field(default_factory=list)  # own reports the platform does not hold


PAGE_SIZE_PLATFORM = 200
MAX_PAGES = 50


def _d8(d: date | None) -> str:
    return d.strftime("%Y%m%d") if d else ""


def _day_start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min))


def query_platform(
    kind: str,
    *,
    start: date | None,
    end: date | None,
    name: str = "",
    id_no: str = "",
    id_type: str = "01",
    client=None,
) -> PlatformList:
    """Every row of LAB_REPORT_LIST_BY_ORG (kind "org") or _BY_ID ("id"), page by page, with the
    hospital's own reports in the same range marked when the platform does not hold them. Audited:
    both lists show patients (by ID number: one patient's)."""
    code = "LAB_REPORT_LIST_BY_ORG" if kind == "org" else "LAB_REPORT_LIST_BY_ID"
    out = _query_platform(code, kind, start, end, name, id_no, id_type, client or platform_client())
    audit.record(
        audit.Action.SEARCH,
        f"platform.{code}",
        patient=id_key(id_type, id_no) if kind == "id" and id_no else "",
        detail={"start": _d8(start), "end": _d8(end), "found": len(out.rows), "failed": bool(out.error)},
    )
    return out


def _query_platform(code, kind, start, end, name, id_no, id_type, client) -> PlatformList:
    facts = {
        **shared.org_facts(),
        "startDate": _d8(start),
        "endDate": _d8(end),
        "pageSize": PAGE_SIZE_PLATFORM,
    }
    if kind == "id":
        facts["patient"] = {"name": name, "idTypeCode": id_type, "idNo": id_no}
    out = PlatformList()
    for page_no in range(1, MAX_PAGES + 1):
        payload = payloads.build(payloads.spec(code).request.fields, {**facts, "pageNo": page_no})
        problems = payloads.spec(code).validate(payload)
        if problems:
            out.error = "查询条件有误：" + "；".join(p["message"] for p in problems[:3])
            return out
        result = client.call(code, payload)
        if result.outcome != Outcome.ACCEPTED:
            out.error = f"市平台查询失败（{result.code or '网络'}）：{result.message}"
            return out
        data = result.data or {}
        rows = data.get("reports") or []
        out.rows += rows
        out.total = int(data.get("total") or len(out.rows))
        if len(out.rows) >= out.total or not rows:
            break
    else:
        out.truncated = True
    own_org = settings.PLATFORM["ORG_CODE"]
    held = {r.get("reportId") for r in out.rows if r.get("orgCode") == own_org}
    reports = LabReport.objects.all()
    if start:
        reports = reports.filter(reported_at__gte=_day_start(start))
    if end:
        reports = reports.filter(reported_at__lt=_day_start(end + timedelta(days=1)))
    if kind == "id":
        reports = reports.filter(patient_key=id_key(id_type, id_no))
    local = {r.report_id: r for r in reports}
    transfers = {}
    for t in (
        LabTransfer.objects.filter(report_id__in=list(local))
        .exclude(state=T.SUPERSEDED)
        .order_by("report_id", "report_version", "discovered_at")
    ):
        transfers[t.report_id] = t
    for r in out.rows:
        r["own"] = r.get("orgCode") == own_org
        mine = local.get(r.get("reportId")) if r["own"] else None
        r["localVersion"] = mine.version if mine else None
        r["reportDateDisplay"] = _fmt14(r.get("reportDateTime", ""))
        r["uploadDateDisplay"] = _fmt14(r.get("uploadDateTime", ""))
    if not out.truncated:
        for report_id, report in sorted(local.items(), key=lambda kv: kv[1].reported_at, reverse=True):
            if report_id not in held:
                out.missing.append({"report": report, "transfer": transfers.get(report_id)})
    return out


def _fmt14(s: str) -> str:
    s = str(s or "")
    return (
        f"{s[:4]}-{s[4:6]}-{s[6:8]} {s[8:10]}:{s[10:12]}"
        if len(s) >= 12 and (s[:12].isascii() and s[:12].isdigit())
        else s
    )


def filter_rows(rows: list[dict], *, q: str = "", origin: str = "", pdf: str = "") -> list[dict]:
    out = rows
    if q:
        out = [
            r
            for r in out
            if q in r.get("reportId", "")
            or q in r.get("patientName", "")
            or q in r.get("reportTitle", "")
            or q in r.get("orgName", "")
        ]
    if origin == "own":
        out = [r for r in out if r.get("own")]
    elif origin == "external":
        out = [r for r in out if not r.get("own")]
    if pdf in ("yes", "no"):
        out = [r for r in out if bool(r.get("hasPdf")) == (pdf == "yes")]
    return out


# --------------------------------------------------------------------------- external lab results


@dataclass
class ExternalFilter:
    start: date | None = None
    end: date | None = None
    decision: str = "1"  # "1" recognised, "2" refused, "" both
    item: str = ""
    id_no: str = ""


def external_decisions(f: ExternalFilter, limit: int = 200):
    """Doctors' decisions on external lab results (the recognised ones by default); audited."""
    qs = Decision.objects.select_related("encounter").filter(kind="lab", current=True)
    if f.decision:
        qs = qs.filter(decision=f.decision)
    if f.start:
        qs = qs.filter(decided_at__gte=_day_start(f.start))
    if f.end:
        qs = qs.filter(decided_at__lt=_day_start(f.end + timedelta(days=1)))
    if f.item:
        qs = qs.filter(
            Q(standard_code__iexact=f.item)
            | Q(standard_name__icontains=f.item)
            | Q(sub_item_code__iexact=f.item)
        )
    if f.id_no:
        qs = qs.filter(encounter__id_key=id_key("01", f.id_no))
    decisions = list(qs.order_by("-decided_at", "id")[:limit])
    audit.record(
        audit.Action.SEARCH,
        "mutual_recognition.Decision",
        patient=id_key("01", f.id_no) if f.id_no else "",
        detail={"what": "外院检验互认结果", "decision": f.decision, "item": f.item, "found": len(decisions)},
    )
    return decisions


def recognizable_reports(name: str, id_no: str, id_type: str = "01", client=None) -> tuple[list[dict], str]:
    """3.1: the patient's external lab reports with recognisable items, live from the platform; audited."""
    reports, error = _recognizable_reports(name, id_no, id_type, client)
    audit.record(
        audit.Action.SEARCH,
        "platform.LAB_RECOGNIZABLE_ITEMS",
        patient=id_key(id_type, id_no),
        detail={"found": len(reports), "failed": bool(error)},
    )
    return reports, error


def _recognizable_reports(name: str, id_no: str, id_type: str, client) -> tuple[list[dict], str]:
    code = "LAB_RECOGNIZABLE_ITEMS"
    payload = payloads.build(
        payloads.spec(code).request.fields,
        {**shared.org_facts(), "patient": {"name": name, "idTypeCode": id_type, "idNo": id_no}},
    )
    problems = payloads.spec(code).validate(payload)
    if problems:
        return [], "查询条件有误：" + "；".join(p["message"] for p in problems[:3])
    result = (client or platform_client()).call(code, payload)
    if result.outcome != Outcome.ACCEPTED:
        return [], f"市平台查询失败（{result.code or '网络'}）：{result.message}"
    reports = (result.data or {}).get("reports") or []
    for r in reports:
        r["reportDateDisplay"] = _fmt14(r.get("reportDateTime", ""))
        r["sampleDateDisplay"] = _fmt14(r.get("sampleDateTime", ""))
    return reports, ""


def review_status(report_id: str, version: int) -> dict | None:
    """A version submitted for review, as the LIS polls it: the review's state, its signature
    (value, certificate, timestamp: what the LIS's screen shows) and the upload's state."""
    review = (
        ReviewReport.objects.select_related("lab_version__report")
        .filter(report_id=report_id, report_version=version, lab_version__isnull=False)
        .first()
    )
    if review is None:
        return None
    sig = review.signatures.order_by("-signed_at", "-pk").first() if review.signed else None
    v = review.lab_version
    transfers = LabTransfer.objects.filter(report_id=report_id, report_version=version).select_related(
        "pdf_record", "detail_record"
    )
    return {
        "reportId": report_id,
        "version": version,
        "module": review.module,
        "moduleName": review.get_module_display(),
        "reviewStatus": review.status,
        "reviewStatusName": review.get_status_display(),
        "reviewer": {"staffNo": review.reviewer_staff_no, "name": review.reviewer_name},
        "reviewerCandidates": review.reviewer_candidates,
        "reviewedAt": review.reviewed_at.isoformat() if review.reviewed_at else None,
        "reviewNote": review.review_note,
        "signed": bool(sig),
        "signature": signature_payload(sig) if sig else None,
        "upload": {
            "current": v.report.version == version,
            "archivedAt": v.archived_at.isoformat() if v.archived_at else None,
            "pdfSm3": v.pdf_sm3,
            "signedPdf": v.signed,
            "transfers": [transfer_dict(t) for t in transfers.defer(*HEAVY)],
        },
    }
