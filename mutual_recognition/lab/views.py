"""Pages for lab and ops staff: local reports and their uploads, the drop-folder transfer monitor,
the platform's report lists (1.2.1 5-6) with PDF preview, and external recognised lab results
(1.2.2 3). Thin: reads come from selectors, the one write (re-queue a quarantined pair) from
services."""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from hospital_interop.errors import InvalidInput
from hospital_interop.municipal.specs import resident_id_ok
from hospital_interop.patients import lookup
from mutual_recognition import external as external_results
from mutual_recognition import services as recognition

from . import selectors
from .models import LabReport, LabTransfer, LabTransferLog
from .services import requeue_quarantined

LAB = "hospital_interop.review_lab_reports"
PERMS = (LAB, "hospital_interop.view_uploads")


def staff_only(view):
    """Lab staff (审核检验报告) or ops (上传看板)."""

    @functools.wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not any(request.user.has_perm(p) for p in PERMS):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def lab_only(view):
    """Lab staff only: queries of the platform about any patient (by ID number, external report
    PDFs, the live recognisable-results query) are the lab's, not ops' (least privilege, issue 15)."""

    @functools.wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm(LAB):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def _date(value: str, default: date | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


# --------------------------------------------------------------------------- local reports


ID_NUMBER = re.compile(r"\d{17}[\dXx]|\d{15}")
REPORT_FILTERS = ("q", "status", "start", "end")


@staff_only
@require_http_methods(["GET", "POST"])
def reports(request):
    """Local reports. The search is posted and answered with a redirect to the same search in the
    query, an ID number typed into the search box replaced by the patient's key (``patients.lookup``)."""
    if request.method == "POST":
        data = request.POST.copy()
        if ID_NUMBER.fullmatch(data.get("q", "").strip()):
            data["idNo"], data["q"] = data["q"], ""
        return lookup.redirect_with_patient_key(request.path, data, keep=REPORT_FILTERS)
    f = selectors.ReportFilter(
        q=request.GET.get("q", "").strip(),
        patient_key=lookup.patient_key(request.GET),
        status=request.GET.get("status", ""),
        start=_date(request.GET.get("start", ""), None),
        end=_date(request.GET.get("end", ""), None),
    )
    return render(
        request,
        "lab/reports.html",
        {
            "rows": selectors.search_reports(f),
            "f": f,
            "statuses": LabReport.Status.choices,
            "active": "reports",
        },
    )


@staff_only
@require_GET
def report_detail(request, report_id: str):
    page = selectors.report_page(report_id)
    if page is None:
        raise Http404("报告不存在")
    return render(request, "lab/report_detail.html", {**page, "active": "reports"})


@staff_only
@require_GET
def report_pdf(request, report_id: str, version: int):
    """The PDF of one version: the archived bytes as archived, or a marked preview before archiving."""
    found = selectors.version_pdf(report_id, version)
    if found is None:
        raise Http404("报告版本不存在")
    if found.problem:
        return HttpResponse(found.problem, status=found.status, content_type="text/plain; charset=utf-8")
    response = HttpResponse(found.data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{found.file_name}"'
    return response


# --------------------------------------------------------------------------- transfer monitor


@staff_only
@require_GET
def transfers(request):
    state, q, event = (
        request.GET.get("state", ""),
        request.GET.get("q", "").strip(),
        request.GET.get("event", ""),
    )
    return render(
        request,
        "lab/transfers.html",
        {
            "folder": selectors.folder_summary(),
            "counts": selectors.transfer_counts(),
            "rows": selectors.recent_transfers(state, q),
            "log": selectors.transfer_log(q, event, limit=100),
            "state": state,
            "q": q,
            "event": event,
            "states": LabTransfer.State.choices,
            "events": LabTransferLog.Event.choices,
            "active": "transfers",
            "can_operate": request.user.has_perm("hospital_interop.operate_uploads"),
        },
    )


@staff_only
@require_POST
def requeue(request, pk: int):
    if not (
        request.user.has_perm("hospital_interop.operate_uploads")
        or request.user.has_perm("hospital_interop.review_lab_reports")
    ):
        raise PermissionDenied
    try:
        moved = requeue_quarantined(pk)
        messages.success(request, f"已将 {'、'.join(moved)} 移回投递目录，传输服务将重新处理。")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("lab:transfers")


# --------------------------------------------------------------------------- platform report lists


@staff_only
@never_cache
@require_http_methods(["GET", "POST"])
def platform_reports(request):
    """The platform's report lists (1.2.1 5-6) beside the hospital's own reports. The search is
    posted (a search by ID number sends the patient's name and number to the platform; neither
    goes into a URL), and so are its pages (the pager's buttons post the form again)."""
    form = request.POST
    kind = "id" if (form.get("kind") or request.GET.get("kind")) == "id" else "org"
    today = date.today()
    start = _date(form.get("start", ""), today - timedelta(days=7 if kind == "org" else 180))
    end = _date(form.get("end", ""), today)
    name, id_no = form.get("name", "").strip(), form.get("idNo", "").strip().upper()
    q, origin, has_pdf = form.get("q", "").strip(), form.get("origin", ""), form.get("pdf", "")
    may_search_by_id = request.user.has_perm(LAB)  # ops reconcile the hospital's own list only
    if kind == "id" and not may_search_by_id:
        kind = "org"
    searched = request.method == "POST"
    result, error, page = None, "", None
    if searched:
        if kind == "id" and (not name or not resident_id_ok(id_no)):
            error = "按证件号查询需填写患者姓名和有效的居民身份证号。"
        elif start and end and start > end:
            error = "开始日期不能晚于结束日期。"
        else:
            result = selectors.query_platform(kind, start=start, end=end, name=name, id_no=id_no)
            error = result.error
            rows = selectors.filter_rows(result.rows, q=q, origin=origin, pdf=has_pdf)
            page = Paginator(rows, 20).get_page(form.get("page"))
    return render(
        request,
        "lab/platform_reports.html",
        {
            "kind": kind,
            "start": start,
            "end": end,
            "name": name,
            "id_no": id_no,
            "q": q,
            "origin": origin,
            "pdf": has_pdf,
            "searched": searched,
            "result": result,
            "error": error,
            "page": page,
            "own_org": settings.PLATFORM["ORG_CODE"],
            "may_search_by_id": may_search_by_id,
            "active": "platform",
        },
    )


@lab_only
@never_cache
@require_GET
def platform_pdf(request):
    """3.5 检验报告pdf预览 of any report the platform holds; every view goes to the audit log."""

    org, report_id = request.GET.get("org", "").strip(), request.GET.get("report", "").strip()
    user = request.user
    name = user.get_full_name() or user.get_username()
    try:
        pdf = external_results.lab_report_pdf(org, report_id, doctor_id=user.get_username(), doctor_name=name)
    except InvalidInput:
        return HttpResponse(
            "报告机构代码或报告单号有误。", status=400, content_type="text/plain; charset=utf-8"
        )
    except external_results.PdfUnavailable as exc:
        return HttpResponse(exc.message, status=502, content_type="text/plain; charset=utf-8")
    recognition.record_report_view(
        kind="lab",
        org_code=org,
        report_id=report_id,
        doctor_staff_no=user.get_username(),
        doctor_name=name,
        user=user,
        client_ip=_client_ip(request),
        detail={"source": "lab-platform-reports", "page": request.GET.get("from", "")[:100]},
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{report_id}.pdf"'
    return response


# --------------------------------------------------------------------------- external recognised results


@lab_only
@never_cache
@require_http_methods(["GET", "POST"])
def external(request):
    """Doctors' decisions on external lab results, and the live platform query for one patient.
    A search by patient is posted (name and ID number never go into a URL) and answered directly."""
    today = date.today()
    form = request.POST if request.method == "POST" else request.GET
    decision = form.get("decision", "1")
    by_patient = request.method == "POST"
    f = selectors.ExternalFilter(
        start=_date(form.get("start", ""), today - timedelta(days=30)),
        end=_date(form.get("end", ""), today),
        decision=decision if decision in ("1", "2", "") else "1",
        item=form.get("item", "").strip(),
        id_no=form.get("idNo", "").strip().upper() if by_patient else "",
    )
    name = form.get("name", "").strip() if by_patient else ""
    live_asked = by_patient and bool(form.get("live"))
    live, live_error = [], ""
    if live_asked and name and f.id_no:
        if not resident_id_ok(f.id_no):
            live_error = "请输入有效的居民身份证号。"
        else:
            live, live_error = selectors.recognizable_reports(name, f.id_no)
    return render(
        request,
        "lab/external.html",
        {
            "f": f,
            "name": name,
            "decisions": selectors.external_decisions(f),
            "live": live,
            "live_error": live_error,
            "live_asked": live_asked,
            "active": "external",
        },
    )
