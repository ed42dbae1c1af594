from django.apps import AppConfig


class LabConfig(AppConfig):
    """Lab reports from the LIS, their PDF + index hand-off and uploads (需求 1.2)."""

    name = "mutual_recognition.lab"
    label = "lab"
    verbose_name = "检验报告上传"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from esign.content import register_version_facts

        from .signing import version_facts

        register_version_facts(version_facts)  # the review module signs what the lab PDF prints

        from esign.signals import approval_withdrawn, review_approved

        from .reviews import on_approval_withdrawn, on_review_approved

        # an approved (signed) review version is archived and uploaded without a call from the LIS
        review_approved.connect(on_review_approved, dispatch_uid="lab-review-approved")
        approval_withdrawn.connect(on_approval_withdrawn, dispatch_uid="lab-approval-withdrawn")

        from hospital_interop.atrest import register_sealed_folders

        from .conf import sealed_folders

        register_sealed_folders(sealed_folders)  # rotate_data_key re-seals archived and quarantined files
