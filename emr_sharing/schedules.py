"""The puller's periodic task (django-celery-beat), kept in step with its settings after migrate:
enabled when a HIS database and a sources file are configured, at EMR_PULL_INTERVAL_SECONDS."""

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from . import his
from .conf import pull_settings

PULL_TASK = "电子病历：HIS 视图拉取"


def sync_schedules() -> None:
    conf = pull_settings()
    enabled = his.configured() and bool(conf["SOURCES_FILE"])
    if not enabled and not PeriodicTask.objects.filter(name=PULL_TASK).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(int(conf["INTERVAL_SECONDS"]), 10), period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=PULL_TASK,
        defaults={
            "task": "emr_sharing.tasks.pull_his_views",
            "interval": interval,
            "enabled": enabled,
            "description": "按设定间隔读取 HIS 只读视图中的新记录，提交为电子病历共享记录",
        },
    )
