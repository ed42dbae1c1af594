"""Pages of the exam side for ops and lab staff: reports (held ones with the unmapped codes that
hold them), a report's uploads, the daily summary (re-run for any past date), DICOM image sync
(progress per study, per-instance state, retry and rescan), and the panel embedded in the ops
upload dashboard. Thin: selectors read, services write."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from hospital_interop.params import row_ids
from hospital_interop.redirects import safe_next

from . import selectors, services
from .models import DailySummaryRun, ExamReport, StudySync

VIEW_PERMS = ("hospital_interop.view_uploads", "hospital_interop.maintain_dictionaries")
OPERATE = "hospital_interop.operate_uploads"
REMAP_PERMS = (OPERATE, "hospital_interop.maintain_dictionaries")


def _require(request, perms) -> None:
    if not any(request.user.has_perm(p) for p in perms):
        raise PermissionDenied


class DailyForm(forms.Form):
    stat_date = forms.DateField(
        label="统计日期", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean_stat_date(self):
        value = self.cleaned_data["stat_date"]
        if value >= timezone.localdate():
            raise forms.ValidationError("只能上报已经结束的日期（今天之前）")
        return value


@login_required
def reports(request):
    _require(request, VIEW_PERMS)
    filt = selectors.ReportFilter(q=request.GET.get("q", "").strip(), state=request.GET.get("state", ""))
    return render(
        request,
        "exam/reports.html",
        {
            "rows": selectors.search_reports(filt),
            "filt": filt,
            "counts": selectors.report_counts(),
            "problems": selectors.held_problems(),
            "states": ExamReport.State,
            "can_remap": any(request.user.has_perm(p) for p in REMAP_PERMS),
        },
    )


@login_required
def report_detail(request, report_id: str):
    _require(request, VIEW_PERMS)
    report = selectors.report_page(report_id)
    if report is None:
        raise Http404("没有该检查报告")
    status = selectors.report_status(report)
    job = (
        StudySync.objects.filter(study_instance_uid=report.study_instance_uid).first()
        if report.study_instance_uid
        else None
    )
    uploads = [
        ("检查报告 PDF", report.pdf_record),
        ("检查结果", report.result_record),
        ("报告作废", report.void_record),
    ]
    return render(
        request,
        "exam/report_detail.html",
        {
            "report": report,
            "status": status,
            "job": job,
            "uploads": uploads,
            "can_remap": any(request.user.has_perm(p) for p in REMAP_PERMS),
        },
    )


@require_POST
@login_required
def republish(request):
    _require(request, REMAP_PERMS)
    report_id = request.POST.get("report_id", "")
    if report_id:
        try:
            report = services.republish(report_id)
        except services.ReportNotFound as exc:
            raise Http404("没有该检查报告") from exc
        if report.state == ExamReport.State.HELD:
            messages.error(
                request,
                f"报告 {report_id} 仍有代码未对照：" + "；".join(p["message"] for p in report.problems),
            )
        else:
            messages.success(request, f"报告 {report_id} 已对照完成并排队上传。")
        return redirect("exam:report", report_id=report_id)
    published, held = services.republish_held()
    messages.success(request, f"重新对照：{published} 份报告已排队上传，{held} 份仍待对照。")
    return redirect("exam:reports")


@login_required
def daily(request):
    _require(request, VIEW_PERMS)
    form = DailyForm(initial={"stat_date": timezone.localdate() - timedelta(days=1)})
    runs = selectors.daily_runs()
    latest = selectors.daily_run_detail(runs[0].pk) if runs else None
    return render(
        request,
        "exam/daily.html",
        {
            "form": form,
            "runs": runs,
            "latest": latest,
            "can_operate": request.user.has_perm(OPERATE),
            "schedule_time": "{:02d}:{:02d}".format(*services.summary_time()),
        },
    )


@require_POST
@login_required
def daily_run(request):
    _require(request, (OPERATE,))
    form = DailyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(e for errs in form.errors.values() for e in errs))
        return redirect("exam:daily")
    stat_date: date = form.cleaned_data["stat_date"]
    run = services.submit_daily_summary(stat_date, trigger="ops", user=request.user.get_username())
    if run.rows:
        messages.success(
            request,
            f"{stat_date:%Y-%m-%d} 检查日报已生成：{len(run.rows)} 个科室，共 {run.report_total} 份报告，已排队上传。",
        )
    else:
        messages.warning(request, f"{stat_date:%Y-%m-%d} 没有被市平台接收的检查报告，无需上报。")
    return redirect(reverse("exam:daily-run", args=[run.pk]))


@login_required
def daily_run_detail(request, pk: int):
    _require(request, VIEW_PERMS)
    try:
        detail = selectors.daily_run_detail(pk)
    except DailySummaryRun.DoesNotExist as exc:
        raise Http404("没有该日报") from exc
    return render(request, "exam/daily_run.html", detail)


@login_required
def studies(request):
    _require(request, VIEW_PERMS)
    q, state = request.GET.get("q", "").strip(), request.GET.get("state", "")
    summary = selectors.study_summary()
    return render(
        request,
        "exam/studies.html",
        {
            "rows": selectors.search_studies(q, state),
            "q": q,
            "state": state,
            "states": StudySync.State,
            "summary": summary,
            "state_counts": [(s, summary["by_state"][s.value]) for s in StudySync.State],
            "can_operate": request.user.has_perm(OPERATE),
        },
    )


@login_required
def study_detail(request, pk: int):
    _require(request, VIEW_PERMS)
    try:
        detail = selectors.study_detail(pk)
    except StudySync.DoesNotExist as exc:
        raise Http404("没有该影像同步任务") from exc
    return render(
        request, "exam/study_detail.html", {**detail, "can_operate": request.user.has_perm(OPERATE)}
    )


@require_POST
@login_required
def study_retry(request):
    _require(request, (OPERATE,))
    ids = row_ids(request.POST.getlist("ids"))
    n = services.retry_study_jobs(ids) if ids else 0
    if n:
        messages.success(request, f"已安排 {n} 个影像同步任务立即重试（被拒收的实例也将重发）。")
    else:
        messages.error(request, "所选任务均不在可重试状态（等待重试、需人工处理或待同步）。")
    return redirect(safe_next(request, reverse("exam:studies")))


@require_POST
@login_required
def study_rescan(request, pk: int):
    _require(request, (OPERATE,))
    if services.rescan_study_job(pk):
        messages.success(request, "已安排重新扫描：新增的实例将被推送，已送达的实例不会重发。")
    else:
        messages.error(request, "任务正在同步中，请稍后再试。")
    return redirect("exam:study", pk=pk)


@login_required
def dashboard_panel(request):
    """HTML fragment for the ops upload dashboard (loaded by templates/exam/_dashboard_panel.html)."""
    _require(request, VIEW_PERMS)
    return render(
        request,
        "exam/_dashboard_panel_body.html",
        {
            "summary": selectors.study_summary(),
            "jobs": selectors.active_studies(),
            "held": selectors.report_counts()[ExamReport.State.HELD],
        },
    )
