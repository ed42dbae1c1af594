from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "hospital_interop.quality"
    label = "quality"
    verbose_name = "数据质量反馈"
