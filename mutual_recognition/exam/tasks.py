"""Celery tasks of the exam side: thin wrappers over services; they take ids, are idempotent and
run acks_late; retry timing lives in the job rows, never in Celery countdowns.

Celery's autodiscovery only imports ``mutual_recognition.tasks``; ``exam/models.py`` imports this
module so the worker registers these tasks. Services are imported inside the tasks (this module
is loaded while Django is still loading models).
"""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_study(job_id: int) -> int:
    """One run of a study-sync job (no-op when it is not due or another worker holds it)."""
    from . import services

    job = services.run_study_job(job_id)
    return job.stored if job is not None else -1


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def sweep_study_jobs() -> int:
    """Periodic: reclaim jobs of dead workers, dispatch due jobs, retry held reports whose
    dictionary mapping may have been fixed."""
    from . import services

    services.reclaim_expired_study_leases()
    due = services.due_study_jobs()
    for job_id in due:
        run_study.delay(job_id)
    services.republish_held_if_dictionaries_changed()
    return len(due)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def daily_summary_tick() -> str:
    """Periodic: once the configured time (EXAM_DAILY_SUMMARY_TIME) has passed, report every day
    not reported yet, up to yesterday."""
    from . import services

    return ",".join(str(run.stat_date) for run in services.daily_summary_tick())
