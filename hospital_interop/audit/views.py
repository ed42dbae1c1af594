"""The 审计日志 page of the security officer (安全审计员): filters, pages, CSV export.

Thin: the form parses (an ID number becomes its digest at once), ``selectors.search`` reads, and
each search or export is itself one entry of the trail (who looked at whose accesses)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from hospital_interop import spreadsheets
from hospital_interop.roles import holds

from . import selectors, services
from .forms import TrailFilterForm
from .models import Action

PERMISSION = "audit.view_auditrecord"
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
CSV_HEADER = [
    "序号",
    "时间",
    "主体类型",
    "主体",
    "角色",
    "来源地址",
    "入口",
    "操作",
    "对象类型",
    "对象",
    "患者摘要",
    "变更（前/后，已脱敏）",
    "说明",
    "MAC",
]


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def trail(request):
    if not holds(request.user, PERMISSION):
        raise PermissionDenied
    form = TrailFilterForm(request.POST if request.method == "POST" else None)
    if form.is_bound and not form.is_valid():
        return render(request, "audit/trail.html", {"form": form, "page": None, "carried": {}})
    filt = form.to_filter() if form.is_bound else selectors.TrailFilter()
    if request.POST.get("export") == "csv":
        return _export(filt)
    number = (form.cleaned_data.get("page") if form.is_bound else None) or 1
    # recorded first: the officer's own search is the newest entry of what they see
    services.record(Action.SEARCH, "audit.AuditRecord", patient=filt.patient, detail=_criteria(filt, number))
    page = Paginator(selectors.search(filt), PAGE_SIZE).get_page(number)
    carried = form.carried() if form.is_bound else {}  # the ID number is not shown again: its digest is
    return render(
        request,
        "audit/trail.html",
        {
            "form": TrailFilterForm(initial=carried),
            "carried": carried,
            "page": page,
            "filtered_by_patient": bool(filt.patient),
        },
    )


def _criteria(filt: selectors.TrailFilter, page: int | None = None) -> dict:
    """What the officer searched for, as their own entry records it (the patient is its digest field)."""
    criteria = {k: v for k, v in filt.criteria.items() if k != "patient"}
    return {**({"filter": criteria} if criteria else {}), **({"page": page} if page else {})}


def _export(filt: selectors.TrailFilter) -> StreamingHttpResponse:
    rows = selectors.search(filt)[:EXPORT_LIMIT]
    services.record(Action.EXPORT, "audit.AuditRecord", patient=filt.patient, detail=_criteria(filt))

    rows_out = (
        [
            e.seq,
            timezone.localtime(e.at).strftime("%Y-%m-%d %H:%M:%S"),
            e.get_actor_type_display(),
            e.username,
            e.roles,
            e.ip,
            e.route,
            e.get_action_display(),
            e.object_type,
            e.object_id,
            e.patient,
            json.dumps(e.changes, ensure_ascii=False) if e.changes else "",
            json.dumps(e.detail, ensure_ascii=False) if e.detail else "",
            e.mac,
        ]
        for e in rows.iterator(chunk_size=2000)
    )
    return spreadsheets.csv_download("audit", CSV_HEADER, rows_out)
