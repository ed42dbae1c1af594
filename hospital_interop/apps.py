from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HospitalInteropConfig(AppConfig):
    name = "hospital_interop"
    verbose_name = "平台核心"

    def ready(self):
        from .roles import sync_roles

        post_migrate.connect(sync_roles, dispatch_uid="hospital_interop.sync_roles")
