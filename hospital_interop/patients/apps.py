from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "hospital_interop.patients"
    label = "patients"
    verbose_name = "患者身份绑定"
    default_auto_field = "django.db.models.BigAutoField"
