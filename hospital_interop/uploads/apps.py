from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_schedules(sender, **kwargs):
    from .schedules import sync_schedules

    sync_schedules()


class UploadsConfig(AppConfig):
    name = "hospital_interop.uploads"
    label = "uploads"
    verbose_name = "上传投递"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from .models import InterfacePolicy
        from .services import forget_policies

        post_migrate.connect(_sync_schedules, sender=self, dispatch_uid="uploads.sync_schedules")
        post_save.connect(forget_policies, sender=InterfacePolicy, dispatch_uid="uploads.policy_saved")
        post_delete.connect(forget_policies, sender=InterfacePolicy, dispatch_uid="uploads.policy_deleted")
