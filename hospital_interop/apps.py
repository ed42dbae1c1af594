from django.apps import AppConfig
from django.db.models.signals import post_migrate


def chinese_full_name(user) -> str:
    """姓在前、名在后、不加空格（王医生），as Chinese names are written; Django's default is the
    Western "first last" (医生 王). Every page and message uses ``get_full_name``."""
    return f"{user.last_name}{user.first_name}".strip()


class HospitalInteropConfig(AppConfig):
    name = "hospital_interop"
    verbose_name = "平台核心"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in

        from .roles import sync_roles
        from .security.idle import mark_login

        get_user_model().get_full_name = chinese_full_name
        post_migrate.connect(sync_roles, dispatch_uid="hospital_interop.sync_roles")
        user_logged_in.connect(mark_login, dispatch_uid="hospital_interop.session_clocks")
