from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_pull_schedule(sender, **kwargs):
    from .schedules import ensure_pull_schedule

    ensure_pull_schedule()


class QualityConfig(AppConfig):
    name = "hospital_interop.quality"
    label = "quality"
    verbose_name = "数据质量反馈"

    def ready(self):
        post_migrate.connect(_ensure_pull_schedule, sender=self, dispatch_uid="quality.pull_schedule")
