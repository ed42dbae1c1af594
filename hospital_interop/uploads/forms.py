from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from hospital_interop.integrations import strictjson
from hospital_interop.municipal.specs import load_catalogue

from .models import State
from .selectors import RecordFilter
from .services import Patient


def _interface_choices():
    return [("", "全部接口")] + [
        (s.code, f"{s.code} · {s.name}")
        for s in load_catalogue().interfaces
        if s.kind not in ("query", "security")
    ]


def _id_type_choices():
    return list(load_catalogue().value_set("ID_TYPE").codes.items())


def patient_digest(id_type: str, id_number: str) -> str:
    """What the record browser searches by: the patient digest of an ID type and number."""
    return Patient(id_number=id_number.strip().upper(), id_type=id_type or "01").id_hash


class RecordFilterForm(forms.Form):
    interface = forms.ChoiceField(label="接口", required=False, choices=_interface_choices)
    key = forms.CharField(label="主键/报告号", required=False, max_length=255)
    patient_id_type = forms.ChoiceField(label="证件类别", required=False, choices=_id_type_choices)
    patient_id = forms.CharField(label="患者证件号", required=False, max_length=32)
    # The ID number never travels in URLs (access logs): the view swaps it for its digest.
    patient = forms.RegexField(regex=r"^[0-9a-f]{40}$", required=False, widget=forms.HiddenInput)
    state = forms.ChoiceField(label="状态", required=False, choices=[("", "全部状态"), *State.choices])
    date_from = forms.DateField(
        label="入队日期自", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label="至", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    overdue = forms.BooleanField(label="仅超时效", required=False)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("开始日期不能晚于结束日期。")
        return data

    def to_filter(self) -> RecordFilter:
        d = self.cleaned_data
        tz = timezone.get_current_timezone()
        start = datetime.combine(d["date_from"], time.min, tz) if d.get("date_from") else None
        end = datetime.combine(d["date_to"], time.min, tz) + timedelta(days=1) if d.get("date_to") else None
        return RecordFilter(
            interface=d.get("interface", ""),
            key=d.get("key", "").strip(),
            patient_hash=d.get("patient")
            or patient_digest(d.get("patient_id_type", ""), d.get("patient_id", "")),
            state=d.get("state", ""),
            date_from=start,
            date_to=end,
            overdue=bool(d.get("overdue")),
        )


class PayloadFixForm(forms.Form):
    fix = forms.CharField(
        label="修正字段（JSON）",
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text='只写需要修改的顶层字段，例如 {"deptCode": "0301"}；保存前按接口规范校验。',
    )

    def clean_fix(self):
        try:
            value = strictjson.loads(self.cleaned_data["fix"], top="any")
        except strictjson.JsonRefused as refused:
            raise forms.ValidationError(f"{refused.field or '修正内容'}：{refused.message}") from None
        if not isinstance(value, dict) or not value:
            raise forms.ValidationError("请填写一个包含要修改字段的 JSON 对象。")
        return value


class CancelForm(forms.Form):
    reason = forms.CharField(label="作废原因", max_length=200)
