from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "hospital_interop.integrations"
    label = "integrations"
    verbose_name = "接入系统"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import schema  # noqa: F401  registers the OpenAPI security scheme
