from django.apps import AppConfig


class LabConfig(AppConfig):
    """Lab reports from the LIS, their PDF + index hand-off and uploads (需求 1.2)."""

    name = "mutual_recognition.lab"
    label = "lab"
    verbose_name = "检验报告上传"
    default_auto_field = "django.db.models.BigAutoField"
