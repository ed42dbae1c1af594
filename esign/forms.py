"""Forms only parse; the rules (and their Chinese messages) live in esign.validators / services."""

from django import forms

from .parameters import PARAMETERS


class RegisterForm(forms.Form):
    staff_no = forms.CharField(label="工号", required=False, max_length=40)
    name = forms.CharField(label="姓名", required=False, max_length=40)
    id_number = forms.CharField(label="身份证号", required=False, max_length=40)
    mobile = forms.CharField(label="手机号（可选）", required=False, max_length=20)


class MobileForm(forms.Form):
    mobile = forms.CharField(label="新手机号", required=False, max_length=20)


class AutoSignForm(forms.Form):
    minutes = forms.TypedChoiceField(
        label="授权时长",
        coerce=int,
        initial=240,
        choices=[
            (30, "30 分钟"),
            (60, "1 小时"),
            (120, "2 小时"),
            (240, "4 小时"),
            (480, "8 小时"),
            (720, "12 小时"),
        ],
    )


class StaffCAForm(forms.Form):
    ukey_serial = forms.CharField(label="UKey 唯一标识", required=False, max_length=64)
    ca_enabled = forms.BooleanField(label="启用 CA 验证", required=False)


class ParametersForm(forms.Form):
    def __init__(self, *args, current: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        current = current or {}
        for spec in PARAMETERS:
            if spec.key == "CA_ENABLED":
                field = forms.ChoiceField(
                    label=spec.label, choices=[("0", "0 禁用"), ("1", "1 启用")], required=False
                )
            elif spec.key == "CA_SIGN_ALG":
                field = forms.ChoiceField(
                    label=spec.label,
                    choices=[("HMAC-SM3", "HMAC-SM3"), ("HMAC-SHA256", "HMAC-SHA256")],
                    required=False,
                )
            elif spec.secret:
                field = forms.CharField(
                    label=spec.label,
                    required=False,
                    widget=forms.PasswordInput(
                        attrs={"autocomplete": "new-password", "placeholder": "留空则保持不变"}
                    ),
                )
            else:
                field = forms.CharField(label=spec.label, required=False, max_length=300)
            field.help_text = spec.description
            if not spec.secret:
                field.initial = current.get(spec.key, spec.default)
            self.fields[spec.key] = field
