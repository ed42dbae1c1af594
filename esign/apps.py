from django.apps import AppConfig


class EsignConfig(AppConfig):
    name = "esign"
    label = "esign"
    verbose_name = "检验电子签名"

    def ready(self):
        from . import signals  # noqa: F401
