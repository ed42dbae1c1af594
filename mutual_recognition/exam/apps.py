from django.apps import AppConfig


class ExamConfig(AppConfig):
    """Exam (imaging) reports from RIS/PACS, their uploads, daily summaries and DICOM sync (需求 1.1)."""

    name = "mutual_recognition.exam"
    label = "exam"
    verbose_name = "检查报告与影像上传"
    default_auto_field = "django.db.models.BigAutoField"
