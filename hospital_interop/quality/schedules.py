"""The scheduled pull of QC_FEEDBACK_QUERY as a django-celery-beat periodic task: created with the
interval of ``QC_FEEDBACK_PULL_SECONDS`` (default 600 s, interfaces.md §G) when missing, and
never changed afterwards, so the interval ops set in the admin (周期任务) stays."""

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

PULL_TASK = "数据质量反馈拉取"
TASK = "hospital_interop.quality.tasks.pull_feedback"


def ensure_pull_schedule() -> PeriodicTask:
    existing = PeriodicTask.objects.filter(name=PULL_TASK).first()
    if existing is not None:
        return existing
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(int(settings.QC_FEEDBACK_PULL_SECONDS), 1), period=IntervalSchedule.SECONDS
    )
    task, _ = PeriodicTask.objects.get_or_create(
        name=PULL_TASK,
        defaults={
            "task": TASK,
            "interval": interval,
            "enabled": True,
            "description": "按游标拉取卫健委、质控中心的数据质量反馈（QC_FEEDBACK_QUERY）；间隔可在此修改",
        },
    )
    return task
