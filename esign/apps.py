from django.apps import AppConfig


class EsignConfig(AppConfig):
    name = "esign"
    label = "esign"
    verbose_name = "检验电子签名"
