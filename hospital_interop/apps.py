from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HospitalInteropConfig(AppConfig):
    name = "hospital_interop"
    verbose_name = "平台核心"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .roles import sync_roles
        from .security.idle import mark_login

        post_migrate.connect(sync_roles, dispatch_uid="hospital_interop.sync_roles")
        user_logged_in.connect(mark_login, dispatch_uid="hospital_interop.session_clocks")
