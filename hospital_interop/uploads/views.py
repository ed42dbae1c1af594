"""Ops pages: the delivery dashboard, the record browser and a record's detail. Thin: forms parse,
selectors read, services write."""

import json
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from hospital_interop import spreadsheets
from hospital_interop.charts import bar_chart
from hospital_interop.params import page_number, row_ids
from hospital_interop.patients.services import PatientConflict
from hospital_interop.quality import selectors as quality
from hospital_interop.redirects import safe_next
from hospital_interop.security.metrics_access import metrics_access

from . import selectors, services
from .forms import CancelForm, PayloadFixForm, RecordFilterForm, patient_digest
from .models import OutboxRecord, State

VIEW = "hospital_interop.view_uploads"
OPERATE = "hospital_interop.operate_uploads"
EXPORT_LIMIT = 100_000


@permission_required(VIEW, raise_exception=True)
def dashboard(request):
    rows = selectors.interface_summary()
    hours = 1 if request.GET.get("range") == "1h" else 24
    series = selectors.throughput(hours=hours)
    chart = bar_chart(
        series,
        keys=(("accepted", "平台接收", "#1d8a4a"), ("failed", "失败尝试", "#c0392b")),
        label_format=lambda r: timezone.localtime(r["at"]).strftime("%H:%M"),
        title="上传吞吐",
    )
    return render(
        request,
        "uploads/dashboard.html",
        {
            "rows": rows,
            "total": selectors.totals(rows),
            "chart": chart,
            "hours": hours,
            "errors": selectors.error_breakdown(),
            "states": State,
            "qc": quality.counts(),
            "sweep": selectors.sweep_status(),
        },
    )


def _cursor(token: str):
    try:
        at, pk = token.rsplit("_", 1)
        return datetime.fromisoformat(at), int(pk)
    except ValueError:
        return None


def _hide_patient_id(request):
    """Redirect a search by ID number to the same search by its digest (IDs stay out of URLs). The
    filter form is posted, so the number is in no URL at all; a GET naming one is redirected too."""
    data = request.POST if request.method == "POST" else request.GET
    id_number = data.get("patient_id", "").strip().upper()
    if not id_number and request.method != "POST":
        return None
    query = data.copy()
    query.pop("patient_id", None)
    query.pop("csrfmiddlewaretoken", None)
    id_type = query.pop("patient_id_type", [""])[0]
    if id_number:
        query["patient"] = patient_digest(id_type, id_number)
    return redirect(f"{request.path}?{query.urlencode()}")


@permission_required(VIEW, raise_exception=True)
@require_http_methods(["GET", "POST"])
def records(request):
    if hidden := _hide_patient_id(request):
        return hidden
    form = RecordFilterForm(request.GET or None)
    rows, has_more, next_token, matches = [], False, "", 0
    page_no = page_number(request.GET.get("p", ""))
    before = _cursor(request.GET.get("before", ""))
    if form.is_bound and not form.is_valid():
        pass  # errors are shown above the table
    else:
        filt = form.to_filter() if form.is_bound else selectors.RecordFilter()
        org = settings.PLATFORM["ORG_CODE"]
        rows, has_more = selectors.search_records(
            filt, org_code=org, before=before, page=None if before else page_no
        )
        matches = selectors.count_records(filt, org_code=org)
        if has_more and rows:
            next_token = f"{rows[-1].enqueued_at.isoformat()}_{rows[-1].pk}"
    query = request.GET.copy()
    for name in ("before", "p"):
        query.pop(name, None)
    pages = -(-min(matches, selectors.COUNT_CAP) // selectors.PAGE_SIZE)
    return render(
        request,
        "uploads/records.html",
        {
            "form": form,
            "rows": rows,
            "has_more": has_more,
            "next_token": next_token,
            "query": query.urlencode(),
            "first_page": page_no == 1,
            "page_no": page_no,
            "pages": pages,
            "matches": matches,
            "more_than_counted": matches > selectors.COUNT_CAP,
            "count_cap": selectors.COUNT_CAP,
            "jump_pages": min(pages, selectors.JUMP_PAGES),
            "can_operate": request.user.has_perm(OPERATE),
            "cancel_form": CancelForm(),
        },
    )


@permission_required(VIEW, raise_exception=True)
def export(request):
    if hidden := _hide_patient_id(request):
        return hidden
    form = RecordFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages.error(request, "筛选条件有误，未导出。")
        return redirect(reverse("uploads:records") + "?" + request.GET.urlencode())
    filt = form.to_filter() if form.is_bound else selectors.RecordFilter()
    rows, _ = selectors.search_records(
        filt, org_code=settings.PLATFORM["ORG_CODE"], limit=EXPORT_LIMIT, export=True
    )
    header = [
        "编号",
        "接口",
        "主键",
        "版本",
        "状态",
        "患者",
        "尝试次数",
        "平台返回码",
        "最后信息",
        "业务时间",
        "入队时间",
        "接收时间",
    ]
    return spreadsheets.csv_download(
        "uploads",
        header,
        (
            [
                r.pk,
                r.interface,
                r.business_key,
                r.version,
                r.get_state_display(),
                r.patient_display,
                r.attempts,
                r.last_code,
                r.last_message,
                _fmt(r.event_at),
                _fmt(r.enqueued_at),
                _fmt(r.accepted_at),
            ]
            for r in rows
        ),
    )


def _fmt(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


@permission_required(VIEW, raise_exception=True)
def record_detail(request, pk: int):
    show_payload = request.user.has_perm("hospital_interop.view_decrypted_payload")
    try:
        detail = selectors.record_detail(pk, with_payload=show_payload)
    except OutboxRecord.DoesNotExist as exc:
        raise Http404("上传记录不存在") from exc
    record = detail["record"]
    return render(
        request,
        "uploads/record_detail.html",
        {
            **detail,
            "payload_json": json.dumps(detail["payload"], ensure_ascii=False, indent=2)
            if detail["payload"] is not None
            else None,
            "can_operate": request.user.has_perm(OPERATE)
            and record.state in (State.ATTENTION, State.RETRY, State.PENDING),
            "can_fix": request.user.has_perm(OPERATE) and services.fixable(record),
            "qc_findings": quality.findings_of_record(record),
            "fix_form": PayloadFixForm(),
            "cancel_form": CancelForm(),
        },
    )


@require_POST
@permission_required(OPERATE, raise_exception=True)
def redrive(request):
    ids = row_ids(request.POST.getlist("ids"))
    if not ids:
        messages.error(request, "请先勾选要重推的记录。")
    else:
        n = services.redrive(ids)
        messages.success(
            request,
            f"已重推 {n} 条记录，稍后刷新查看结果。"
            if n
            else "所选记录均不在可重推状态（需处理、等待重试或待发送）。",
        )
    return redirect(safe_next(request, reverse("uploads:records")))


@require_POST
@permission_required(OPERATE, raise_exception=True)
def fix_and_redrive(request, pk: int):
    form = PayloadFixForm(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(form.errors["fix"]))
    else:
        try:
            n = services.redrive([pk], payload_fix=form.cleaned_data["fix"])
        except services.PayloadInvalid as exc:
            messages.error(
                request,
                "修正后仍不符合接口规范，未保存："
                + "；".join(f"{e['field']}（{e['rule']}）{e['message']}" for e in exc.errors),
            )
        except PatientConflict as exc:
            exc.record()
            messages.error(
                request,
                "修正后的患者与该记录的就诊或报告已登记的患者不一致，未保存："
                + "；".join(e["message"] for e in exc.errors),
            )
        else:
            messages.success(
                request,
                "已保存修正并重推（已被平台接收的记录作为新版本重新上传）。"
                if n
                else "该记录当前状态不能修正重推。",
            )
    return redirect("uploads:record", pk=pk)


@require_POST
@permission_required(OPERATE, raise_exception=True)
def cancel(request):
    form = CancelForm(request.POST)
    ids = row_ids(request.POST.getlist("ids"))
    if not form.is_valid() or not ids:
        messages.error(request, "作废需要勾选记录并填写原因。")
    else:
        n = services.cancel(ids, reason=form.cleaned_data["reason"])
        messages.success(request, f"已作废 {n} 条记录，它们不会再发送。")
    return redirect(safe_next(request, reverse("uploads:records")))


@metrics_access
def metrics(request):
    """Prometheus text exposition: outbox rows by interface and state, oldest pending age."""
    lines = [
        "# HELP interop_outbox_records Outbox rows by interface and state.",
        "# TYPE interop_outbox_records gauge",
    ]
    for row in selectors.state_counts():
        lines.append(
            f'interop_outbox_records{{interface="{row["interface"]}",state="{row["state"]}"}} {row["n"]}'
        )
    summary = selectors.interface_summary()
    lines += [
        "# HELP interop_outbox_oldest_pending_seconds Age of the oldest undelivered row per interface.",
        "# TYPE interop_outbox_oldest_pending_seconds gauge",
    ]
    for r in summary:
        lines.append(
            f'interop_outbox_oldest_pending_seconds{{interface="{r["interface"]}"}} {r["oldest_age_seconds"] or 0:.0f}'
        )
    lines += [
        "# HELP interop_outbox_overdue Undelivered rows past their deadline.",
        "# TYPE interop_outbox_overdue gauge",
    ]
    for r in summary:
        lines.append(f'interop_outbox_overdue{{interface="{r["interface"]}"}} {r["overdue"]}')
    lines += [
        "# HELP interop_outbox_done_today Rows accepted by the platform today.",
        "# TYPE interop_outbox_done_today gauge",
    ]
    for r in summary:
        lines.append(f'interop_outbox_done_today{{interface="{r["interface"]}"}} {r["done_today"]}')
    sweep = selectors.sweep_status()
    lines += [
        "# HELP interop_sweep_last_run_timestamp_seconds When the delivery sweep last ran (0: never seen).",
        "# TYPE interop_sweep_last_run_timestamp_seconds gauge",
        f"interop_sweep_last_run_timestamp_seconds {sweep['last_run_timestamp'] or 0:.0f}",
        "# HELP interop_sweep_age_seconds Seconds since the delivery sweep last ran.",
        "# TYPE interop_sweep_age_seconds gauge",
        f"interop_sweep_age_seconds {sweep['age_seconds']:.0f}",
        "# HELP interop_sweep_interval_seconds The delivery sweep's scheduled interval.",
        "# TYPE interop_sweep_interval_seconds gauge",
        f"interop_sweep_interval_seconds {sweep['interval_seconds']:.0f}",
        "# HELP interop_sweep_late 1 when the sweep has not run for more than two intervals.",
        "# TYPE interop_sweep_late gauge",
        f"interop_sweep_late {int(sweep['late'])}",
        "# HELP interop_outbox_due_unclaimed Rows due for sending that no worker has taken.",
        "# TYPE interop_outbox_due_unclaimed gauge",
        f"interop_outbox_due_unclaimed {sweep['due_unclaimed']}",
    ]
    lines += [
        f'interop_outbox_due_unclaimed{{interface="{r["interface"]}"}} {r["n"]}'
        for r in sweep["by_interface"]
    ]
    lines += [
        "# HELP interop_outbox_oldest_due_seconds How long the longest-due unclaimed row has been due.",
        "# TYPE interop_outbox_oldest_due_seconds gauge",
        f"interop_outbox_oldest_due_seconds {sweep['oldest_due_seconds']:.0f}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8")
