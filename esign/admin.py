from django import forms
from django.contrib import admin

from . import sealing
from .models import ReportSignature, ReviewReport, SignerProfile, SigningSession, SignJob, SystemParameter
from .parameters import BY_KEY


class SystemParameterForm(forms.ModelForm):
    value = forms.CharField(
        label="参数值",
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="加密存储的参数不回显：留空则保持不变。",
    )

    class Meta:
        model = SystemParameter
        fields = ["key", "value", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = BY_KEY.get(self.instance.key) if self.instance.pk else None
        if spec and spec.secret:
            self.fields["value"].widget = forms.PasswordInput(attrs={"autocomplete": "new-password"})
            self.initial["value"] = ""

    def clean_key(self):
        key = self.cleaned_data["key"]
        if key not in BY_KEY:
            raise forms.ValidationError("未知的参数代码，可选：" + "、".join(BY_KEY))
        return key

    def clean(self):
        data = super().clean()
        spec = BY_KEY.get(data.get("key", ""))
        value = (data.get("value") or "").strip()
        if spec is None:
            return data
        if spec.secret:
            if not value:
                data["value"] = self.instance.value if self.instance.pk else ""
                return data
            if spec.check and (err := spec.check(value)):
                self.add_error("value", err[1])
            data["value"] = sealing.seal(value)
        elif spec.check and (err := spec.check(value)):
            self.add_error("value", err[1])
        self.instance.is_secret = spec.secret
        return data


@admin.register(SystemParameter)
class SystemParameterAdmin(admin.ModelAdmin):
    form = SystemParameterForm
    list_display = ("key", "description", "shown_value", "updated_by", "updated_at")
    search_fields = ("key", "description")

    @admin.display(description="参数值")
    def shown_value(self, obj):
        return sealing.mask(sealing.unseal(obj.value)) if obj.is_secret else obj.value

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user.username
        super().save_model(request, obj, form, change)


@admin.register(SignerProfile)
class SignerProfileAdmin(admin.ModelAdmin):
    list_display = (
        "staff_no",
        "name",
        "user",
        "ca_user_id",
        "ukey_serial",
        "ca_enabled",
        "mobile",
        "registered_at",
    )
    list_filter = ("ca_enabled",)
    search_fields = ("staff_no", "name", "user__username", "ukey_serial")
    exclude = ("id_number_enc",)
    readonly_fields = ("id_number_masked", "ca_user_id", "cert_sn", "registered_at")


@admin.register(SigningSession)
class SigningSessionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "kind",
        "cert_sn",
        "key_serial",
        "client_ip",
        "started_at",
        "expires_at",
        "ended_at",
        "end_reason",
    )
    list_filter = ("kind",)
    readonly_fields = [f.name for f in SigningSession._meta.fields]

    def has_add_permission(self, request):
        return False


class SignatureInline(admin.TabularInline):
    model = ReportSignature
    fields = ("signer_name", "method", "cert_sn", "signed_at", "original_hash")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(ReviewReport)
class ReviewReportAdmin(admin.ModelAdmin):
    list_display = (
        "report_id",
        "report_version",
        "module",
        "patient_name",
        "title",
        "status",
        "signed",
        "reviewer",
        "reviewed_at",
    )
    list_filter = ("module", "status", "signed")
    search_fields = ("report_id", "patient_name", "patient_id")
    readonly_fields = ("lab_version", "report_version")  # set by esign.services.open_review only
    inlines = [SignatureInline]


@admin.register(ReportSignature)
class ReportSignatureAdmin(admin.ModelAdmin):
    list_display = ("report", "signer_name", "method", "cert_sn", "signed_at", "timestamp_verified")
    list_filter = ("method", "timestamp_verified")
    search_fields = ("report_number", "cert_sn", "signer_name")
    readonly_fields = [f.name for f in ReportSignature._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SignJob)
class SignJobAdmin(admin.ModelAdmin):
    list_display = ("report", "user", "sign_data_id", "status", "created_at", "finished_at")
    readonly_fields = [f.name for f in SignJob._meta.fields]
