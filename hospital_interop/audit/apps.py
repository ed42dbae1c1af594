from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "hospital_interop.audit"
    label = "audit"
    verbose_name = "安全审计"
    default_auto_field = "django.db.models.BigAutoField"
