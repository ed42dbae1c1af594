"""Writes of the exam side (requirement 1.1): report intake, withdrawal, re-mapping of held
reports, the daily summary, and the DICOM study-sync jobs.

Uploads go through the delivery engine (``hospital_interop.uploads.services.enqueue``) inside the
caller's transaction: PDF (EXAM_REPORT_PDF, immediate), result (EXAM_RESULT_SUBMIT, pushed
incrementally on its schedule), void (EXAM_REPORT_VOID) and summary (EXAM_DAILY_SUMMARY).

Study-sync jobs are persistent (like Orthanc's job engine): a ``StudySync`` row per study and a
``StudyInstance`` row per SOP instance, keyed by the SOP Instance UID of its data set. A run claims
the job with a lease (the outbox's lease helper, ``hospital_interop.uploads.leases``, renewed as
instances go out), (re)plans it from the study folder or a PACS retrieval when asked to (a file
that cannot be sent is marked with its reason at once and never sent), sends only instances not
yet stored, and marks an instance stored only on a success status from the front-end processor.

Failures belong to the instance, not the study. An instance lost in flight (abort, timeout) or
refused for lack of resources waits for a retry with backoff and goes **behind** the rest of the
study at the next run; after ``DICOM["INSTANCE_MAX_FAILURES"]`` such failures it needs attention
with the peer's last message. An instance the peer refuses for good (refused context, final
status) or a file that fails its checks is held for ops at once. The other instances complete
meanwhile; ops re-queue held instances ("立即重试"). Retry timing comes from the delivery engine's
policy (``uploads.services.retry_delay``): per instance for its failures, per job when no
association can be made at all. A periodic sweep runs due jobs and reclaims jobs whose worker
died; no Celery countdowns.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from dictionaries.selectors import version as dictionary_version
from hospital_interop.dicom.config import DicomConfig
from hospital_interop.dicom.files import InstanceFile, scan_folder
from hospital_interop.dicom.retrieve import retrieve_study
from hospital_interop.dicom.store import RETRY_KINDS, InstanceResult, StoreSCU
from hospital_interop.errors import InvalidInput
from hospital_interop.logmask import mask_name
from hospital_interop.municipal.client import CallResult, Outcome
from hospital_interop.patients import services as patients
from hospital_interop.uploads import leases
from hospital_interop.uploads import services as uploads
from hospital_interop.uploads.models import OutboxRecord, State

from . import mapping
from .models import DailySummaryRun, ExamReport, StudyInstance, StudySync

log = logging.getLogger(__name__)

SOURCE_DAILY = "exam-daily"
PROGRESS_EVERY = 0.5  # seconds between progress/lease updates of a running job
DICTIONARY_VERSION_SEEN = "exam:held-remap:dictionary-version"
STUDY_LEASE = leases.Lease(
    StudySync,
    due_states=(StudySync.State.PENDING, StudySync.State.RETRY),
    held_state=StudySync.State.RUNNING,
    retry_state=StudySync.State.RETRY,
    seconds=lambda: settings.DICOM.get("LEASE_SECONDS", 900),
    note_field="last_error",
)


class ReportNotFound(LookupError):
    pass


@dataclass
class SubmitResult:
    report: ExamReport
    created: bool
    changed: bool  # False: same content as the latest version, nothing new stored


# --------------------------------------------------------------------------- reports


def check_folder(folder: str, config: DicomConfig | None = None) -> list[dict]:
    """A study folder named by an event must lie below a configured root."""
    config = config or DicomConfig.from_settings()
    real = Path(os.path.realpath(folder))
    for root in config.folder_roots:
        root_real = Path(os.path.realpath(root))
        if real == root_real or root_real in real.parents:
            return []
    roots = "、".join(str(r) for r in config.folder_roots) or "（未配置）"
    return [
        {
            "field": mapping.IMAGE_FOLDER_FIELD,
            "rule": "folder",
            "message": f"影像目录 {folder} 不在允许的目录之下：{roots}（DICOM_FOLDER_ROOTS）",
        }
    ]


def submit_report(body, *, source: str = "") -> SubmitResult:
    """A report approved (or re-approved) in RIS. Raises InvalidInput (nothing saved).

    With every hospital code mapped, a new version is published: PDF and result enqueued, an
    unsent void of the report cancelled, the study's image sync ensured. With a code unmapped
    the report is kept as *held* (待对照) with the precise problems, and nothing is uploaded
    until the dictionaries are fixed (``republish``)."""
    prepared = mapping.prepare(body)
    if prepared.image_folder:
        prepared.errors += check_folder(prepared.image_folder)
    if prepared.errors:
        raise InvalidInput(prepared.errors)
    digest = mapping.content_hash(body)
    claim = uploads.patient_claim(mapping.spec(mapping.RESULT), prepared.result)
    with transaction.atomic():
        _lock("exam-report#" + prepared.report_id)  # two first submissions of one report: one waits
        if claim is not None:  # the report, its visit and application belong to the patient it names
            patients.bind_many([claim], source=f"exam-{source}" if source else "exam")
        report = ExamReport.objects.select_for_update().filter(report_id=prepared.report_id).first()
        created = report is None
        if report is not None and report.state == ExamReport.State.ACTIVE and report.content_hash == digest:
            return SubmitResult(report, created=False, changed=False)
        report = report or ExamReport(report_id=prepared.report_id)
        report.content = mapping.stored_content(body)
        report.content_hash = digest
        report.pdf_name, report.pdf_size, report.pdf_content = (
            prepared.pdf_name,
            len(prepared.pdf_bytes),
            prepared.pdf_bytes,
        )
        report.source = source or report.source
        _apply(report, prepared)
    return SubmitResult(report, created=created, changed=True)


def _lock(name: str) -> None:
    """A transaction-scoped advisory lock (PostgreSQL; SQLite runs one writer at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])


def _apply(report: ExamReport, prepared: mapping.Prepared) -> None:
    """Store the mapped facts and publish, or hold (inside the caller's transaction)."""
    result = prepared.result
    patient = uploads.patient_of(mapping.RESULT, result)
    report.accession_no = str(result.get(mapping.ACCESSION_FIELD) or "")[:32]
    report.patient_display = mask_name(patient.name)
    report.patient_id_hash = patient.id_hash
    report.study_instance_uid = str(result.get(mapping.STUDY_UID_FIELD) or "")
    report.exam_item = prepared.exam_item[:130] or str(result.get(mapping.EXAM_ITEM_FIELD) or "")
    if prepared.mapping_errors:
        report.state = ExamReport.State.HELD
        report.problems = prepared.mapping_errors
        report.save()
        log.warning(
            "exam report %s held: %s",
            report.report_id,
            "; ".join(e["message"] for e in prepared.mapping_errors),
        )
        _ensure_images(report, prepared)  # the images do not depend on the code mappings
        return
    now = timezone.now()
    report.dept_std_code, report.dept_std_name = prepared.dept_std
    report.version += 1
    report.state = ExamReport.State.ACTIVE
    report.problems = []
    report.approved_at = now
    report.withdrawn_at = None
    report.void_reason = ""
    report.save()
    _cancel_unsent_void(report)
    report.pdf_record, report.result_record = uploads.enqueue_many(
        [uploads.Item(mapping.PDF, prepared.pdf_payload, now), uploads.Item(mapping.RESULT, result, now)],
        source=report.source,
    )
    report.save(update_fields=["pdf_record", "result_record", "updated_at"])
    _ensure_images(report, prepared)


def _ensure_images(report: ExamReport, prepared: mapping.Prepared) -> None:
    """Requirement 1.1 step 3: after approval, the study's images go to the front-end processor."""
    if report.study_instance_uid:
        ensure_study_job(
            report.study_instance_uid,
            folder=prepared.image_folder,
            accession_no=report.accession_no,
            report_id=report.report_id,
            patient_display=report.patient_display,
            source_system=report.source,
        )


def _cancel_unsent_void(report: ExamReport) -> None:
    """A re-approval after a withdrawal: a void still waiting to be sent must not void the new version."""
    key = uploads.business_key(
        mapping.spec(mapping.VOID), {**_org(), mapping.spec(mapping.VOID).key[-1]: report.report_id}
    )
    unsent = list(
        OutboxRecord.objects.filter(
            interface=mapping.VOID, business_key=key, state__in=(State.PENDING, State.RETRY, State.ATTENTION)
        ).values_list("pk", flat=True)
    )
    if unsent:
        uploads.cancel(unsent, reason="报告已重新审核，撤回作废不再发送")


def _org() -> dict:
    return {name: default() for name, default in mapping.DEFAULTS.items()}


def republish(report_id: str) -> ExamReport:
    """Map a held report again (after the dictionaries were fixed) and publish it if it maps now."""
    with transaction.atomic():
        report = ExamReport.objects.select_for_update().filter(report_id=report_id).first()
        if report is None:
            raise ReportNotFound(report_id)
        if report.state != ExamReport.State.HELD:
            return report
        body = dict(report.content)
        pdf = dict(body.get(mapping.PDF_FIELD) or {})
        pdf[mapping.PDF_CONTENT] = base64.b64encode(bytes(report.pdf_content)).decode("ascii")
        body[mapping.PDF_FIELD] = pdf
        prepared = mapping.prepare(body)
        if prepared.errors:  # the stored content was valid when it came: only a spec change gets here
            report.problems = prepared.errors
            report.save(update_fields=["problems", "updated_at"])
            return report
        _apply(report, prepared)
    return report


def republish_held() -> tuple[int, int]:
    """Try every held report again: (published, still held)."""
    published = held = 0
    for report_id in ExamReport.objects.filter(state=ExamReport.State.HELD).values_list(
        "report_id", flat=True
    ):
        report = republish(report_id)
        if report.state == ExamReport.State.HELD:
            held += 1
        else:
            published += 1
    return published, held


def republish_held_if_dictionaries_changed() -> tuple[int, int] | None:
    """Called by the sweep: held reports go out on their own soon after a mapping is fixed."""
    current = dictionary_version()
    if cache.get(DICTIONARY_VERSION_SEEN) == current:
        return None
    cache.set(DICTIONARY_VERSION_SEEN, current, None)
    if not ExamReport.objects.filter(state=ExamReport.State.HELD).exists():
        return None
    return republish_held()


def withdraw_report(report_id: str, body, *, source: str = "") -> ExamReport:
    """The report was withdrawn in RIS: void it on the platform (the delivery engine sends the
    void only if the platform may hold the report, and cancels versions not yet sent)."""
    with transaction.atomic():
        report = ExamReport.objects.select_for_update().filter(report_id=report_id).first()
        if report is None:
            raise ReportNotFound(report_id)
        if report.state == ExamReport.State.WITHDRAWN:  # a repeated call: same answer
            return report
        payload, errors = mapping.void_payload(report_id, body)
        if errors:
            raise InvalidInput(errors)
        report.state = ExamReport.State.WITHDRAWN
        report.withdrawn_at = timezone.now()
        report.void_reason = str(payload.get(mapping.VOID_REASON_FIELD) or "")[:200]
        report.problems = []
        if report.version:  # a version was published: the platform may hold it
            report.void_record = uploads.enqueue(
                mapping.VOID, payload, event_at=report.withdrawn_at, source=source or report.source
            )
        report.save()
    return report


# --------------------------------------------------------------------------- daily summary


def _day_bounds(stat_date: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(stat_date, datetime.min.time()))
    return start, start + timedelta(days=1)


def daily_counts(stat_date: date) -> list[dict]:
    """Per standard executing department: the reports first accepted by the platform on that day
    (EXAM_RESULT_SUBMIT) that it still holds (not withdrawn), and of them those with images.

    A department whose reports of that day were all withdrawn since is listed with 0, so a re-run
    corrects an earlier count on the platform (same key: orgCode, statDate, deptCode)."""
    start, end = _day_bounds(stat_date)
    done = OutboxRecord.objects.filter(interface=mapping.RESULT, state=State.DONE)
    keys = set(
        done.filter(accepted_at__gte=start, accepted_at__lt=end).values_list("business_key", flat=True)
    )
    first = (
        done.filter(business_key__in=keys)
        .values("business_key")
        .annotate(first=Min("accepted_at"))
        .filter(first__gte=start, first__lt=end)
        .values_list("business_key", flat=True)
    )
    prefix = _org()["orgCode"] + "|"
    report_ids = [k[len(prefix) :] for k in first if k.startswith(prefix)]
    live = ~Q(state=ExamReport.State.WITHDRAWN)
    rows = (
        ExamReport.objects.filter(report_id__in=report_ids)
        .exclude(dept_std_code="")
        .values("dept_std_code", "dept_std_name")
        .annotate(
            reports=Count("pk", filter=live), studies=Count("pk", filter=live & ~Q(study_instance_uid=""))
        )
        .order_by("dept_std_code")
    )
    return [
        {
            "deptCode": r["dept_std_code"],
            "deptName": r["dept_std_name"],
            "reportCount": r["reports"],
            "studyCount": r["studies"],
        }
        for r in rows
    ]


def submit_daily_summary(stat_date: date, *, trigger: str = "ops", user: str = "") -> DailySummaryRun:
    """Compute and enqueue 检查日报 for a date (re-runnable: the same keys replace earlier counts)."""
    rows = daily_counts(stat_date)
    day = stat_date.strftime("%Y%m%d")
    with transaction.atomic():
        ids = [
            record.pk
            for record in uploads.enqueue_many(
                [
                    uploads.Item(
                        mapping.DAILY,
                        mapping.daily_payload(
                            day, r["deptCode"], r["deptName"], r["reportCount"], r["studyCount"]
                        ),
                    )
                    for r in rows
                ],
                source=SOURCE_DAILY,
            )
        ]
        run = DailySummaryRun.objects.create(
            stat_date=stat_date, trigger=trigger, requested_by=user, rows=rows, record_ids=ids
        )
    log.info(
        "exam daily summary %s (%s): %d department(s), %d report(s)",
        stat_date,
        trigger,
        len(rows),
        run.report_total,
    )
    return run


def summary_time() -> tuple[int, int]:
    hours, minutes = settings.EXAM_DAILY_SUMMARY_TIME.split(":")
    return int(hours), int(minutes)


def daily_summary_tick(now: datetime | None = None) -> list[DailySummaryRun]:
    """Run by beat every few minutes: once the configured time has passed, report every day since
    the last scheduled report up to yesterday, so that an outage of several days leaves no gap
    (each day once; the first run ever reports yesterday; at most EXAM_DAILY_CATCH_UP_DAYS back)."""
    local = timezone.localtime(now or timezone.now())
    hours, minutes = summary_time()
    if (local.hour, local.minute) < (hours, minutes):
        return []
    yesterday = local.date() - timedelta(days=1)
    last = DailySummaryRun.objects.filter(trigger="schedule", stat_date__lte=yesterday).aggregate(
        last=Max("stat_date")
    )["last"]
    first = max(
        last + timedelta(days=1) if last else yesterday,
        yesterday - timedelta(days=settings.EXAM_DAILY_CATCH_UP_DAYS - 1),
    )
    runs = []
    for offset in range((yesterday - first).days + 1):
        day = first + timedelta(days=offset)
        with transaction.atomic():
            _lock(f"exam-daily#{day}")
            if not DailySummaryRun.objects.filter(stat_date=day, trigger="schedule").exists():
                runs.append(submit_daily_summary(day, trigger="schedule"))
    return runs


# --------------------------------------------------------------------------- study sync jobs


def ensure_study_job(
    study_instance_uid: str,
    *,
    folder: str = "",
    accession_no: str = "",
    report_id: str = "",
    patient_display: str = "",
    source_system: str = "",
) -> StudySync:
    """A study is complete (or its report approved): make sure a job will push it. An existing job
    is re-planned at its next run (new instances are added; stored ones are never sent again)."""
    now = timezone.now()
    with transaction.atomic():
        job = StudySync.objects.select_for_update().filter(study_instance_uid=study_instance_uid).first()
        if job is None:
            job = StudySync(study_instance_uid=study_instance_uid, event_at=now, next_attempt_at=now)
        job.folder = folder or job.folder
        job.source = StudySync.Source.FOLDER if job.folder else StudySync.Source.PACS
        job.accession_no = accession_no or job.accession_no
        job.report_id = report_id or job.report_id
        job.patient_display = patient_display or job.patient_display
        job.source_system = source_system or job.source_system
        job.rescan = True
        if job.state in (StudySync.State.DONE, StudySync.State.ATTENTION, StudySync.State.RETRY):
            job.state, job.next_attempt_at, job.event_at = StudySync.State.PENDING, now, now
            job.attempts = 0
        job.save()
        transaction.on_commit(lambda: wake_study_job(job.pk))
    return job


def wake_study_job(job_id: int) -> None:
    from .tasks import run_study

    leases.wake(run_study, job_id, what=f"study job {job_id}")


def claim_study_job(job_id: int, *, worker: str | None = None) -> StudySync | None:
    """Lease a due job to this worker (None when it is not due or another worker holds it)."""
    now = timezone.now()
    if not STUDY_LEASE.claim(
        StudySync.objects.filter(pk=job_id),
        limit=1,
        worker=worker,
        now=now,
        started_at=now,
        attempts=F("attempts") + 1,
    ):
        return None
    return StudySync.objects.get(pk=job_id)


class _JobProblem(Exception):
    pass


def _note(row: StudyInstance, event: str, message: str, now: datetime) -> list:
    """The row's history with one more entry (the latest HISTORY_LENGTH kept)."""
    entry = {"at": timezone.localtime(now).isoformat(timespec="seconds"), "event": event, "message": message}
    row.history = [*(row.history or []), entry][-StudyInstance.HISTORY_LENGTH :]
    return row.history


def _plan(job: StudySync, config: DicomConfig) -> None:
    """(Re)plan a job: retrieve from the PACS if needed, scan the folder, add new instances, and
    mark at once the files that cannot be sent (they are never proposed)."""
    StudySync.objects.filter(pk=job.pk).update(rescan=False)
    if job.source == StudySync.Source.PACS:
        folder = Path(config.retrieve_dir) / job.study_instance_uid
        got = retrieve_study(config, job.study_instance_uid, folder)
        if not got.ok:
            raise _JobProblem(got.error)
        job.folder = str(folder)
        StudySync.objects.filter(pk=job.pk).update(folder=job.folder)
    if not job.folder or not os.path.isdir(job.folder):
        raise _JobProblem(f"影像目录不存在：{job.folder or '（未指定）'}")
    scan = scan_folder(job.folder, job.study_instance_uid, config.required_tags)
    known = {r.sop_instance_uid: r for r in job.instances.all()}
    now = timezone.now()
    new, changed = [], []
    columns = [
        "sop_instance_uid",
        "sop_class_uid",
        "meta_sop_instance_uid",
        "transfer_syntax_uid",
        "series_instance_uid",
        "path",
        "size",
        "data_offset",
        "state",
        "last_error",
        "history",
    ]
    for inst in scan.instances:
        row = known.get(inst.sop_instance_uid)
        if row is None and inst.meta_sop_instance_uid in known and inst.sop_instance_uid not in known:
            row = known.pop(inst.meta_sop_instance_uid)  # keyed by its file meta's UID by an earlier version
            _note(row, "rekeyed", f"改按数据集的 SOP Instance UID {inst.sop_instance_uid} 登记", now)
            row.sop_instance_uid = inst.sop_instance_uid
            known[inst.sop_instance_uid] = row
            changed.append(row)
        if row is None:
            row = StudyInstance(job=job, sop_instance_uid=inst.sop_instance_uid)
            if inst.meta_mismatch:
                _note(row, "meta", inst.meta_mismatch, now)
            new.append(row)
        elif row.state == StudyInstance.State.STORED:
            continue
        before = [getattr(row, c) for c in columns]
        row.sop_class_uid = inst.sop_class_uid
        row.meta_sop_instance_uid = inst.meta_sop_instance_uid
        row.transfer_syntax_uid = inst.transfer_syntax_uid
        row.series_instance_uid = inst.series_instance_uid
        row.path, row.size, row.data_offset = inst.path, inst.size, inst.data_offset
        if inst.problem and row.state in (
            StudyInstance.State.PENDING,
            StudyInstance.State.RETRY,
            StudyInstance.State.INVALID,
        ):
            if row.state != StudyInstance.State.INVALID or row.last_error != inst.problem[:500]:
                _note(row, "invalid", inst.problem, now)
            row.state, row.last_error, row.next_attempt_at = (
                StudyInstance.State.INVALID,
                inst.problem[:500],
                None,
            )
        if row.pk and row not in changed and before != [getattr(row, c) for c in columns]:
            changed.append(row)
    StudyInstance.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    if changed:
        StudyInstance.objects.bulk_update(changed, [*columns, "next_attempt_at"], batch_size=1000)
    skipped = [{"path": p, "reason": r} for p, r in scan.skipped[:50]]
    StudySync.objects.filter(pk=job.pk).update(total=job.instances.count(), skipped_files=skipped)
    if not known and not new:
        raise _JobProblem(f"目录 {job.folder} 中没有该检查的 DICOM 文件")


def _due_instances(job: StudySync, now: datetime) -> list[StudyInstance]:
    """This run's instances, each once: those never tried (or re-queued) in the order they were
    found, then those waiting for a retry whose time has come (fewest failures first)."""
    pending = job.instances.filter(state=StudyInstance.State.PENDING).order_by("pk")
    retry = job.instances.filter(state=StudyInstance.State.RETRY, next_attempt_at__lte=now).order_by(
        "failures", "next_attempt_at", "pk"
    )
    return [*pending, *retry]


def _send(job: StudySync, config: DicomConfig, on_instance) -> str:
    rows = _due_instances(job, timezone.now())
    if not rows:
        return ""
    files = [
        InstanceFile(
            path=r.path,
            sop_class_uid=r.sop_class_uid,
            sop_instance_uid=r.sop_instance_uid,
            transfer_syntax_uid=r.transfer_syntax_uid,
            study_instance_uid=job.study_instance_uid,
            series_instance_uid=r.series_instance_uid,
            size=r.size,
            data_offset=r.data_offset,
        )
        for r in rows
    ]
    by_uid = {r.sop_instance_uid: r for r in rows}
    max_failures = max(int(settings.DICOM.get("INSTANCE_MAX_FAILURES", 5)), 1)
    last_progress = [time.monotonic()]
    StudySync.objects.filter(pk=job.pk).update(destination=str(config.fep))

    def record(res: InstanceResult) -> None:
        row, now = by_uid[res.instance.sop_instance_uid], timezone.now()
        fields: dict = {"status": res.status, "last_error": res.error[:500]}
        if res.sent:
            fields["sent_count"] = F("sent_count") + 1
        if res.converted_to:
            _note(row, "converted", f"前置机不接受原传输语法，已无损转换为 {res.converted_to} 发送", now)
        if res.stored:
            fields.update(state=StudyInstance.State.STORED, stored_at=now, next_attempt_at=None)
            if row.failures:
                _note(row, "stored", f"失败 {row.failures} 次后送达", now)
        elif res.kind in RETRY_KINDS:
            row.failures += 1
            fields["failures"] = row.failures
            _note(row, res.kind, res.error, now)
            if row.failures >= max_failures:
                message = f"已失败 {row.failures} 次，需人工处理；前置机最后的回应：{res.error}"
                fields.update(
                    state=StudyInstance.State.ATTENTION, next_attempt_at=None, last_error=message[:500]
                )
            else:
                delay = uploads.retry_delay(
                    row.failures, CallResult(outcome=Outcome.RETRY, message=res.error)
                )
                fields.update(state=StudyInstance.State.RETRY, next_attempt_at=now + timedelta(seconds=delay))
        else:  # invalid or rejected: held for ops, with the reason
            state = StudyInstance.State.INVALID if res.kind == "invalid" else StudyInstance.State.REJECTED
            fields.update(state=state, next_attempt_at=None)
            _note(row, res.kind, res.error, now)
        if row.history:
            fields["history"] = row.history
        StudyInstance.objects.filter(pk=row.pk).update(**fields)
        if time.monotonic() - last_progress[0] >= PROGRESS_EVERY:
            last_progress[0] = time.monotonic()
            STUDY_LEASE.renew(
                job.pk,
                job.claimed_by,
                stored=StudyInstance.objects.filter(job=job, state=StudyInstance.State.STORED).count(),
            )
        if on_instance is not None:
            on_instance(res)

    outcome = StoreSCU(config).send_all(files, on_result=record)
    return outcome.error


def run_study_job(job_id: int, *, config: DicomConfig | None = None, on_instance=None) -> StudySync | None:
    """One run of a due job (None when it is not due or another worker holds it)."""
    job = claim_study_job(job_id)
    if job is None:
        return None
    config = config or DicomConfig.from_settings()
    error = ""
    try:
        if job.rescan or job.total == 0:
            _plan(job, config)
        error = _send(job, config, on_instance)
    except _JobProblem as exc:
        error = str(exc)
    except Exception as exc:
        log.exception("study job %s failed", job.pk)
        error = f"内部错误：{exc}"
    return _finish(job, error)


def _held_summary(job: StudySync) -> str:
    """Why the instances held for ops are held: per state, how many and the first one's reason."""
    parts = []
    labels = {
        StudyInstance.State.ATTENTION: "个实例需人工处理",
        StudyInstance.State.REJECTED: "个实例被前置机拒收",
        StudyInstance.State.INVALID: "个文件无法发送",
    }
    for state, label in labels.items():
        rows = job.instances.filter(state=state)
        n = rows.count()
        if n:
            first = rows.order_by("pk").values_list("last_error", flat=True).first()
            parts.append(f"{n} {label}：{first}" + ("等" if n > 1 else ""))
    return "；".join(parts)


def _finish(job: StudySync, error: str) -> StudySync:
    """Move the job on after a run: done, waiting (for its instances' retries or, when no
    association could be made, for its own), or needing attention (instances held for ops, or the
    maximum age passed)."""
    now = timezone.now()
    held = Q(state__in=StudyInstance.HELD_STATES)
    counts = job.instances.aggregate(
        total=Count("pk"),
        stored=Count("pk", filter=Q(state=StudyInstance.State.STORED)),
        held=Count("pk", filter=held),
        pending=Count("pk", filter=Q(state=StudyInstance.State.PENDING)),
        waiting=Count("pk", filter=Q(state=StudyInstance.State.RETRY)),
        next_retry=Min("next_attempt_at", filter=Q(state=StudyInstance.State.RETRY)),
    )
    fields = dict(
        total=counts["total"], stored=counts["stored"], rejected=counts["held"], next_attempt_at=None
    )
    max_age = timedelta(hours=settings.DICOM.get("MAX_AGE_HOURS", 72))
    too_old = now - job.event_at > max_age
    held_summary = _held_summary(job) if counts["held"] else ""
    if not error and counts["pending"]:
        error = f"{counts['pending']} 个实例未发送"
    if error or counts["waiting"]:
        if error:
            delay = uploads.retry_delay(job.attempts, CallResult(outcome=Outcome.RETRY, message=error))
            next_at, why = now + timedelta(seconds=delay), error
        else:
            first = (
                job.instances.filter(state=StudyInstance.State.RETRY)
                .order_by("next_attempt_at")
                .values_list("last_error", flat=True)
                .first()
            )
            next_at, why = max(counts["next_retry"], now), f"{counts['waiting']} 个实例等待重试：{first}"
        why = "；".join(p for p in (why, held_summary) if p)
        if too_old:
            fields.update(
                state=StudySync.State.ATTENTION,
                last_error=f"超过最长重试时间 {max_age.total_seconds() / 3600:g} 小时仍未完成：{why}",
            )
        else:
            fields.update(state=StudySync.State.RETRY, next_attempt_at=next_at, last_error=why)
    elif counts["held"]:
        fields.update(
            state=StudySync.State.ATTENTION, last_error=f"{held_summary}。请查看实例状态，处理后“立即重试”"
        )
    else:
        fields.update(state=StudySync.State.DONE, finished_at=now, last_error="")
    with transaction.atomic():
        updated = STUDY_LEASE.release(job.pk, job.claimed_by, now=now, **fields)
        if updated and fields["state"] == StudySync.State.DONE:
            # an event arrived while this run was going: plan again now
            StudySync.objects.filter(pk=job.pk, rescan=True).update(
                state=StudySync.State.PENDING, next_attempt_at=now
            )
    if fields["state"] != StudySync.State.DONE:
        log.warning("study job %s (%s): %s", job.pk, job.study_instance_uid, fields["last_error"])
    job.refresh_from_db()
    return job


def reclaim_expired_study_leases() -> int:
    """Jobs whose worker died (their lease ran out) are due again at once."""
    return STUDY_LEASE.reclaim()


def due_study_jobs(limit: int = 50) -> list[int]:
    return list(
        StudySync.objects.filter(STUDY_LEASE.due(timezone.now()))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def retry_study_jobs(job_ids) -> int:
    """Ops: run these jobs now (waiting for a retry, needing attention, or pending). Their held
    instances (refused, unsendable files, failed too often) and those waiting for a retry are
    re-queued, and the folder is scanned again (a fixed file is sent, a still broken one is marked
    again without being sent)."""
    now = timezone.now()
    ids = list(
        StudySync.objects.filter(
            pk__in=job_ids,
            state__in=(StudySync.State.RETRY, StudySync.State.ATTENTION, StudySync.State.PENDING),
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        rows = list(
            StudyInstance.objects.select_for_update().filter(
                job_id__in=ids, state__in=(*StudyInstance.HELD_STATES, StudyInstance.State.RETRY)
            )
        )
        for row in rows:
            _note(row, "requeued", "运维重新排队", now)
            row.state, row.failures, row.next_attempt_at = StudyInstance.State.PENDING, 0, None
        StudyInstance.objects.bulk_update(
            rows, ["state", "failures", "next_attempt_at", "history"], batch_size=1000
        )
        StudySync.objects.filter(pk__in=ids).update(
            state=StudySync.State.PENDING,
            next_attempt_at=now,
            event_at=now,
            attempts=0,
            rescan=True,
            updated_at=now,
        )
        transaction.on_commit(lambda: [wake_study_job(i) for i in ids])
    return len(ids)


def rescan_study_job(job_id: int) -> bool:
    """Ops: look at the folder (or the PACS) again; new instances are added, stored ones stay stored."""
    job = StudySync.objects.filter(pk=job_id).first()
    if job is None or job.state == StudySync.State.RUNNING:
        return False
    ensure_study_job(job.study_instance_uid)
    return True
