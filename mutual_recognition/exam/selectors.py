"""Reads of the exam side: report status (API and pages), held reports, study-sync progress
(ops dashboard panel and the image-sync page), daily-summary runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.urls import reverse
from django.utils import timezone

from hospital_interop.audit import services as audit
from hospital_interop.uploads.models import OutboxRecord
from hospital_interop.uploads.services import patient_key_of

from . import mapping
from .models import DailySummaryRun, ExamReport, StudyInstance, StudySync

PAGE_SIZE = 50


def _iso(dt: datetime | None) -> str | None:
    return timezone.localtime(dt).isoformat(timespec="seconds") if dt else None


def upload_status(record: OutboxRecord | None) -> dict | None:
    if record is None:
        return None
    return {
        "interface": record.interface,
        "version": record.version,
        "state": record.state,
        "stateName": record.get_state_display(),
        "attempts": record.attempts,
        "lastCode": record.last_code,
        "lastMessage": record.last_message,
        "acceptedAt": _iso(record.accepted_at),
        "receipt": record.receipt,
    }


def study_status(job: StudySync | None) -> dict | None:
    if job is None:
        return None
    return {
        "studyInstanceUid": job.study_instance_uid,
        "state": job.state,
        "stateName": job.get_state_display(),
        "total": job.total,
        "stored": job.stored,
        "rejected": job.rejected,
        "attempts": job.attempts,
        "nextAttemptAt": _iso(job.next_attempt_at),
        "lastError": job.last_error,
        "statusUrl": reverse("exam_api:study", kwargs={"study_uid": job.study_instance_uid}),
    }


def report_status(report: ExamReport) -> dict:
    job = (
        StudySync.objects.filter(study_instance_uid=report.study_instance_uid).first()
        if report.study_instance_uid
        else None
    )
    return {
        "reportId": report.report_id,
        "state": report.state,
        "stateName": report.get_state_display(),
        "version": report.version,
        "problems": report.problems,
        "approvedAt": _iso(report.approved_at),
        "withdrawnAt": _iso(report.withdrawn_at),
        "uploads": {
            "pdf": upload_status(report.pdf_record),
            "result": upload_status(report.result_record),
            "void": upload_status(report.void_record),
        },
        "study": study_status(job),
        "statusUrl": reverse("exam_api:report", kwargs={"report_id": report.report_id}),
    }


def report_by_id(report_id: str) -> ExamReport | None:
    return (
        ExamReport.objects.select_related("pdf_record", "result_record", "void_record")
        .defer("pdf_content")
        .filter(report_id=report_id)
        .first()
    )


def report_page(report_id: str) -> ExamReport | None:
    """A report for its page (patient, exam item, uploads): each view is audited."""
    report = report_by_id(report_id)
    if report is not None:
        audit.record(
            audit.Action.VIEW,
            "exam.ExamReport",
            report_id,
            patient=patient_key_of(mapping.RESULT, report.content),
            detail={"state": report.state, "version": report.version},
        )
    return report


@dataclass
class ReportFilter:
    q: str = ""
    state: str = ""


def search_reports(f: ReportFilter, *, limit: int = PAGE_SIZE) -> list[ExamReport]:
    qs = ExamReport.objects.select_related("pdf_record", "result_record", "void_record").defer(
        "pdf_content", "content"
    )
    if f.q:
        qs = qs.filter(Q(report_id=f.q) | Q(accession_no=f.q) | Q(study_instance_uid=f.q))
    if f.state:
        qs = qs.filter(state=f.state)
    reports = list(qs.order_by("-updated_at", "-pk")[:limit])
    audit.record(
        audit.Action.SEARCH, "exam.ExamReport", detail={"q": f.q, "state": f.state, "found": len(reports)}
    )
    return reports


def report_counts() -> dict:
    rows = dict(ExamReport.objects.values_list("state").annotate(n=Count("pk")))
    return {s.value: rows.get(s.value, 0) for s in ExamReport.State}


def held_problems(limit: int = 200) -> list[dict]:
    """The unmapped hospital codes that hold reports back, grouped by message, worst first."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for report_id, problems in ExamReport.objects.filter(state=ExamReport.State.HELD).values_list(
        "report_id", "problems"
    )[:5000]:
        for p in problems or []:
            groups.setdefault((p.get("field", ""), p.get("rule", ""), p.get("message", "")), []).append(
                report_id
            )
    rows = [
        {"field": k[0], "rule": k[1], "message": k[2], "count": len(v), "reports": v[:10]}
        for k, v in groups.items()
    ]
    return sorted(rows, key=lambda r: -r["count"])[:limit]


# --------------------------------------------------------------------------- study sync


def study_summary() -> dict:
    """Counts for the ops dashboard panel: jobs by state and instances sent of total."""
    by_state = dict(StudySync.objects.values_list("state").annotate(n=Count("pk")))
    open_jobs = StudySync.objects.exclude(state=StudySync.State.DONE).aggregate(
        total=Sum("total"), stored=Sum("stored")
    )
    return {
        "by_state": {s.value: by_state.get(s.value, 0) for s in StudySync.State},
        "open_total": open_jobs["total"] or 0,
        "open_stored": open_jobs["stored"] or 0,
    }


def active_studies(limit: int = 10) -> list[StudySync]:
    """Unfinished jobs first (running, attention, retry, pending), then the latest finished."""
    order = {
        StudySync.State.RUNNING: 0,
        StudySync.State.ATTENTION: 1,
        StudySync.State.RETRY: 2,
        StudySync.State.PENDING: 3,
    }
    unfinished = list(StudySync.objects.exclude(state=StudySync.State.DONE).order_by("-updated_at")[:limit])
    unfinished.sort(key=lambda j: order.get(j.state, 9))
    if len(unfinished) < limit:
        unfinished += list(
            StudySync.objects.filter(state=StudySync.State.DONE).order_by("-finished_at")[
                : limit - len(unfinished)
            ]
        )
    return unfinished


def search_studies(q: str = "", state: str = "", limit: int = PAGE_SIZE) -> list[StudySync]:
    qs = StudySync.objects.all()
    if q:
        qs = qs.filter(Q(study_instance_uid=q) | Q(accession_no=q) | Q(report_id=q))
    if state:
        qs = qs.filter(state=state)
    return list(qs.order_by("-updated_at", "-pk")[:limit])


INSTANCE_ORDER = (  # the study page lists the instances that need someone first
    StudyInstance.State.ATTENTION,
    StudyInstance.State.INVALID,
    StudyInstance.State.REJECTED,
    StudyInstance.State.RETRY,
    StudyInstance.State.PENDING,
    StudyInstance.State.STORED,
)


def study_detail(pk: int) -> dict:
    job = StudySync.objects.get(pk=pk)
    rank = Case(
        *(When(state=s, then=Value(n)) for n, s in enumerate(INSTANCE_ORDER)), output_field=IntegerField()
    )
    instances = job.instances.annotate(rank=rank).order_by("rank", "series_instance_uid", "path")
    counts = dict(job.instances.values_list("state").annotate(n=Count("pk")))
    return {
        "job": job,
        "instances": list(instances[:500]),
        "instance_count": sum(counts.values()),
        "counts": [(s, counts.get(s.value, 0)) for s in INSTANCE_ORDER],
        "resent": job.instances.filter(sent_count__gt=1).count(),
    }


def daily_runs(limit: int = 30) -> list[DailySummaryRun]:
    return list(DailySummaryRun.objects.all()[:limit])


def daily_run_detail(pk: int) -> dict:
    run = DailySummaryRun.objects.get(pk=pk)
    records = {r.pk: r for r in OutboxRecord.objects.filter(pk__in=run.record_ids)}
    rows = []
    for row, record_id in zip(run.rows, run.record_ids, strict=False):
        rows.append({**row, "record": records.get(record_id)})
    return {"run": run, "rows": rows}
