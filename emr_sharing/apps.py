from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_schedules(sender, **kwargs):
    from .schedules import sync_schedules

    sync_schedules()


class EmrSharingConfig(AppConfig):
    name = "emr_sharing"
    label = "emr_sharing"
    verbose_name = "电子病历共享"

    def ready(self):
        post_migrate.connect(_sync_schedules, sender=self, dispatch_uid="emr_sharing.sync_schedules")
        from dictionaries.selectors import register_unmapped_source

        from . import selectors, signals

        signals.connect()
        register_unmapped_source(selectors.held_codes_report)
