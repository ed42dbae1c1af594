from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "hospital_interop.integrations"
    label = "integrations"
    verbose_name = "接入系统"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from . import schema  # noqa: F401  registers the OpenAPI security scheme
        from .models import CallingSystem
        from .services import forget_lookups

        for signal in (post_save, post_delete):  # deactivated or deleted: its token stops at once here
            signal.connect(
                lambda **kw: forget_lookups(),
                sender=CallingSystem,
                weak=False,
                dispatch_uid=f"integrations.forget_lookups.{signal}",
            )
