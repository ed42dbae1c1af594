from django.apps import AppConfig


class MutualRecognitionConfig(AppConfig):
    name = "mutual_recognition"
    label = "mutual_recognition"
    verbose_name = "检查检验结果互认"
