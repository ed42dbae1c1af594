from django.apps import AppConfig


class EmrSharingConfig(AppConfig):
    name = "emr_sharing"
    label = "emr_sharing"
    verbose_name = "电子病历共享"
