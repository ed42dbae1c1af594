from django.apps import AppConfig


class DictionariesConfig(AppConfig):
    name = "dictionaries"
    label = "dictionaries"
    verbose_name = "标准字典与对照"

    def ready(self):
        from . import signals

        signals.connect()
